import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import type { Db } from '../../src/db/index.js';
import { enqueueDelivery, type DeliveryRow } from '../../src/mail/outbox.js';
import { MailSendError, type Mailer, type OutgoingMessage } from '../../src/mail/transport.js';
import { hashResetToken } from '../../src/recovery/tokens.js';
import { addUser, makeTestApp, type TestContext } from '../helpers/app.js';
import { bothDialects, postgresSuite, type DialectDb } from '../helpers/pg.js';

// The worker takes due rows a batch at a time: one claim, one query for the batch's accounts,
// one upsert for its links, one transaction for the outcomes. Each row of a batch still ends on
// its own: a refused recipient fails its row alone, an unknown address drops its row alone, an
// expired link expires its row alone. On SQLite and PostgreSQL.

const describeOnPostgres = await postgresSuite();

/** Sends everything except to the addresses it is told to refuse, and how. */
function refusingMailer(): Mailer & { sent: OutgoingMessage[]; refuse: Map<string, MailSendError> } {
  const mailer = {
    sent: [] as OutgoingMessage[],
    refuse: new Map<string, MailSendError>(),
    async send(message: OutgoingMessage) {
      const refusal = mailer.refuse.get(message.to);
      if (refusal !== undefined) throw refusal;
      mailer.sent.push(message);
    },
  };
  return mailer;
}

/**
 * Counts the statements run through the database handle, by kind and first table named (a
 * statement's common table expressions aside). Counted when they run: a query built only to be
 * part of another is not a statement.
 */
function statementCounter(): KyselyPlugin & { counts: Map<string, number> } {
  const counts = new Map<string, number>();
  const keys = new WeakMap<object, string>();
  return {
    counts,
    transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
      const { with: _ctes, ...node } = args.node as RootOperationNode & { with?: unknown };
      const table = /"kind":"IdentifierNode","name":"([a-z_]+)"/.exec(JSON.stringify(node, (_k, v: unknown) => (typeof v === 'bigint' ? String(v) : v)))?.[1] ?? '?';
      keys.set(args.queryId, `${args.node.kind.replace('QueryNode', '').toLowerCase()} ${table}`);
      return args.node;
    },
    async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
      const key = keys.get(args.queryId);
      if (key !== undefined) counts.set(key, (counts.get(key) ?? 0) + 1);
      return args.result;
    },
  };
}

const tokenIn = (message: OutgoingMessage): string => /#token=([A-Za-z0-9_-]{43})/.exec(message.text)![1]!;

