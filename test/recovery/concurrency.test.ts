import { setTimeout as sleep } from 'node:timers/promises';
import type { ParsedMail } from 'mailparser';
import { DeleteQueryNode, SelectQueryNode, TableNode, sql, type KyselyPlugin, type OperationNode, type QueryId } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createArgon2Hasher, type PasswordHasher } from '../../src/accounts/passwords.js';
import { systemClock } from '../../src/clock.js';
import { dialectOf, type Db } from '../../src/db/index.js';
import { createMemoryRateLimiter } from '../../src/limits/rate-limiter.js';
import { findEmailSettings, normalizeEmailSettings, saveEmailSettings } from '../../src/mail/settings.js';
import { createOutboxWorker } from '../../src/mail/outbox.js';
import { createConfiguredMailer, type Mailer } from '../../src/mail/transport.js';
import { recoveryHandlers } from '../../src/recovery/delivery.js';
import { hashResetToken } from '../../src/recovery/tokens.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { STRONG_PASSWORD, addUser, makeTestApp, signIn, type TestContext } from '../helpers/app.js';
import { freePort } from '../helpers/cli.js';
import { bothDialects, postgresSuite, waitFor } from '../helpers/pg.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';
import { findTrustedTestCa } from '../helpers/tls.js';

// Races on one account, over real HTTP with a real SMTP server and the worker sending at its real
// concurrency, on SQLite and PostgreSQL: many reset requests, many resets of one link, a reset
// against a password change, a reset against an email change. Each race ends in a state some
// serial order of the same requests could have produced.

const describeOnPostgres = await postgresSuite();
const ca = await findTrustedTestCa();
if (ca === undefined) {
  if (process.env.CI === 'true') throw new Error('the test CA is not trusted: test/global-setup.ts must run (vitest.config.ts globalSetup)');
  console.warn('\n!!!!!!!! SKIPPED concurrency tests: the test CA is missing (install openssl) !!!!!!!!\n');
}

const SECRETS = { 'smtp-sender': 'sender@example.com', 'smtp-password': 'smtp-pass' };
const ROUNDS = 20;

/**
 * The real argon2id hasher, plus a barrier: after arm(n) the next n hash() calls all return at
 * the same moment, so the transactions that follow them start together instead of one hash
 * time apart.
 */
function barrierHasher(): PasswordHasher & { arm(n: number): void; hashed: () => Promise<void> } {
  const real = createArgon2Hasher();
  let expected = 0;
  let arrived = 0;
  let release: (() => void) | undefined;
  let gate: Promise<void> = Promise.resolve();
  let onHashed: (() => void) | undefined;
  return {
    arm(n) {
      expected = n;
      arrived = 0;
      gate = new Promise<void>((resolve) => {
        release = resolve;
        // A side that fails before hashing must not hold the other forever.
        setTimeout(resolve, 5_000).unref();
      });
    },
    /** resolves when the next hash() returns */
    hashed: () => new Promise<void>((resolve) => (onHashed = resolve)),
    async hash(password) {
      const hash = await real.hash(password);
      if (expected > 0) {
        if (++arrived === expected) {
          expected = 0;
          release?.();
        }
        await gate;
      }
      onHashed?.();
      onHashed = undefined;
      return hash;
    },
    verify: (hash, password) => real.verify(hash, password),
  };
}

function tableOf(node: OperationNode | undefined): string | undefined {
  const first = node !== undefined && 'froms' in node ? (node.froms as OperationNode[])[0] : undefined;
  return first !== undefined && TableNode.is(first) ? first.table.identifier.name : undefined;
}

/**
 * Fault injection, a slow database: once armed, the first read of `users` after a reset token is
 * consumed (DELETE … RETURNING on reset_tokens) answers `ms` later. That stretches the window
 * between the reset reading the account and writing the password, where a race would land.
 */
function slowAccountReadAfterConsume(): KyselyPlugin & { arm(ms: number): void } {
  let delayMs = 0;
  let consumed = false;
  const delayed = new WeakSet<QueryId>();
  return {
    arm(ms) {
      delayMs = ms;
      consumed = false;
    },
    transformQuery({ node, queryId }) {
      if (delayMs > 0 && DeleteQueryNode.is(node) && node.returning !== undefined && tableOf(node.from) === 'reset_tokens') consumed = true;
      else if (consumed && SelectQueryNode.is(node) && tableOf(node.from) === 'users') {
        consumed = false;
        delayed.add(queryId);
      }
      return node;
    },
    async transformResult({ result, queryId }) {
      if (delayed.has(queryId)) {
        delayed.delete(queryId);
        await sleep(delayMs);
      }
      return result;
    },
  };
}

