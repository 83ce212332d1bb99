import { afterEach, describe, expect, it } from 'vitest';
import { createOutboxWorker } from '../../src/mail/outbox.js';
import { MailSendError, type Mailer, type OutgoingMessage } from '../../src/mail/transport.js';
import { recoveryHandlers } from '../../src/recovery/delivery.js';
import { addUser, makeTestApp, type TestContext } from '../helpers/app.js';

let ctx: TestContext;
afterEach(async () => {
  await ctx?.close();
});

/** A mailer whose first send waits until fail() is called, then fails; later sends succeed. */
function stalledMailer(): Mailer & { reached: Promise<void>; fail(): void; sent: OutgoingMessage[] } {
  let reached!: () => void;
  let fail!: () => void;
  const reachedP = new Promise<void>((r) => (reached = r));
  const failed = new Promise<void>((r) => (fail = r));
  let first = true;
  const sent: OutgoingMessage[] = [];
  return {
    reached: reachedP,
    fail,
    sent,
    async send(message) {
      if (first) {
        first = false;
        reached();
        await failed;
        throw new MailSendError('451 4.4.2 timeout', true, 'rejected');
      }
      sent.push(message);
    },
  };
}

describe('a send that outlives its lease', () => {
  it('neither overwrites the outcome of the worker that took the row again nor voids its link', async () => {
    ctx = await makeTestApp({ env: { PUBLIC_URL: 'https://dash.example.com' } });
    await addUser(ctx, { email: 'jane@example.com' });
    expect((await ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: 'jane@example.com' } })).statusCode).toBe(202);
    const worker = (mailer: Mailer) =>
      createOutboxWorker({ db: ctx.db, clock: ctx.clock, logger: ctx.deps.logger, mailer: async () => mailer, handlers: recoveryHandlers(ctx.deps), leaseMs: 60_000 });
    const stalled = stalledMailer();
    const slow = worker(stalled).drain();
    await stalled.reached;

    // The lease runs out; another worker takes the row and delivers a fresh link.
    ctx.clock.advanceSeconds(61);
    const healthy = stalledMailer();
    healthy.fail();
    await worker({ send: async (m) => void healthy.sent.push(m) }).drain();
    expect(healthy.sent).toHaveLength(1);
    const token = /#token=([A-Za-z0-9_-]{43})/.exec(healthy.sent[0]!.text)![1]!;

    // Now the stale attempt fails at last.
    stalled.fail();
    await slow;
    const row = await ctx.db.selectFrom('mail_outbox').selectAll().where('kind', '=', 'reset').executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'sent', attempts: 2, last_error: null });
    const verify = await ctx.app.inject({ method: 'POST', url: '/api/auth/reset-password/verify', payload: { token } });
    expect(verify.statusCode).toBe(200);
  });
});
