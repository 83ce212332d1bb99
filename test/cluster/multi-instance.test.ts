import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createArgon2Hasher } from '../../src/accounts/passwords.js';
import { insertUser } from '../../src/accounts/users-repo.js';
import { migrateToLatest, pendingMigrations } from '../../src/db/index.js';
import { enqueueDelivery } from '../../src/mail/outbox.js';
import { cryptoRandom } from '../../src/random.js';
import { assertBuilt } from '../helpers/cli.js';
import { callApi, linkTokenOf, saveEmailSettings, signIn, startCluster, startCountingSmtpServer, type Cluster, type ClusterInstance, type CountingSmtpServer } from '../helpers/cluster.js';
import { createPgTestDb, postgresSuite, waitFor, type PgTestDb } from '../helpers/pg.js';
import { deleteRedisKeys, REDIS_URL, redisOrSkip } from '../helpers/redis.js';
import { findTrustedTestCa } from '../helpers/tls.js';

// Issue 11, "several instances, one truth": three built servers (`gatehouse serve`) on their own
// ports and DATA_DIRs, one PostgreSQL database, one Redis, a real SMTP server (STARTTLS + AUTH)
// counting what arrives. Settings are saved through one instance's API, as an admin would.
// Beside them, item e's three instances start at once on an empty database of their own.
//
// The SMTP secrets come from the environment (SECRETS_PROVIDER=env), as in a container: the
// password is the same everywhere; each instance's sender secret names the instance
// (gatehouse-a@…), so every message the SMTP server receives says which instance sent it.
//
// Redis: the instances share one key prefix of this run's own (REDIS_KEY_PREFIX), so nothing
// else using the same Redis counts with them, and afterAll deletes every key under it. The per-IP
// limits are off: every request here comes from 127.0.0.1.

const describeOnPostgres = await postgresSuite();
const haveRedis = await redisOrSkip('multi-instance tests (test/cluster/multi-instance.test.ts)');
const ca = await findTrustedTestCa();
if (ca === undefined) {
  if (process.env.CI === 'true') throw new Error('the test CA is not trusted: test/global-setup.ts must run (vitest.config.ts globalSetup)');
  console.warn('\n!!!!!!!! SKIPPED multi-instance tests: the test CA is missing (install openssl) !!!!!!!!\n');
}
const describeCluster = haveRedis && ca !== undefined ? describeOnPostgres : describe.skip;

/** In every address and login of this run: the Redis keys it leaves are found by it. */
const RUN = `mi${randomBytes(4).toString('hex')}`;
/** What every key the three instances write to Redis starts with. */
const REDIS_KEY_PREFIX = `gatehouse-${RUN}:`;
/** Behind the load balancer: links in emails, the Origin of every request, the Message-ID's domain. */
const PUBLIC_URL = 'http://gatehouse.test';
const SMTP_PASSWORD = 'relay pass for the cluster';
const PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'a completely new passphrase';
const ADMIN = `${RUN}-admin`;
const BULK = 1_000;

const addressOf = (who: string): string => `${RUN}-${who}@example.org`;
const senderOf = (instanceName: string): string => `gatehouse-${instanceName.toLowerCase()}@example.org`;

/** The environment every instance shares (one database, one Redis, one SMTP secret). */
function sharedEnv(databaseUrl: string): Record<string, string> {
  return {
    DATABASE_URL: databaseUrl,
    // 3 instances × 2 pools × 5 = 30 connections at most, beside the rest of the suite's.
    DATABASE_POOL_SIZE: '5',
    REDIS_URL,
    REDIS_KEY_PREFIX,
    PUBLIC_URL,
    MAIL_DEV_INBOX: 'false',
    SECRETS_PROVIDER: 'env',
    SECRETS_CACHE_SECONDS: '1',
    GATEHOUSE_SECRET_SMTP_PASSWORD: SMTP_PASSWORD,
    LIMIT_FORGOT_PER_IP_PER_MINUTE: '0',
    LIMIT_RESET_PER_IP_PER_MINUTE: '0',
    LIMIT_LOGIN_PER_IP_PER_MINUTE: '0',
    LOG_FORMAT: 'json',
    NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS ?? '',
  };
}