interface Harness {
  ctx: TestContext;
  url: string;
  smtp: TestSmtpServer;
  db: Db;
  hasher: ReturnType<typeof barrierHasher>;
  slow: ReturnType<typeof slowAccountReadAfterConsume>;
  mailer: Mailer;
  close(): Promise<void>;
}

async function startHarness(makeDb: () => Promise<{ db: Db; drop(): Promise<void> }>): Promise<Harness> {
  const { db: plainDb, drop } = await makeDb();
  const slow = slowAccountReadAfterConsume();
  const db = plainDb.withPlugin(slow);
  const smtp = await startTestSmtpServer({ ca: ca!, credentials: { user: 'sender@example.com', pass: 'smtp-pass' } });
  const secrets = createMemorySecretStore(SECRETS);
  const hasher = barrierHasher();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const mailer = createConfiguredMailer(() => findEmailSettings(db), secrets);
  const ctx = await makeTestApp({
    db,
    // The per-address limit (3 an hour) is off so that many emails for one account go out at once.
    env: {
      PUBLIC_URL: url,
      LIMIT_RESET_PER_IP_PER_MINUTE: '0',
      LIMIT_FORGOT_PER_IP_PER_MINUTE: '0',
      LIMIT_FORGOT_PER_ADDRESS_PER_HOUR: '0',
      LIMIT_LOGIN_PER_IP_PER_MINUTE: '0',
    },
    deps: { clock: systemClock, secrets, hasher, limiter: createMemoryRateLimiter(systemClock) },
    mailer,
  });
  await saveEmailSettings(db, systemClock, normalizeEmailSettings({ host: '127.0.0.1', port: smtp.port, emailSecretName: 'smtp-sender', passwordSecretName: 'smtp-password', sslEnabled: true }), null);
  // The worker as the server runs it: continuous, up to its default 10 sends at once.
  ctx.outbox.start();
  await ctx.app.listen({ host: '127.0.0.1', port });
  return {
    ctx,
    url,
    smtp,
    db,
    hasher,
    slow,
    mailer,
    async close() {
      await ctx.close();
      await smtp.close();
      await drop();
    },
  };
}

function recipientOf(mail: ParsedMail): string {
  return mail.to && 'text' in mail.to ? mail.to.text : '';
}

function tokenFrom(mail: ParsedMail, url: string): string {
  const match = /href="([^"]+)"/.exec(String(mail.html));
  const prefix = `${url}/reset-password#token=`;
  expect(match?.[1]?.startsWith(prefix)).toBe(true);
  return match![1]!.slice(prefix.length);
}

const dialects = bothDialects(describeOnPostgres, 'gatehouse-race-');

