import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import type { DeliveryRow } from '../../src/mail/outbox.js';
import { findEmailSettings, normalizeEmailSettings, saveEmailSettings } from '../../src/mail/settings.js';
import { createConfiguredMailer } from '../../src/mail/transport.js';
import { sendResetLink } from '../../src/recovery/service.js';
import { findUserById } from '../../src/accounts/users-repo.js';
import { addUser, makeTestApp, type TestContext } from '../helpers/app.js';
import { bothDialects, postgresSuite, type DialectDb } from '../helpers/pg.js';
import { startScriptedSmtpServer, type ScriptedSmtpServer } from '../helpers/private-services.js';

// The outbox's last promise: a delivery that keeps failing is retried with backoff, and ends
// `failed`, with a warn log and an `email_given_up` audit entry, once its next try would come
// after its deadline (24 h, GIVE_UP_AFTER_MS); a permanent refusal ends it at once. A real SMTP
// server refuses the recipient (451 transient, 550 permanent); the worker is driven by a fake
// clock, one due try at a time. On SQLite and PostgreSQL.

const describeOnPostgres = await postgresSuite();

/** makeTestApp's worker: the first retry after 1 s, doubling up to the production cap of 30 minutes. */
const BASE_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 30 * 60_000;
const TRANSIENT = { code: 451, message: '4.3.0 Mailbox temporarily unavailable, try again later' };
const PERMANENT = { code: 550, message: '5.1.1 No such mailbox here' };
const NEW_PASSWORD = 'a completely new passphrase';
/** The documented deadline (src/mail/outbox.ts GIVE_UP_AFTER_MS), written out: a change to it must show here. */
const ONE_DAY_MS = 24 * 3_600_000;

/** How many tries a delivery that always fails transiently gets before its deadline, by the worker's schedule. */
function triesBeforeDeadline(deadlineMs: number): number {
  let at = 0;
  for (let tries = 1; ; tries++) {
    at += Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** (tries - 1));
    if (at > deadlineMs) return tries;
  }
}