/** A request to one instance from a browser on PUBLIC_URL. */
const api = (instance: ClusterInstance, method: string, path: string, options: { body?: unknown; cookie?: string } = {}): Promise<Response> =>
  callApi(instance.url, method, path, { origin: PUBLIC_URL, ...options });

/** Item e's cluster: three instances started at once on a database with no tables. */
interface EmptyStart {
  pgDb: PgTestDb;
  /** the app's migrations, as pending on the empty database before the start */
  expected: string[];
  cluster?: Cluster;
  /** from the spawn to the last /healthz answer */
  seconds?: number;
  error?: unknown;
}

/**
 * Creates the empty database and starts three instances on it at once; failures are kept for the
 * test to report. Spawned together, the three still reach their migrations up to seconds apart on
 * a loaded machine, and one migration run takes a fraction of a second: they would seldom overlap.
 * So a gate holds them: an open transaction creates kysely_migration, the first table a Migrator
 * creates; each instance's CREATE TABLE waits on it. Once all three wait, the transaction rolls
 * back (the database is empty again) and the three migrate at the same moment.
 */
async function startOnEmptyDatabase(): Promise<EmptyStart> {
  const pgDb = await createPgTestDb();
  const start: EmptyStart = { pgDb, expected: await pendingMigrations(pgDb.db) };
  const startedMs = Date.now();
  let starting: Promise<Cluster> | undefined;
  try {
    await pgDb.db.connection().execute(async (gate) => {
      await sql`begin`.execute(gate);
      await sql`create table kysely_migration (name varchar(255) primary key, timestamp varchar(255) not null)`.execute(gate);
      try {
        starting = startCluster({ size: 3, env: sharedEnv(pgDb.url), envOf: (name) => ({ GATEHOUSE_SECRET_SMTP_SENDER: senderOf(name) }) });
        // A failed start ends the wait at once: its error is the one to report.
        const failed = starting.then(
          () => undefined,
          () => true,
        );
        await waitFor(
          'three instances waiting to migrate',
          async () => {
            if ((await Promise.race([failed, undefined])) === true) return 'failed';
            const waiting = await sql<{ n: number | string }>`select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`.execute(pgDb.db);
            return Number(waiting.rows[0]!.n) >= 3 ? 'all three' : undefined;
          },
          20_000,
          50,
        );
      } finally {
        await sql`rollback`.execute(gate);
      }
    });
    start.cluster = await starting!;
    start.seconds = (Date.now() - startedMs) / 1000;
  } catch (err) {
    start.error = err;
    // Whatever did start is stopped by afterAll through start.cluster; a rejected start stopped its own.
    start.cluster = await starting?.catch(() => undefined);
  }
  return start;
}