for (const [dialect, makeDb, suite] of dialects) {
  (ca === undefined ? describe.skip : suite)(`racing requests on one account on ${dialect}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(makeDb);
    });
    afterAll(async () => {
      await h?.close();
    });

    const send = (method: string, p: string, body: unknown, cookie?: string): Promise<Response> =>
      fetch(`${h.url}${p}`, {
        method,
        headers: { 'content-type': 'application/json', origin: h.url, ...(cookie === undefined ? {} : { cookie }) },
        body: JSON.stringify(body),
      });
    const post = (p: string, body: unknown, cookie?: string): Promise<Response> => send('POST', p, body, cookie);
    const reset = (token: string, password: string): Promise<Response> => post('/api/auth/reset-password', { token, password, confirmPassword: password });
    const errorOf = async (res: Response): Promise<string | undefined> => (res.status === 204 ? undefined : ((await res.json()) as { error: string }).error);

    /** Asks for a reset link for the address and returns the token from the email that arrives. */
    async function linkFor(email: string): Promise<string> {
      const from = h.smtp.messages.length;
      expect((await post('/api/auth/forgot-password', { email })).status).toBe(202);
      const mail = await waitFor('the reset email', () =>
        h.smtp.messages.slice(from).find((m) => recipientOf(m) === email && m.subject === 'Reset your password'),
      );
      return tokenFrom(mail, h.url);
    }

    it('leaves exactly one working link, the last minted, after 20 parallel reset requests for one account', async () => {
      const email = 'many.requests@example.com';
      const user = await addUser(h.ctx, { email });
      const from = h.smtp.messages.length;
      // Two instances, each worker sending up to its default 10 at once. The burst lands while they
      // are busy elsewhere (paused here), so they find all 20 due together and mint in parallel.
      const other = createOutboxWorker({ db: h.db, clock: systemClock, logger: h.ctx.deps.logger, mailer: async () => h.mailer, handlers: recoveryHandlers(h.ctx.deps) });
      await h.ctx.outbox.stop();
      const answers = await Promise.all(Array.from({ length: 20 }, () => post('/api/auth/forgot-password', { email })));
      expect(answers.map((r) => r.status)).toEqual(Array(20).fill(202));
      h.ctx.outbox.start();
      other.start();
      await waitFor('every delivery to be sent', async () => {
        const rows = await h.db.selectFrom('mail_outbox').select('status').where('user_id', '=', user.id).execute();
        return rows.length === 20 && rows.every((r) => r.status === 'sent') ? rows : undefined;
      });
      await other.stop();
      const mails = h.smtp.messages.slice(from).filter((m) => recipientOf(m) === email);
      const tokens = mails.map((m) => tokenFrom(m, h.url));
      expect(new Set(tokens).size).toBe(20);

      const verdicts = await Promise.all(tokens.map(async (token) => ({ token, status: (await post('/api/auth/reset-password/verify', { token })).status })));
      const valid = verdicts.filter((v) => v.status === 200);
      console.log(`[${dialect}] 20 parallel forgot-password requests for one account: ${mails.length} emails, ${valid.length} valid link(s)`);
      expect(verdicts.filter((v) => v.status !== 200).every((v) => v.status === 400)).toBe(true);
      expect(valid).toHaveLength(1);
      // The one row left is the last mint's, and it is the working link's.
      const rows = await h.db.selectFrom('reset_tokens').select('token_hash').where('user_id', '=', user.id).execute();
      expect(rows).toEqual([{ token_hash: hashResetToken(valid[0]!.token) }]);
      expect((await reset(valid[0]!.token, 'twenty requests one winner')).status).toBe(204);
    });

    it('lets exactly one of 12 resets with one link, released at the same moment, succeed', async () => {
      const email = 'one.link@example.com';
      await addUser(h.ctx, { email });
      const token = await linkFor(email);
      h.hasher.arm(12);
      const results = await Promise.all(
        Array.from({ length: 12 }, async (_, i) => {
          const password = `simultaneous passphrase number ${i}`;
          const res = await reset(token, password);
          return { status: res.status, error: await errorOf(res), password };
        }),
      );
      const winners = results.filter((r) => r.status === 204);
      expect(winners).toHaveLength(1);
      expect(results.filter((r) => r.status !== 204).map((r) => r.error)).toEqual(Array(11).fill('invalid_or_expired_token'));
      expect((await post('/api/auth/login', { login: email, password: winners[0]!.password })).status).toBe(200);
    });

    it(`lets exactly one of a reset and a password change, fired together, succeed, in ${ROUNDS} rounds`, async () => {
      const email = 'pw.race@example.com';
      await addUser(h.ctx, { email });
      let current = STRONG_PASSWORD;
      const tally = { reset: 0, change: 0 };
      for (let round = 0; round < ROUNDS; round++) {
        const cookie = await signIn(h.ctx, email, current);
        const token = await linkFor(email);
        const viaReset = `violet harbor lantern ${round} reset`;
        const viaChange = `amber meadow kettle ${round} change`;
        // Both hashes return together, so both transactions start together; every other round the
        // reset's read of the account is slowed down, so the change can land inside it.
        h.hasher.arm(2);
        h.slow.arm(round % 2 === 0 ? 0 : 30);
        const [r, c] = await Promise.all([reset(token, viaReset), post('/api/auth/change-password', { currentPassword: current, newPassword: viaChange }, cookie)]);
        h.slow.arm(0);
        const outcome = { round, reset: r.status, resetError: await errorOf(r), change: c.status, changeError: await errorOf(c) };
        expect([r.status, c.status].filter((s) => s === 204), JSON.stringify(outcome)).toHaveLength(1);
        const loser = r.status === 204 ? c : r;
        expect(loser.status >= 400 && loser.status < 500, JSON.stringify(outcome)).toBe(true);
        const winner = r.status === 204 ? viaReset : viaChange;
        const other = r.status === 204 ? viaChange : viaReset;
        expect((await post('/api/auth/login', { login: email, password: winner })).status).toBe(200);
        expect((await post('/api/auth/login', { login: email, password: other })).status).toBe(401);
        tally[r.status === 204 ? 'reset' : 'change']++;
        current = winner;
      }
      console.log(`[${dialect}] reset vs change-password, ${ROUNDS} rounds: reset won ${tally.reset}, change won ${tally.change}`);
    });

    it(`serialises a reset with an admin's email change: the reset completes first, or the change voids the link (${ROUNDS} rounds)`, async () => {
      // Records the account's email at the instant its password is written.
      if (dialectOf(h.db) === 'postgres') {
        await sql`create table pw_write_log (user_id text, email text)`.execute(h.db);
        await sql`create function log_pw_write() returns trigger language plpgsql as $$ begin insert into pw_write_log values (old.id, old.email_normalized); return new; end $$`.execute(h.db);
        await sql`create trigger log_pw_write before update of password_hash on users for each row when (old.password_hash is distinct from new.password_hash) execute function log_pw_write()`.execute(h.db);
      } else {
        await sql`create table pw_write_log (user_id text, email text)`.execute(h.db);
        await sql`create trigger log_pw_write before update of password_hash on users for each row when old.password_hash is not new.password_hash begin insert into pw_write_log values (old.id, old.email_normalized); end`.execute(h.db);
      }
      await addUser(h.ctx, { username: 'boss', role: 'system-admin' });
      const admin = await signIn(h.ctx, 'boss');
      const address = (round: number): string => `moving.target.${round}@example.com`;
      const target = await addUser(h.ctx, { email: address(0) });
      const tally = { resetFirst: 0, changeFirst: 0 };
      for (let round = 0; round < ROUNDS; round++) {
        const token = await linkFor(address(round));
        const before = await h.db.selectFrom('users').select('password_hash').where('id', '=', target.id).executeTakeFirstOrThrow();
        await sql`delete from pw_write_log`.execute(h.db);
        const password = `granite orchard signal ${round} reset`;
        // One round in four the change goes out with the reset (and lands while the reset hashes);
        // otherwise it goes out when the reset's hash returns, while its transaction is open and
        // its read of the account has been slowed down by 30 ms.
        h.slow.arm(30);
        const hashed = h.hasher.hashed();
        const resetDone = reset(token, password);
        if (round % 4 !== 0) {
          await Promise.race([hashed, resetDone]);
          await sleep(round % 4 === 1 ? 0 : 3 * (round % 4));
        }
        const patch = await send('PATCH', `/api/users/${target.id}`, { email: address(round + 1) }, admin);
        const r = await resetDone;
        h.slow.arm(0);
        const resetError = await errorOf(r);
        const writes = (await sql<{ user_id: string; email: string }>`select user_id, email from pw_write_log`.execute(h.db)).rows;
        const outcome = JSON.stringify({ round, reset: r.status, resetError, patch: patch.status, writes });
        expect(patch.status, outcome).toBe(200);
        const after = await h.db.selectFrom('users').select(['password_hash', 'email_normalized']).where('id', '=', target.id).executeTakeFirstOrThrow();
        expect(after.email_normalized, outcome).toBe(address(round + 1));
        if (r.status === 204) {
          // Serial order "reset, then email change": the password was written while the account still had the link's address.
          expect(writes, outcome).toEqual([{ user_id: target.id, email: address(round) }]);
          tally.resetFirst++;
        } else {
          // Serial order "email change, then reset": the link died with the old address.
          expect({ status: r.status, error: resetError }, outcome).toEqual({ status: 400, error: 'invalid_or_expired_token' });
          expect(writes, outcome).toEqual([]);
          expect(after.password_hash, outcome).toBe(before.password_hash);
          tally.changeFirst++;
        }
      }
      console.log(`[${dialect}] reset vs email change, ${ROUNDS} rounds: reset first ${tally.resetFirst}, email change first ${tally.changeFirst}`);
    });
  });
}
