import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { ParsedMail } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.js';
import { systemClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import type { AppDeps } from '../../src/deps.js';
import { createDb, migrateToLatest, type Db } from '../../src/db/index.js';
import { ensureFirstAdmin } from '../../src/accounts/first-admin.js';
import { createArgon2Hasher } from '../../src/accounts/passwords.js';
import { createMemoryRateLimiter } from '../../src/limits/rate-limiter.js';
import { createLogger } from '../../src/logger.js';
import { createOutboxWorker, type OutboxWorker } from '../../src/mail/outbox.js';
import { findEmailSettings } from '../../src/mail/settings.js';
import { createConfiguredMailer } from '../../src/mail/transport.js';
import { cryptoRandom } from '../../src/random.js';
import { recoveryHandlers } from '../../src/recovery/delivery.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { freePort } from '../helpers/cli.js';
import { createPgTestDb, postgresSuite, type PostgresDescribe } from '../helpers/pg.js';
import { startTestSmtpServer, type TestSmtpServer } from '../helpers/smtp.js';
import { findTrustedTestCa } from '../helpers/tls.js';
import {
  describeHits,
  dumpAllTables,
  findSecrets,
  findSecretsInBytes,
  recordingRandom,
  rowText,
  type Hit,
  type Secret,
} from './support/secret-scan.js';

// Issue 4 item 5: after the whole flow — first admin with a temporary password, sign-in, change
// password, users created with and without a password, forgot-password, reset by the mailed link,
// an admin's send-reset, email settings whose values live in the secret store, a passing and a
// failing SMTP test, a delivery that fails with the provider's error in last_error — no log line
// (the logger at 'trace', plus anything written to stdout/stderr), no row of any table the
// database lists, no HTTP response and no mail holds a raw token, a password (temporary, old, new,
// mistyped) or the SMTP password. The only exception is the contract's: the Set-Cookie of the
// sign-in that issued a session. The tokens searched for are every random value the app drew,
// through a recording Random, so tokens minted and voided without ever leaving are covered too.

const describeOnPostgres = await postgresSuite();
const ca = await findTrustedTestCa();
if (ca === undefined) {
  if (process.env.CI === 'true') throw new Error('the test CA is not trusted: test/global-setup.ts must run (vitest.config.ts globalSetup)');
  console.warn('\n!!!!!!!! SKIPPED secrets-in-output tests: the test CA is missing (install openssl) !!!!!!!!\n');
}

const SALT = randomBytes(4).toString('hex');
const SMTP_USER = 'sender@example.com';
const SMTP_PASS = `Smtp-${SALT}-cobalt-Secret`;
const PASSWORDS = {
  'admin new password': `kestrel harbour ${SALT} lantern`,
  'admin wrong current password': `not my current ${SALT} osprey`,
  'user password at creation': `quiet meadow ${SALT} copper`,
  'user password set by reset': `amber tundra ${SALT} violin`,
  'user mistyped confirmation': `amber tundra ${SALT} violim`,
  'user password chosen by set-password link': `blåbær "syltetøy" ${SALT} fjord`,
  'a wrong password typed at sign-in': `pelican quarry ${SALT} window`,
} as const;

interface Exchange {
  what: string;
  status: number;
  headers: [string, string][];
  setCookies: string[];
  body: string;
}

interface Harness {
  url: string;
  db: Db;
  dbFiles: string[];
  app: FastifyInstance;
  worker: OutboxWorker;
  smtp: TestSmtpServer;
  refusing: TestSmtpServer;
  logs: string[];
  exchanges: Exchange[];
  random: ReturnType<typeof recordingRandom>;
  deps: AppDeps;
  secrets: Secret[];
  /** session tokens, each allowed only in the Set-Cookie of the response that issued it */
  issuedSessions: Map<Exchange, string>;
  close(): Promise<void>;
}

async function startHarness(makeDb: () => Promise<{ db: Db; files: string[]; drop(): Promise<void> }>): Promise<Harness> {
  const { db, files, drop } = await makeDb();
  await migrateToLatest(db);
  const smtp = await startTestSmtpServer({ ca: ca!, credentials: { user: SMTP_USER, pass: SMTP_PASS } });
  // A provider that refuses our credentials, with its own error text.
  const refusing = await startTestSmtpServer({ ca: ca!, credentials: { user: SMTP_USER, pass: 'what-the-provider-expects' } });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const logs: string[] = [];
  const logger = createLogger(
    'trace',
    new Writable({
      write(chunk, _encoding, callback) {
        logs.push(...String(chunk).split('\n').filter((line) => line !== ''));
        callback();
      },
    }),
  );
  const config = loadConfig({ PUBLIC_URL: url });
  const random = recordingRandom(cryptoRandom);
  const secretStore = createMemorySecretStore({ 'smtp-sender': SMTP_USER, 'smtp-password': SMTP_PASS });
  const base = { config, db, clock: systemClock, random, logger };
  const mailer = createConfiguredMailer(() => findEmailSettings(db), secretStore);
  const worker = createOutboxWorker({
    db,
    clock: systemClock,
    logger,
    mailer: async () => mailer,
    handlers: recoveryHandlers(base),
    // A failed delivery stays failed for the rest of the test.
    baseBackoffMs: 10 * 60_000,
    pollIntervalMs: 100,
  });
  const deps: AppDeps = {
    ...base,
    secrets: secretStore,
    hasher: createArgon2Hasher(),
    limiter: createMemoryRateLimiter(systemClock),
    outbox: worker,
    webRoot: undefined,
    loadShedding: { maxEventLoopDelayMs: 0, sampleIntervalMs: 1000 },
  };
  const app = await buildApp(deps);
  await app.listen({ host: '127.0.0.1', port });
  worker.start();
  return {
    url,
    db,
    dbFiles: files,
    app,
    worker,
    smtp,
    refusing,
    logs,
    exchanges: [],
    random,
    deps,
    secrets: [],
    issuedSessions: new Map(),
    async close() {
      await worker.stop();
      mailer.close();
      await app.close();
      await smtp.close();
      await refusing.close();
      await drop();
    },
  };
}

/** Everything written to stdout and stderr while `work` runs, passed through as usual. */
async function capturingStdio<T>(into: string[], work: () => Promise<T>): Promise<T> {
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  const capture =
    (write: typeof out) =>
    (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
      into.push(...String(chunk).split('\n').filter((line) => line !== ''));
      return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
    };
  process.stdout.write = capture(out) as typeof process.stdout.write;
  process.stderr.write = capture(err) as typeof process.stderr.write;
  try {
    return await work();
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
  }
}

function tokenIn(mail: ParsedMail): string {
  const token = /#token=([A-Za-z0-9_-]{43})/.exec(mail.text ?? '')?.[1];
  if (!token) throw new Error(`no link in the mail "${mail.subject}"`);
  return token;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The whole flow over HTTP; every exchange is recorded, every status checked. */
async function runWholeFlow(h: Harness): Promise<void> {
  const call = async (method: string, urlPath: string, options: { json?: unknown; cookie?: string } = {}): Promise<Exchange> => {
    const headers: Record<string, string> = { origin: h.url };
    if (options.json !== undefined) headers['content-type'] = 'application/json';
    if (options.cookie !== undefined) headers.cookie = options.cookie;
    const res = await fetch(`${h.url}${urlPath}`, { method, headers, body: options.json === undefined ? undefined : JSON.stringify(options.json) });
    const exchange: Exchange = { what: `${method} ${urlPath} → ${res.status}`, status: res.status, headers: [...res.headers], setCookies: res.headers.getSetCookie(), body: await res.text() };
    h.exchanges.push(exchange);
    return exchange;
  };
  const expectStatus = (exchange: Exchange, status: number): Exchange => {
    expect(exchange.status, `${exchange.what}: ${exchange.body}`).toBe(status);
    return exchange;
  };
  const signIn = async (login: string, password: string): Promise<string> => {
    const res = expectStatus(await call('POST', '/api/auth/login', { json: { login, password } }), 200);
    const token = /^gatehouse_session=([^;]+)/.exec(res.setCookies.find((c) => c.startsWith('gatehouse_session=')) ?? '')?.[1];
    if (!token) throw new Error('no session cookie');
    h.issuedSessions.set(res, token);
    return `gatehouse_session=${token}`;
  };
  const nextMail = async (to: string): Promise<ParsedMail> => {
    const mail = await waitFor(`a mail to ${to}`, async () =>
      h.smtp.messages.find((m) => !seenMails.has(m) && (m.to && 'text' in m.to ? m.to.text : '').toLowerCase() === to.toLowerCase()),
    );
    seenMails.add(mail);
    return mail;
  };
  const seenMails = new Set<ParsedMail>();

  // 1. First start: `admin` with a generated temporary password that must be changed.
  const boot = await ensureFirstAdmin(h.deps);
  if (!boot.created) throw new Error('the first admin was not created');
  const temporary = boot.password;
  h.secrets.push({ label: 'temporary admin password', value: temporary });
  const nearMiss = `${temporary.slice(0, -1)}${temporary.endsWith('x') ? 'y' : 'x'}`;
  h.secrets.push({ label: 'a near miss of the temporary password', value: nearMiss });
  expectStatus(await call('POST', '/api/auth/login', { json: { login: 'admin', password: nearMiss } }), 401);
  const adminFirst = await signIn('admin', temporary);
  expectStatus(await call('GET', '/api/users', { cookie: adminFirst }), 403);

  // 2. Change the temporary password (a wrong current password first).
  expectStatus(
    await call('POST', '/api/auth/change-password', { cookie: adminFirst, json: { currentPassword: PASSWORDS['admin wrong current password'], newPassword: PASSWORDS['admin new password'] } }),
    400,
  );
  expectStatus(await call('POST', '/api/auth/change-password', { cookie: adminFirst, json: { currentPassword: temporary, newPassword: PASSWORDS['admin new password'] } }), 204);
  const admin = await signIn('admin', PASSWORDS['admin new password']);

  // 3. Email settings: names in the database, values in the secret store; a passing SMTP test.
  const settings = { host: '127.0.0.1', port: h.smtp.port, emailSecretName: 'smtp-sender', passwordSecretName: 'smtp-password', sslEnabled: true };
  // Changing where mail goes asks for the admin's password again (so it travels once more, and must not be logged).
  const reauth = { currentPassword: PASSWORDS['admin new password'] };
  const saved = JSON.parse(expectStatus(await call('PUT', '/api/settings/email', { cookie: admin, json: { ...settings, ...reauth } }), 200).body);
  expect(saved.secretsResolve).toEqual({ email: true, password: true, clientSecret: null, certificate: null });
  expectStatus(await call('GET', '/api/settings/email', { cookie: admin }), 200);
  expectStatus(await call('POST', '/api/settings/email/test', { cookie: admin, json: { to: 'ops@example.com' } }), 200);
  await nextMail('ops@example.com');

  // 4. Users: one with a password, one without (a set-password link, followed).
  expectStatus(
    await call('POST', '/api/users', { cookie: admin, json: { email: 'Pat.Doe@example.com', username: 'pat', name: 'Pat Doe', role: 'user', password: PASSWORDS['user password at creation'] } }),
    201,
  );
  await signIn('pat', PASSWORDS['user password at creation']);
  expectStatus(await call('POST', '/api/auth/login', { json: { login: 'pat@example.com', password: PASSWORDS['a wrong password typed at sign-in'] } }), 401);
  expectStatus(await call('POST', '/api/users', { cookie: admin, json: { email: 'sam@example.com', name: 'Sam Roe', role: 'user' } }), 201);
  const setPasswordToken = tokenIn(await nextMail('sam@example.com'));
  expectStatus(await call('POST', '/api/auth/reset-password/verify', { json: { token: setPasswordToken } }), 200);
  const samPassword = PASSWORDS['user password chosen by set-password link'];
  expectStatus(await call('POST', '/api/auth/reset-password', { json: { token: setPasswordToken, password: samPassword, confirmPassword: samPassword } }), 204);
  const sam = await signIn('sam@example.com', samPassword);
  expectStatus(await call('POST', '/api/auth/logout', { cookie: sam }), 204);

  // 5. Forgot-password, a refused reset (confirmation mistyped), the reset, sign-in with the new password.
  expectStatus(await call('POST', '/api/auth/forgot-password', { json: { email: 'pat.doe@EXAMPLE.com' } }), 202);
  expectStatus(await call('POST', '/api/auth/forgot-password', { json: { email: 'nobody@example.com' } }), 202);
  const resetToken = tokenIn(await nextMail('Pat.Doe@example.com'));
  // The token in a query string (an old-style link, a mail scanner, a person pasting): the request
  // lines and any error line log the path, never the value. (No web app in this harness: 404.)
  expectStatus(await call('GET', `/reset-password?token=${resetToken}`), 404);
  expectStatus(await call('GET', `/api/auth/reset-password/verify?token=${resetToken}`), 405);
  expectStatus(await call('POST', '/api/auth/reset-password/verify', { json: { token: resetToken } }), 200);
  expectStatus(
    await call('POST', '/api/auth/reset-password', {
      json: { token: resetToken, password: PASSWORDS['user password set by reset'], confirmPassword: PASSWORDS['user mistyped confirmation'] },
    }),
    400,
  );
  expectStatus(
    await call('POST', '/api/auth/reset-password', { json: { token: resetToken, password: PASSWORDS['user password set by reset'], confirmPassword: PASSWORDS['user password set by reset'] } }),
    204,
  );
  expectStatus(await call('POST', '/api/auth/reset-password', { json: { token: resetToken, password: PASSWORDS['user password set by reset'], confirmPassword: PASSWORDS['user password set by reset'] } }), 400);
  await nextMail('Pat.Doe@example.com'); // "your password was changed"
  const pat = await signIn('pat', PASSWORDS['user password set by reset']);
  expectStatus(await call('GET', '/api/auth/me', { cookie: pat }), 200);

  // 6. An admin's "Send reset link": the link stays live, unused.
  const users = JSON.parse(expectStatus(await call('GET', '/api/users', { cookie: admin }), 200).body) as { users: { id: string; username: string | null }[] };
  const patId = users.users.find((u) => u.username === 'pat')!.id;
  expectStatus(await call('POST', `/api/users/${patId}/send-reset`, { cookie: admin }), 202);
  tokenIn(await nextMail('Pat.Doe@example.com'));

  // 7. A provider that refuses the credentials: the SMTP test fails, and so does a delivery, whose
  //    last_error then holds the provider's error.
  expectStatus(await call('PUT', '/api/settings/email', { cookie: admin, json: { ...settings, port: h.refusing.port, ...reauth } }), 200);
  const failedTest = JSON.parse(expectStatus(await call('POST', '/api/settings/email/test', { cookie: admin, json: { to: 'ops@example.com' } }), 502).body);
  expect(failedTest.error).toBe('auth_failed');
  expectStatus(await call('POST', '/api/auth/forgot-password', { json: { email: 'sam@example.com' } }), 202);
  const failed = await waitFor('the delivery to fail', async () => {
    const row = await h.db.selectFrom('mail_outbox').selectAll().where('to_address', '=', 'sam@example.com').where('last_error', 'is not', null).executeTakeFirst();
    return row ?? undefined;
  });
  expect(failed.last_error).toMatch(/auth_failed: .*Username and Password not accepted/);

  // 8. What admins look at.
  expectStatus(await call('GET', '/api/mail/deliveries', { cookie: admin }), 200);
  expectStatus(await call('GET', '/api/audit?limit=200', { cookie: admin }), 200);
  expectStatus(await call('GET', '/api/settings/email', { cookie: admin }), 200);
  expectStatus(await call('POST', '/api/auth/logout', { cookie: admin }), 204);

  // Everything the app ever drew at random, and every password typed.
  h.secrets.push(
    ...Object.entries(PASSWORDS).map(([label, value]) => ({ label, value })),
    { label: 'SMTP password (secret store)', value: SMTP_PASS },
    { label: 'SMTP AUTH PLAIN payload', value: Buffer.from(`\0${SMTP_USER}\0${SMTP_PASS}`).toString('base64') },
    ...h.random.secrets(),
  );
  await h.worker.stop();
}

const dialects: [string, () => Promise<{ db: Db; files: string[]; drop(): Promise<void> }>, PostgresDescribe][] = [
  [
    'SQLite',
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-secrets-'));
      const file = path.join(dir, 'gatehouse.sqlite');
      const db = createDb({ kind: 'sqlite', file });
      return { db, files: [file, `${file}-wal`], drop: async () => fs.rmSync(dir, { recursive: true, force: true }) };
    },
    describe.runIf(true),
  ],
  [
    'PostgreSQL',
    async () => {
      const pg = await createPgTestDb();
      return { db: pg.db, files: [], drop: () => pg.drop() };
    },
    describeOnPostgres,
  ],
];

for (const [dialect, makeDb, suite] of dialects) {
  (ca === undefined ? describe.skip : suite)(`no secret in any output after the whole flow, on ${dialect}`, () => {
    let h: Harness;
    const printed: string[] = [];
    beforeAll(async () => {
      h = await startHarness(makeDb);
      await capturingStdio(printed, () => runWholeFlow(h));
    }, 60_000);
    afterAll(async () => {
      await h?.close();
    });

    it('knows what it is looking for: every kind of secret was produced', () => {
      const labels = h.secrets.map((s) => s.label);
      expect(labels).toContain('temporary admin password');
      expect(labels).toContain('SMTP password (secret store)');
      // sessions (4 sign-ins), reset tokens (set-password, reset, admin reset, the failed delivery's), the dummy hash's password
      expect(h.random.secrets().length / 3).toBeGreaterThanOrEqual(9);
      expect(h.logs.length).toBeGreaterThan(50);
      expect(h.deps.logger.isLevelEnabled('trace')).toBe(true);
    });

    it('writes none to any log line, at level trace, or to stdout/stderr', () => {
      const hits: Hit[] = [...h.logs.entries(), ...printed.map((l, i) => [i, l] as const)].flatMap(([i, line]) => findSecrets(line, h.secrets, `log line ${i + 1}`));
      expect(hits, describeHits(hits)).toEqual([]);
    });

    it('stores none in any row of any table the database lists', async () => {
      const tables = await dumpAllTables(h.db);
      expect(tables.map((t) => t.table)).toEqual(expect.arrayContaining(['users', 'sessions', 'audit_events', 'settings', 'mail_outbox', 'reset_tokens']));
      const hits = tables.flatMap(({ table, rows }) => rows.flatMap((row, i) => findSecrets(rowText(row), h.secrets, `${table} row ${i + 1}`)));
      expect(hits, describeHits(hits)).toEqual([]);
    });

    // Only SQLite has database files of its own to read.
    if (dialect === 'SQLite') it('leaves none in the database files, free pages and WAL included', () => {
      const hits = h.dbFiles.filter((f) => fs.existsSync(f)).flatMap((f) => findSecretsInBytes(fs.readFileSync(f), h.secrets, path.basename(f)));
      expect(hits, describeHits(hits)).toEqual([]);
    });

    it('answers none over HTTP, except a session or device cookie in the Set-Cookie of the response that issues it', () => {
      // A sign-in issues a session (and a trusted-device) cookie; a password change rotates the session.
      const issuedCookie = /((?:__Host-)?gatehouse_(?:session|device))=[^;,\s]+/g;
      const hits = h.exchanges.flatMap((exchange) => {
        const headers = exchange.headers.map(([name, value]) => `${name}: ${name === 'set-cookie' ? value.replace(issuedCookie, '$1=<issued>') : value}`);
        return findSecrets(`${headers.join('\n')}\n\n${exchange.body}`, h.secrets, exchange.what);
      });
      expect(hits, describeHits(hits)).toEqual([]);
      // The exception is real: a sign-in's cookie carries its token.
      expect(h.issuedSessions.size).toBe(5);
    });

    it('mails no password or SMTP secret, and no token but the one link a reset or set-password mail is for', () => {
      const hits = h.smtp.messages.flatMap((mail, i) => {
        const own = /#token=([A-Za-z0-9_-]{43})/.exec(mail.text ?? '')?.[1];
        const content = `${mail.subject}\n${mail.text ?? ''}\n${typeof mail.html === 'string' ? mail.html : ''}`.replaceAll(own ?? '\u0000', '<its link>');
        return findSecrets(content, h.secrets, `mail ${i + 1} "${mail.subject}"`);
      });
      expect(hits, describeHits(hits)).toEqual([]);
    });
  });
}

describe.skipIf(ca === undefined)('a provider that echoes the credentials in its error', () => {
  let h: Harness;
  let echoing: TestSmtpServer;
  beforeAll(async () => {
    h = await startHarness(async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-secrets-'));
      const file = path.join(dir, 'gatehouse.sqlite');
      return { db: createDb({ kind: 'sqlite', file }), files: [file, `${file}-wal`], drop: async () => fs.rmSync(dir, { recursive: true, force: true }) };
    });
    // Some servers quote the failed AUTH back; the product must not keep what the provider says about our secret.
    echoing = await startTestSmtpServer({
      ca: ca!,
      smtp: {
        onAuth(auth, _session, callback) {
          callback(Object.assign(new Error(`5.7.8 Authentication failed for ${auth.username} with password ${auth.password}`), { responseCode: 535 }));
        },
      },
    });
  });
  afterAll(async () => {
    await echoing?.close();
    await h?.close();
  });

  it('keeps the SMTP password out of last_error, the deliveries list, the SMTP test answer and the logs', async () => {
    const boot = await ensureFirstAdmin(h.deps);
    if (!boot.created) throw new Error('no first admin');
    await h.db.updateTable('users').set({ must_change_password: 0, email: 'root@example.com', email_normalized: 'root@example.com' }).execute();
    const login = await fetch(`${h.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: 'admin', password: boot.password }) });
    const cookie = login.headers.getSetCookie()[0]!.split(';')[0]!;
    const api = async (method: string, urlPath: string, json?: unknown): Promise<{ status: number; body: string }> => {
      const res = await fetch(`${h.url}${urlPath}`, { method, headers: { cookie, ...(json === undefined ? {} : { 'content-type': 'application/json' }) }, body: json === undefined ? undefined : JSON.stringify(json) });
      return { status: res.status, body: await res.text() };
    };
    const settings = { host: '127.0.0.1', port: echoing.port, emailSecretName: 'smtp-sender', passwordSecretName: 'smtp-password', sslEnabled: true };
    expect((await api('PUT', '/api/settings/email', { ...settings, currentPassword: boot.password })).status).toBe(200);
    const test = await api('POST', '/api/settings/email/test', { to: 'ops@example.com' });
    expect(test.status).toBe(502);
    expect((await api('POST', '/api/auth/forgot-password', { email: 'root@example.com' })).status).toBe(202);
    const row = await waitFor('the delivery to fail', async () =>
      (await h.db.selectFrom('mail_outbox').selectAll().where('last_error', 'is not', null).executeTakeFirst()) ?? undefined,
    );
    expect(row.last_error).toMatch(/Authentication failed/);
    const deliveries = await api('GET', '/api/mail/deliveries');

    const secrets: Secret[] = [{ label: 'SMTP password (secret store)', value: SMTP_PASS }];
    const hits = [
      ...findSecrets(test.body, secrets, 'POST /api/settings/email/test answer'),
      ...findSecrets(deliveries.body, secrets, 'GET /api/mail/deliveries answer'),
      ...(await dumpAllTables(h.db)).flatMap(({ table, rows }) => rows.flatMap((r, i) => findSecrets(rowText(r), secrets, `${table} row ${i + 1}`))),
      ...h.logs.flatMap((line, i) => findSecrets(line, secrets, `log line ${i + 1}`)),
    ];
    expect(hits, describeHits(hits)).toEqual([]);
  });
});