for (const [dialect, makeDb, suite] of bothDialects(describeOnPostgres, 'gatehouse-give-up-')) {
  suite(`a delivery that keeps failing, on ${dialect}`, () => {
    let dialectDb: DialectDb;
    let ctx: TestContext;
    let smtp: ScriptedSmtpServer;
    /** recipients the SMTP server refuses, and how */
    const refusals = new Map<string, { code: number; message: string }>();

    beforeAll(async () => {
      smtp = await startScriptedSmtpServer({ rcpt: (address) => refusals.get(address.toLowerCase()) });
      dialectDb = await makeDb();
      const mailer = createConfiguredMailer(() => findEmailSettings(dialectDb.db), createMemorySecretStore());
      ctx = await makeTestApp({ db: dialectDb.db, mailer });
      // SSL off and no password secret: a relay on loopback that takes mail without AUTH.
      await saveEmailSettings(
        ctx.db,
        ctx.clock,
        normalizeEmailSettings({ host: '127.0.0.1', port: smtp.port, sslEnabled: false, senderAddress: 'sender@example.com', emailSecretName: null, passwordSecretName: null }),
        null,
      );
    });
    afterAll(async () => {
      await ctx?.close();
      await smtp?.close();
      await dialectDb?.drop();
    });

    const rowOf = (kind: DeliveryRow['kind'], address: string): Promise<DeliveryRow> =>
      ctx.db.selectFrom('mail_outbox').selectAll().where('kind', '=', kind).where('to_address', '=', address).executeTakeFirstOrThrow();

    /**
     * Sends what is due, then moves the clock to the row's next try, until the row stops retrying.
     * Returns the delay the worker chose after each failed try, and when the last try ran.
     */
    async function retryUntilDone(kind: DeliveryRow['kind'], address: string): Promise<{ row: DeliveryRow; delaysMs: number[]; lastTryAtMs: number }> {
      const delaysMs: number[] = [];
      for (;;) {
        const triedAtMs = ctx.clock.now().getTime();
        await ctx.outbox.drain();
        const row = await rowOf(kind, address);
        if (row.status !== 'retrying') return { row, delaysMs, lastTryAtMs: triedAtMs };
        // A day of doubling waits capped at 30 minutes is under 60 tries.
        if (delaysMs.length >= 100) throw new Error(`still retrying after ${delaysMs.length} tries: ${JSON.stringify(row)}`);
        expect(row.attempts).toBe(delaysMs.length + 1);
        delaysMs.push(row.next_attempt_at - triedAtMs);
        ctx.clock.set(new Date(row.next_attempt_at));
      }
    }

    /** The email_given_up entries about an account, with their detail parsed. */
    async function givenUp(address: string): Promise<{ outcome: string; detail: Record<string, unknown> }[]> {
      const rows = await ctx.db.selectFrom('audit_events').select(['outcome', 'detail']).where('type', '=', 'email_given_up').where('target_label', '=', address).execute();
      return rows.map((r) => ({ outcome: r.outcome, detail: JSON.parse(r.detail ?? '{}') as Record<string, unknown> }));
    }

    const givenUpLogs = (): Record<string, unknown>[] =>
      ctx.logs.flatMap((l) => l.split('\n')).filter((l) => l.includes('outbox: delivery given up')).map((l) => JSON.parse(l) as Record<string, unknown>);

    /** The backoff the worker must follow: 1 s, 2 s, 4 s … doubling, never more than 30 minutes. */
    const expectDoublingBackoff = (delaysMs: number[]): void => {
      expect(delaysMs).toEqual(delaysMs.map((_, i) => Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** i)));
    };

    it('retries a password-changed email refused with 451, doubling the wait, and gives it up once the next try would pass 24 h: failed, logged, audited', async () => {
      await addUser(ctx, { email: 'changed@example.com' });
      // The reset itself goes through; the "your password was changed" email that follows does not.
      expect((await ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: 'changed@example.com' } })).statusCode).toBe(202);
      await ctx.outbox.drain();
      const token = /#token=([A-Za-z0-9_-]{43})/.exec(smtp.accepted.find((m) => m.to === 'changed@example.com')!.text)![1]!;
      refusals.set('changed@example.com', TRANSIENT);
      const reset = await ctx.app.inject({ method: 'POST', url: '/api/auth/reset-password', payload: { token, password: NEW_PASSWORD, confirmPassword: NEW_PASSWORD } });
      expect(reset.statusCode).toBe(204);
      const queuedAtMs = ctx.clock.now().getTime();
      const logsBefore = givenUpLogs().length;

      const { row, delaysMs, lastTryAtMs } = await retryUntilDone('password_changed', 'changed@example.com');

      expectDoublingBackoff(delaysMs);
      expect(row).toMatchObject({ status: 'failed', give_up_at: queuedAtMs + ONE_DAY_MS, locked_until: null, sent_at: null });
      expect(row.last_error).toContain('451');
      expect(row.attempts).toBe(triesBeforeDeadline(ONE_DAY_MS));
      // The last try ran before the deadline; one more wait would have passed it.
      expect(lastTryAtMs).toBeLessThanOrEqual(row.give_up_at);
      expect(lastTryAtMs + MAX_BACKOFF_MS).toBeGreaterThan(row.give_up_at);
      expect(await givenUp('changed@example.com')).toEqual([
        { outcome: 'failure', detail: { kind: 'password_changed', attempt: row.attempts, error: 'rejected', transient: true } },
      ]);
      expect(givenUpLogs().slice(logsBefore)).toEqual([expect.objectContaining({ level: 40, deliveryId: row.id, kind: 'password_changed', attempts: row.attempts, error: 'rejected' })]);
      // Given up means given up: later drains leave it alone.
      ctx.clock.advanceSeconds(86_400);
      await ctx.outbox.drain();
      expect(await rowOf('password_changed', 'changed@example.com')).toMatchObject({ status: 'failed', attempts: row.attempts });
      expect(smtp.accepted.filter((m) => m.to === 'changed@example.com')).toHaveLength(1);
    });

    it('gives up a set-password link (valid 24 h) refused with 451 the same way, and leaves no usable link behind', async () => {
      const user = await addUser(ctx, { email: 'newcomer@example.com', password: null });
      refusals.set('newcomer@example.com', TRANSIENT);
      const queuedAtMs = ctx.clock.now().getTime();
      await sendResetLink(ctx.deps, (await findUserById(ctx.db, user.id))!, 'set_password', null);

      const { row, delaysMs } = await retryUntilDone('set_password', 'newcomer@example.com');

      expectDoublingBackoff(delaysMs);
      expect(row).toMatchObject({ status: 'failed', give_up_at: queuedAtMs + ONE_DAY_MS, attempts: triesBeforeDeadline(ONE_DAY_MS) });
      expect(await givenUp('newcomer@example.com')).toEqual([
        { outcome: 'failure', detail: { kind: 'set_password', attempt: row.attempts, error: 'rejected', transient: true } },
      ]);
      // Each failed try voided the link it had minted.
      expect(await ctx.db.selectFrom('reset_tokens').select('user_id').where('user_id', '=', user.id).execute()).toEqual([]);
      const failedTries = await ctx.db.selectFrom('audit_events').select('id').where('type', '=', 'reset_email_failed').where('target_label', '=', 'newcomer@example.com').execute();
      expect(failedTries).toHaveLength(row.attempts);
    });

    it('gives a reset email refused with 550 up at once: one try, failed, audited as permanent', async () => {
      await addUser(ctx, { email: 'gone@example.com' });
      refusals.set('gone@example.com', PERMANENT);
      expect((await ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: 'gone@example.com' } })).statusCode).toBe(202);

      const { row, delaysMs } = await retryUntilDone('reset', 'gone@example.com');

      expect(delaysMs).toEqual([]);
      expect(row).toMatchObject({ status: 'failed', attempts: 1 });
      expect(row.last_error).toContain('550');
      expect(await givenUp('gone@example.com')).toEqual([{ outcome: 'failure', detail: { kind: 'reset', attempt: 1, error: 'rejected', transient: false } }]);
    });

    it('gives a reset email refused with 451 up before its one-hour link expires, with an email_given_up entry, rather than letting it expire unannounced', async () => {
      await addUser(ctx, { email: 'hourly@example.com' });
      refusals.set('hourly@example.com', TRANSIENT);
      const queuedAtMs = ctx.clock.now().getTime();
      expect((await ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: 'hourly@example.com' } })).statusCode).toBe(202);

      const { row, delaysMs } = await retryUntilDone('reset', 'hourly@example.com');

      expectDoublingBackoff(delaysMs);
      // No try is worth making once the link it would carry has expired: the deadline is the sooner of the two.
      const linkExpiresAtMs = queuedAtMs + ctx.deps.config.resetTokenTtlMinutes * 60_000;
      expect(row.not_after).toBe(linkExpiresAtMs);
      expect({ status: row.status, attempts: row.attempts }).toEqual({ status: 'failed', attempts: triesBeforeDeadline(linkExpiresAtMs - queuedAtMs) });
      expect(await givenUp('hourly@example.com')).toEqual([{ outcome: 'failure', detail: { kind: 'reset', attempt: row.attempts, error: 'rejected', transient: true } }]);
    });
  });
}