for (const [dialect, makeDb, suite] of bothDialects(describeOnPostgres, 'gatehouse-batches-')) {
  suite(`the outbox worker's batches, on ${dialect}`, () => {
    let dialectDb: DialectDb;
    let ctx: TestContext;
    const mailer = refusingMailer();
    const counter = statementCounter();

    beforeAll(async () => {
      dialectDb = await makeDb();
      ctx = await makeTestApp({ db: dialectDb.db.withPlugin(counter), mailer, env: { PUBLIC_URL: 'https://dash.example.com', LIMIT_FORGOT_PER_IP_PER_MINUTE: '0', LIMIT_FORGOT_PER_ADDRESS_PER_HOUR: '0' } });
    });
    beforeEach(async () => {
      mailer.sent.length = 0;
      mailer.refuse.clear();
      // Each test's batch is its own: nothing left over from the last test is due.
      await ctx.db.deleteFrom('mail_outbox').execute();
    });
    afterAll(async () => {
      await ctx?.close();
      await dialectDb?.drop();
    });

    const forgot = async (email: string): Promise<void> => {
      expect((await ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email } })).statusCode).toBe(202);
    };
    const rowsTo = (db: Db, addresses: string[]): Promise<DeliveryRow[]> => db.selectFrom('mail_outbox').selectAll().where('to_address', 'in', addresses).execute();
    const auditsOf = async (userId: string): Promise<string[]> =>
      (await ctx.db.selectFrom('audit_events').select('type').where('target_id', '=', userId).where('type', 'like', '%email%').orderBy('id').execute()).map((r) => r.type);
    const verify = async (token: string): Promise<number> =>
      (await ctx.app.inject({ method: 'POST', url: '/api/auth/reset-password/verify', payload: { token } })).statusCode;

    it('ends each row of a batch on its own: one refused for good, one refused for now, two sent', async () => {
      const [sent1, sent2, refused, busy] = await Promise.all(
        ['one.batch.a@example.com', 'one.batch.b@example.com', 'one.batch.refused@example.com', 'one.batch.busy@example.com'].map((email) => addUser(ctx, { email })),
      );
      for (const user of [sent1!, sent2!, refused!, busy!]) await forgot(user.email!);
      mailer.refuse.set(refused!.email!, new MailSendError('550 5.1.1 No such mailbox here', false, 'rejected'));
      mailer.refuse.set(busy!.email!, new MailSendError('451 4.3.0 Try again later', true, 'rejected'));

      expect(await ctx.outbox.drain()).toBe(4);

      const rows = new Map((await rowsTo(ctx.db, [sent1!, sent2!, refused!, busy!].map((u) => u.email!))).map((r) => [r.to_address, r]));
      expect(rows.get(sent1!.email)).toMatchObject({ status: 'sent', last_error: null, user_id: sent1!.id, lookup_email: null, delivered_via: null });
      expect(rows.get(sent2!.email)).toMatchObject({ status: 'sent', last_error: null, user_id: sent2!.id, lookup_email: null });
      expect(rows.get(refused!.email)).toMatchObject({ status: 'failed', last_error: 'rejected: 550 5.1.1 No such mailbox here', user_id: refused!.id, lookup_email: null });
      expect(rows.get(busy!.email)).toMatchObject({ status: 'retrying', last_error: 'rejected: 451 4.3.0 Try again later', user_id: busy!.id, lookup_email: null });
      expect(rows.get(busy!.email)!.next_attempt_at).toBeGreaterThan(ctx.clock.now().getTime());

      // The links that arrived work; the refused ones were voided.
      expect(mailer.sent.map((m) => m.to).sort()).toEqual([sent1!.email, sent2!.email].sort());
      for (const message of mailer.sent) expect(await verify(tokenIn(message))).toBe(200);
      const tokenUsers = (await ctx.db.selectFrom('reset_tokens').select('user_id').execute()).map((r) => r.user_id);
      expect(tokenUsers).toEqual(expect.arrayContaining([sent1!.id, sent2!.id]));
      expect(tokenUsers).not.toContain(refused!.id);
      expect(tokenUsers).not.toContain(busy!.id);

      expect(await auditsOf(sent1!.id)).toEqual(['reset_email_sent']);
      expect(await auditsOf(sent2!.id)).toEqual(['reset_email_sent']);
      expect(await auditsOf(refused!.id)).toEqual(['reset_email_failed', 'email_given_up']);
      expect(await auditsOf(busy!.id)).toEqual(['reset_email_failed']);
    });

    it('drops the unknown and disabled addresses of a batch, expires its stale link and sends the rest', async () => {
      const known = await addUser(ctx, { email: 'mixed.known@example.com' });
      const disabled = await addUser(ctx, { email: 'mixed.disabled@example.com' });
      const late = await addUser(ctx, { email: 'mixed.late@example.com' });
      await ctx.db.updateTable('users').set({ disabled: 1 }).where('id', '=', disabled.id).execute();
      await forgot(known.email!);
      await forgot('mixed.nobody@example.com');
      await forgot(disabled.email!);
      const nowMs = ctx.clock.now().getTime();
      // A link whose validity ended before the worker got to it.
      const lateId = await enqueueDelivery(ctx.db, ctx.deps.random, { kind: 'reset', userId: null, lookupEmail: late.email, toAddress: null, nowMs: nowMs - 3_600_000, notAfterMs: nowMs });
      expect(await ctx.db.selectFrom('mail_outbox').select('id').execute()).toHaveLength(4);

      expect(await ctx.outbox.drain()).toBe(4);

      expect(mailer.sent.map((m) => m.to)).toEqual([known.email]);
      // The unknown and the disabled address leave no row behind.
      const left = await ctx.db.selectFrom('mail_outbox').selectAll().execute();
      expect(left.map((r) => [r.to_address, r.status])).toEqual(
        expect.arrayContaining([
          [known.email, 'sent'],
          [null, 'expired'],
        ]),
      );
      expect(left).toHaveLength(2);
      expect(left.find((r) => r.id === lateId)).toMatchObject({ status: 'expired', lookup_email: null, sent_at: null });
      // No link was minted for the accounts that got nothing.
      const tokenUsers = (await ctx.db.selectFrom('reset_tokens').select('user_id').execute()).map((r) => r.user_id);
      expect(tokenUsers).toContain(known.id);
      expect(tokenUsers).not.toContain(disabled.id);
      expect(tokenUsers).not.toContain(late.id);
      expect(await auditsOf(known.id)).toEqual(['reset_email_sent']);
      expect(await auditsOf(late.id)).toEqual([]);
    });

    it('sends both links of two requests of one account in one batch, and only the newer request\'s works', async () => {
      const user = await addUser(ctx, { email: 'twice.in.a.batch@example.com' });
      await forgot(user.email!);
      ctx.clock.advanceSeconds(1);
      await forgot(user.email!);
      const rows = await ctx.db.selectFrom('mail_outbox').select(['id', 'requested_at']).where('lookup_email', '=', user.email).orderBy('requested_at').execute();
      expect(rows).toHaveLength(2);

      expect(await ctx.outbox.drain()).toBe(2);

      expect(mailer.sent).toHaveLength(2);
      const live = await ctx.db.selectFrom('reset_tokens').select(['token_hash', 'delivery_id']).where('user_id', '=', user.id).execute();
      expect(live).toEqual([{ token_hash: expect.any(String), delivery_id: rows[1]!.id }]);
      const verdicts = await Promise.all(mailer.sent.map(async (m) => ({ hash: hashResetToken(tokenIn(m)), status: await verify(tokenIn(m)) })));
      expect(verdicts.filter((v) => v.status === 200)).toEqual([{ hash: live[0]!.token_hash, status: 200 }]);
    });

    it('claims, looks up, mints and records a batch of 12 in a handful of statements, not a few per email', async () => {
      const users = await Promise.all(Array.from({ length: 12 }, (_, i) => addUser(ctx, { email: `counted.${i}@example.com` })));
      for (const user of users) await forgot(user.email!);
      counter.counts.clear();

      expect(await ctx.outbox.drain()).toBe(12);

      expect(mailer.sent).toHaveLength(12);
      const count = (key: string): number => counter.counts.get(key) ?? 0;
      expect(count('select users')).toBe(1);
      expect(count('insert reset_tokens')).toBe(1);
      // The claim, the rows addressed before the send, the outcomes (written together), and the claim that finds nothing left.
      expect(count('update mail_outbox')).toBeLessThanOrEqual(4);
      expect(count('insert audit_events')).toBe(1);
      const total = [...counter.counts.values()].reduce((a, b) => a + b, 0);
      expect(total, JSON.stringify([...counter.counts])).toBeLessThanOrEqual(9);
    });
  });
}