describeCluster('three instances on one PostgreSQL database and one Redis', () => {
  let pgDb: PgTestDb;
  let smtp: CountingSmtpServer;
  let cluster: Cluster;
  let empty: EmptyStart | undefined;
  let passwordHash: string;
  let A: ClusterInstance;
  let B: ClusterInstance;
  let C: ClusterInstance;

  /** The cluster of items a–d: a migrated database with an admin and three users, the email settings saved through A. */
  async function startMain(): Promise<void> {
    pgDb = await createPgTestDb();
    await migrateToLatest(pgDb.db);
    passwordHash = await createArgon2Hasher().hash(PASSWORD);
    const nowMs = Date.now();
    const user = (who: string, role: 'system-admin' | 'user' = 'user') =>
      insertUser(pgDb.db, { id: randomUUID(), email: who === 'admin' ? null : addressOf(who), username: who === 'admin' ? ADMIN : null, name: who, role, passwordHash, mustChangePassword: false, nowMs });
    await Promise.all([user('admin', 'system-admin'), user('alice'), user('bob'), user('carol')]);
    smtp = await startCountingSmtpServer({ ca: ca!, password: SMTP_PASSWORD });
    cluster = await startCluster({ size: 3, env: sharedEnv(pgDb.url), envOf: (name) => ({ GATEHOUSE_SECRET_SMTP_SENDER: senderOf(name) }) });
    [A, B, C] = cluster.instances as [ClusterInstance, ClusterInstance, ClusterInstance];
    const cookie = await signIn(A.url, PUBLIC_URL, ADMIN, PASSWORD);
    const saved = await saveEmailSettings(A.url, PUBLIC_URL, cookie, { host: '127.0.0.1', port: smtp.port, emailSecretName: 'smtp-sender', passwordSecretName: 'smtp-password', sslEnabled: true }, PASSWORD);
    expect(saved.secretsResolve).toEqual({ email: true, password: true, clientSecret: null, certificate: null });
  }

  // Both clusters start together: starting is most of their cost, and the second costs little
  // wall time beside the first. Item e runs first and stops its instances before items a–d.
  beforeAll(async () => {
    assertBuilt();
    const [main, emptyStart] = await Promise.allSettled([startMain(), startOnEmptyDatabase()]);
    if (emptyStart.status === 'fulfilled') empty = emptyStart.value;
    if (main.status === 'rejected') throw main.reason;
    if (emptyStart.status === 'rejected') throw emptyStart.reason;
  });

  afterAll(async () => {
    await Promise.all([cluster?.stop(), empty?.cluster?.stop()]);
    await smtp?.close();
    await Promise.all([pgDb?.drop(), empty?.pgDb.drop()]);
    await deleteRedisKeys(REDIS_KEY_PREFIX);
  });

  it('three instances starting at once on an empty database migrate it once, create one admin, print its password once, and all come up ready', async () => {
    const { pgDb: emptyDb, expected, cluster: started, seconds, error } = empty!;
    try {
      // "all come up": none failed to start (a migration run twice fails its instance's start)
      if (error !== undefined) throw error;
      const instances = started!.instances;
      console.log(`empty database: three instances started at once, all serving after ${seconds!.toFixed(2)} s`);
      expect(expected.length).toBeGreaterThan(0);

      const migrated = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(emptyDb.db);
      expect(migrated.rows.map((r) => r.name)).toEqual(expected);
      const users = await emptyDb.db.selectFrom('users').select(['username', 'role', 'must_change_password']).execute();
      expect(users).toEqual([{ username: 'admin', role: 'system-admin', must_change_password: 1 }]);

      const banners = instances.filter((instance) => /^\s*Password:/m.test(instance.server.stdout()));
      expect(banners).toHaveLength(1);
      // The password printed is the one stored: it signs in on another instance.
      const printed = /^\s*Password:\s+(\S+)/m.exec(banners[0]!.server.stdout())![1]!;
      const other = instances.find((i) => i !== banners[0])!;
      await signIn(other.url, PUBLIC_URL, 'admin', printed);

      for (const instance of instances) {
        const ready = await fetch(`${instance.url}/readyz`);
        expect(ready.status, `/readyz on ${instance.name}`).toBe(200);
        expect(await ready.json()).toEqual({ status: 'ready' });
      }
    } finally {
      // Not left running beside the delivery test.
      await started?.stop();
    }
  });

  /** Waits for the next reset email to `address` after the `before` already there; its link's token. */
  async function nextResetToken(address: string, before: number): Promise<string> {
    await smtp.waitFor(`a reset email to ${address}`, () => smtp.to(address).length, before + 1);
    const parsed = await smtp.parse(smtp.to(address)[before]!);
    expect(parsed.subject).toBe('Reset your password');
    expect(parsed.text).toContain(`${PUBLIC_URL}/reset-password#token=`);
    return linkTokenOf(parsed.text ?? '');
  }

  it('a reset requested on A completes on B, and the new password signs in on C', async () => {
    const alice = addressOf('alice');
    const before = smtp.to(alice).length;
    expect((await api(A, 'POST', '/api/auth/forgot-password', { body: { email: alice } })).status).toBe(202);
    const token = await nextResetToken(alice, before);

    expect((await api(B, 'POST', '/api/auth/reset-password/verify', { body: { token } })).status).toBe(200);
    const reset = await api(B, 'POST', '/api/auth/reset-password', { body: { token, password: NEW_PASSWORD, confirmPassword: NEW_PASSWORD } });
    expect(reset.status, await reset.clone().text()).toBe(204);

    expect((await api(C, 'POST', '/api/auth/login', { body: { login: alice, password: NEW_PASSWORD } })).status).toBe(200);
    expect((await api(C, 'POST', '/api/auth/login', { body: { login: alice, password: PASSWORD } })).status).toBe(401);
    // The link is spent everywhere, not only where it was used.
    expect((await api(A, 'POST', '/api/auth/reset-password/verify', { body: { token } })).status).toBe(400);
  });

  it('a session made on A works on B and C, and a reset done on C revokes it on all three', async () => {
    const bob = addressOf('bob');
    const cookie = await signIn(A.url, PUBLIC_URL, bob, PASSWORD);
    for (const instance of [A, B, C]) {
      const me = await api(instance, 'GET', '/api/auth/me', { cookie });
      expect(me.status, `GET /api/auth/me on ${instance.name}`).toBe(200);
      expect(((await me.json()) as { user: { email: string } }).user.email).toBe(bob);
    }

    const before = smtp.to(bob).length;
    expect((await api(C, 'POST', '/api/auth/forgot-password', { body: { email: bob } })).status).toBe(202);
    const token = await nextResetToken(bob, before);
    expect((await api(C, 'POST', '/api/auth/reset-password', { body: { token, password: NEW_PASSWORD, confirmPassword: NEW_PASSWORD } })).status).toBe(204);

    for (const instance of [A, B, C]) {
      expect((await api(instance, 'GET', '/api/auth/me', { cookie })).status, `GET /api/auth/me on ${instance.name} after the reset`).toBe(401);
    }
  });

  it('the per-address forgot limit (3 an hour) holds across the three together: 9 requests spread over A, B, C send exactly 3 emails', async () => {
    const carol = addressOf('carol');
    const instances = [A, B, C, A, B, C, A, B, C];
    const answers = await Promise.all(instances.map((instance) => api(instance, 'POST', '/api/auth/forgot-password', { body: { email: carol } })));
    // Over the limit the answer is the same 202: nothing tells an attacker the limit was reached.
    expect(answers.map((r) => r.status)).toEqual(instances.map(() => 202));

    // A row is queued before the 202 is sent: these are all the deliveries there will ever be.
    const rows = () => pgDb.db.selectFrom('mail_outbox').select(['id', 'status']).where((eb) => eb.or([eb('lookup_email', '=', carol), eb('to_address', '=', carol)])).execute();
    expect(await rows()).toHaveLength(3);
    // The counter is Redis's, one for the three: every request counted once in it.
    const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
    let counted: string | null;
    try {
      counted = await redis.get(`${REDIS_KEY_PREFIX}rl:forgot:address:${carol}`);
    } finally {
      redis.disconnect();
    }
    expect(counted).toBe('9');
    await waitFor('the 3 deliveries to carol sent', async () => ((await rows()).every((r) => r.status === 'sent') ? true : undefined));
    const delivered = smtp.to(carol);
    expect(delivered).toHaveLength(3);
    expect(new Set(delivered.map((m) => m.messageId)).size).toBe(3);
    console.log(`forgot limit across instances: 9 requests (3 each on A, B, C) → ${delivered.length} emails; the count is kept in Redis (${REDIS_KEY_PREFIX}rl:forgot:address:<address> = ${counted}), not in PostgreSQL`);
  });

  it(`${BULK} queued emails with three workers: each delivered exactly once`, async () => {
    const addresses = Array.from({ length: BULK }, (_, i) => addressOf(`bulk${i}`));
    const nowMs = Date.now();
    await pgDb.db
      .insertInto('users')
      .values(
        addresses.map((email, i) => ({
          id: randomUUID(),
          email,
          email_normalized: email,
          username: null,
          username_normalized: null,
          name: `Bulk ${i}`,
          role: 'user' as const,
          disabled: 0,
          must_change_password: 0,
          password_hash: passwordHash,
          password_changed_at: nowMs,
          failed_login_count: 0,
          locked_at: null,
          created_at: nowMs,
          updated_at: nowMs,
        })),
      )
      .execute();
    const isBulk = new Set(addresses);
    const bulkMessages = () => smtp.messages.filter((m) => m.to.some((to) => isBulk.has(to)));

    // Queued by the app's own enqueueDelivery, exactly as forgot-password queues them (kind reset,
    // the typed address to look up), in one transaction while the three workers run: they meet
    // the whole backlog at once, the hardest case for claiming. 1,000 requests over HTTP cost a
    // third more CPU on 2 cores; the tests above take the HTTP path across instances.
    const startedMs = Date.now();
    await pgDb.db.transaction().execute(async (trx) => {
      for (const email of addresses) {
        await enqueueDelivery(trx, cryptoRandom, { kind: 'reset', userId: null, lookupEmail: email, toAddress: null, nowMs: startedMs, notAfterMs: startedMs + 3_600_000, ip: '127.0.0.1' });
      }
    });
    const queuedMs = Date.now();

    await smtp.waitFor(`${BULK} bulk emails`, () => bulkMessages().length, BULK, 45_000);
    const deliveredMs = Date.now();
    const rows = () =>
      pgDb.db.selectFrom('mail_outbox').select(['status', 'attempts']).where('kind', '=', 'reset').where('to_address', 'like', `${RUN}-bulk%`).execute();
    // The row is marked sent after the SMTP server took the message: wait for the last marks.
    await waitFor('every bulk row marked sent', async () => {
      const r = await rows();
      return r.length === BULK && r.every((row) => row.status === 'sent') ? r : undefined;
    });
    const finalRows = await rows();

    const messages = bulkMessages();
    const byMessageId = new Set(messages.map((m) => m.messageId));
    const byRecipient = new Map<string, number>();
    for (const m of messages) for (const to of m.to) byRecipient.set(to, (byRecipient.get(to) ?? 0) + 1);
    const perInstance: Record<string, number> = {};
    for (const m of messages) perInstance[m.authUser ?? '?'] = (perInstance[m.authUser ?? '?'] ?? 0) + 1;
    const maxAttempts = Math.max(...finalRows.map((r) => r.attempts));
    const sessions = new Set(messages.map((m) => m.sessionId)).size;

    const seconds = (fromMs: number, toMs: number): string => ((toMs - fromMs) / 1000).toFixed(2);
    const firstEmailMs = Math.min(...messages.map((m) => m.receivedAtMs));
    console.log(
      `exactly-once: ${messages.length} emails delivered for ${BULK} deliveries queued, ${byMessageId.size} distinct Message-IDs, ${byRecipient.size} distinct recipients (max ${Math.max(...byRecipient.values())} per recipient), mail_outbox ${finalRows.length} rows, ${finalRows.filter((r) => r.status === 'sent').length} sent, max attempts ${maxAttempts}`,
    );
    console.log(
      `throughput: ${BULK} deliveries queued in ${seconds(startedMs, queuedMs)} s; emails from ${seconds(queuedMs, firstEmailMs)} s to ${seconds(queuedMs, deliveredMs)} s after the commit: ${Math.round((BULK * 1000) / (deliveredMs - queuedMs))} emails/s over three instances`,
    );
    console.log(`per-instance split (by SMTP AUTH user): ${Object.entries(perInstance).sort().map(([who, n]) => `${who} ${n}`).join(', ')}; ${sessions} SMTP connections`);

    expect(messages).toHaveLength(BULK);
    expect(byMessageId.size).toBe(BULK);
    expect(byRecipient.size).toBe(BULK);
    expect([...byRecipient.values()].every((n) => n === 1)).toBe(true);
    expect(finalRows).toHaveLength(BULK);
    // No lease expired (120 s by default, against a run of seconds): no row was ever claimed twice.
    expect(maxAttempts).toBe(1);
    // Every message came from one of the three instances, and the work was shared.
    expect(Object.keys(perInstance).every((who) => [A, B, C].some((i) => senderOf(i.name) === who))).toBe(true);
    expect(Object.values(perInstance).filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
  }, 60_000);
});
