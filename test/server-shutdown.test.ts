import fs from 'node:fs';
import net from 'node:net';
import pg from 'pg';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createArgon2Hasher } from '../src/accounts/passwords.js';
import { createUser } from '../src/accounts/service.js';
import { systemClock } from '../src/clock.js';
import { loadConfig } from '../src/config.js';
import { createDb, migrateToLatest } from '../src/db/index.js';
import { normalizeEmailSettings, saveEmailSettings } from '../src/mail/settings.js';
import { cryptoRandom } from '../src/random.js';
import { assertBuilt, startServer, tempDataDir, type RunningServer } from './helpers/cli.js';
import { createPgTestDb, PG_ADDRESS, postgresSuite, waitFor, type PgTestDb } from './helpers/pg.js';
import { startTestSmtpServer, type TestSmtpServer } from './helpers/smtp.js';
import { findTrustedTestCa } from './helpers/tls.js';

const describeOnPostgres = await postgresSuite();
const ca = await findTrustedTestCa();
if (ca === undefined) {
  if (process.env.CI === 'true') throw new Error('the test CA is not trusted: test/global-setup.ts must run (vitest.config.ts globalSetup)');
  console.warn('\n!!!!!!!! SKIPPED the shutdown-during-a-send test: the test CA is missing (install openssl) !!!!!!!!\n');
}

// The shutdown bound of src/server.ts (SHUTDOWN_BOUND_MS).
const BOUND_MS = 10_000;

interface RawResponse {
  status: number;
  headers: string;
  body: string;
}

/**
 * A sign-in sent over a raw socket in two halves: the headers with `Expect: 100-continue`, then,
 * when the test says so, the body. The server's "100 Continue" proves the request has reached its
 * handler, so a signal sent after it lands while the request is in flight, with no race.
 */
function slowSignIn(port: number, credentials: { login: string; password: string }) {
  const body = JSON.stringify(credentials);
  const socket = net.connect(port, '127.0.0.1');
  socket.setEncoding('utf8');
  let received = '';
  let settled = false;
  let onContinue!: () => void;
  const continued = new Promise<void>((resolve) => (onContinue = resolve));
  const response = new Promise<RawResponse>((resolve, reject) => {
    const tryParse = (): void => {
      const final = received.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
      const headerEnd = final.indexOf('\r\n\r\n');
      if (headerEnd < 0 || final.startsWith('HTTP/1.1 100')) return;
      const headers = final.slice(0, headerEnd);
      const length = Number(/content-length: (\d+)/i.exec(headers)?.[1] ?? NaN);
      const rest = final.slice(headerEnd + 4);
      if (Buffer.byteLength(rest) < length) return;
      settled = true;
      resolve({ status: Number(headers.split(' ')[1]), headers, body: rest });
    };
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) onContinue();
      tryParse();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      if (!settled) reject(new Error(`connection closed before a full answer: ${JSON.stringify(received)}`));
    });
  });
  socket.write(
    [
      'POST /api/auth/login HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Content-Type: application/json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      'Expect: 100-continue',
      '',
      '',
    ].join('\r\n'),
  );
  return {
    continued,
    response,
    isSettled: () => settled,
    sendBody: () => socket.write(body),
    destroy: () => socket.destroy(),
  };
}

/** Whether a new TCP connection to the port is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

async function waitUntilRefused(port: number, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await refused(port))) {
    if (Date.now() > deadline) throw new Error(`port ${port} still accepts connections after ${withinMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function exited(server: RunningServer): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => {
    if (server.child.exitCode !== null) return resolve({ code: server.child.exitCode, signal: null });
    server.child.once('exit', (code, signal) => resolve({ code, signal }));
  });
}

beforeAll(() => assertBuilt());

describe('the built server shuts down gracefully, within a bound', () => {
  let dataDir: string;
  let server: RunningServer | undefined;
  afterEach(async () => {
    if (server?.child.exitCode === null) server.child.kill('SIGKILL');
    server = undefined;
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  async function start(): Promise<{ port: number; password: string }> {
    dataDir = tempDataDir();
    server = await startServer({ DATA_DIR: dataDir });
    const password = /Password:\s+(\S+)/.exec(server.stdout())![1]!;
    return { port: Number(new URL(server.url).port), password };
  }

  it.each(['SIGTERM', 'SIGINT'] as const)(
    'on %s: a sign-in in flight gets its normal answer, new connections are refused, and the process exits 0 within the bound',
    async (signal) => {
      const { port, password } = await start();
      const signIn = slowSignIn(port, { login: 'admin', password });
      await signIn.continued;

      const signalledAt = Date.now();
      const exit = exited(server!);
      server!.child.kill(signal);
      await waitUntilRefused(port, 2_000);
      const refusedAfterMs = Date.now() - signalledAt;
      // Still waiting for its body: the server is holding the request open, not cutting it.
      expect(signIn.isSettled()).toBe(false);

      signIn.sendBody();
      const answer = await signIn.response;
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body).user).toMatchObject({ username: 'admin', mustChangePassword: true });
      expect(answer.headers).toMatch(/^set-cookie: /im);

      expect(await exit).toEqual({ code: 0, signal: null });
      const exitedAfterMs = Date.now() - signalledAt;
      console.log(`${signal}: new connections refused after ${refusedAfterMs} ms, exit 0 after ${exitedAfterMs} ms`);
      expect(exitedAfterMs).toBeLessThan(BOUND_MS);
      expect(server!.stderr()).toBe('');
    },
    30_000,
  );

  it('exits 1 with one line on stderr when a request is still in flight at the bound', async () => {
    const { port, password } = await start();
    // A client that never sends its body holds its request open for good.
    const stuck = slowSignIn(port, { login: 'admin', password });
    stuck.response.catch(() => undefined);
    await stuck.continued;

    const signalledAt = Date.now();
    const exit = exited(server!);
    server!.child.kill('SIGTERM');
    await waitUntilRefused(port, 2_000);

    expect(await exit).toEqual({ code: 1, signal: null });
    const exitedAfterMs = Date.now() - signalledAt;
    console.log(`stuck request: exit 1 after ${exitedAfterMs} ms`);
    expect(exitedAfterMs).toBeGreaterThanOrEqual(BOUND_MS - 100);
    expect(exitedAfterMs).toBeLessThan(BOUND_MS + 3_000);
    expect(server!.stderr()).toBe('gatehouse: shutdown took longer than 10 s; exiting with work cut short\n');
    stuck.destroy();
  }, 30_000);
});

/** How long the SMTP server holds its reply to DATA: the send is under way for this long. */
const HOLD_MS = 1_000;

(ca === undefined ? describe.skip : describeOnPostgres)('the send under way when SIGTERM arrives', () => {
  let pgDb: PgTestDb | undefined;
  let dataDir: string | undefined;
  let server: RunningServer | undefined;
  let smtp: TestSmtpServer | undefined;
  let admin: pg.Client | undefined;
  afterEach(async () => {
    if (server?.child.exitCode === null) server.child.kill('SIGKILL');
    server = undefined;
    await smtp?.close();
    await admin?.end();
    await pgDb?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('finishes: the email is delivered, its row ends sent, the database pools are closed, and the process exits 0 within the bound', async () => {
    const SENDER = 'ops@example.com';
    const SMTP_PASSWORD = 'relay pass for shutdown';
    pgDb = await createPgTestDb();
    dataDir = tempDataDir();
    admin = new pg.Client({ connectionString: `postgres://postgres@${PG_ADDRESS}/test` });
    admin.on('error', () => undefined);
    await admin.connect();
    const dbName = new URL(pgDb.url).pathname.slice(1);
    const others = async (): Promise<number> =>
      Number((await admin!.query('select count(*) as n from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [dbName])).rows[0].n);
    // pg_stat_database (PostgreSQL 14+): sessions_abandoned counts those that ended without the client's goodbye (the process went away with the connection open).
    const sessionStats = async (): Promise<{ sessions: number; abandoned: number }> => {
      await admin!.query('select pg_stat_clear_snapshot()');
      const row = (await admin!.query('select sessions, sessions_abandoned from pg_stat_database where datname = $1', [dbName])).rows[0];
      return { sessions: Number(row.sessions), abandoned: Number(row.sessions_abandoned) };
    };

    // The SMTP server takes the message, then holds its reply: SIGTERM is sent in that second.
    let dataEnded!: () => void;
    const whileSending = new Promise<void>((resolve) => (dataEnded = resolve));
    const replies: { at: number; message: string }[] = [];
    smtp = await startTestSmtpServer({
      ca: ca!,
      credentials: { user: SENDER, pass: SMTP_PASSWORD },
      smtp: {
        onData(stream, _session, callback) {
          const chunks: Buffer[] = [];
          stream.on('data', (chunk: Buffer) => chunks.push(chunk));
          stream.on('end', () => {
            dataEnded();
            setTimeout(() => {
              replies.push({ at: Date.now(), message: Buffer.concat(chunks).toString('utf8') });
              callback();
            }, HOLD_MS);
          });
        },
      },
    });

    // The secrets in the environment store, the user and the settings written here: no CLI process to wait for.
    const env = {
      DATA_DIR: dataDir,
      DATABASE_URL: pgDb.url,
      MAIL_DEV_INBOX: 'false',
      LOG_LEVEL: 'info',
      SECRETS_PROVIDER: 'env',
      GATEHOUSE_SECRET_SMTP_SENDER: SENDER,
      GATEHOUSE_SECRET_SMTP_PASSWORD: SMTP_PASSWORD,
      NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS ?? '',
    };
    const db = createDb({ kind: 'postgres', url: pgDb.url });
    await migrateToLatest(db);
    await createUser({ db, clock: systemClock, random: cryptoRandom, hasher: createArgon2Hasher(), config: loadConfig({}) }, { email: 'worker@example.com', username: null, name: 'Worker', role: 'user', password: null });
    // As the Settings page saves them.
    await saveEmailSettings(db, systemClock, normalizeEmailSettings({ host: '127.0.0.1', port: smtp.port, emailSecretName: 'smtp-sender', passwordSecretName: 'smtp-password', sslEnabled: true }), null);
    await db.destroy();
    await waitFor('the set-up connections to end', async () => ((await others()) === 0 ? true : undefined), 5_000);
    const before = await sessionStats();
    // Every client so far closed its connections properly.
    expect(before.abandoned).toBe(0);

    server = await startServer(env);
    // The server's pool and the outbox thread's.
    const serverConnections = await waitFor('the server to hold connections', async () => {
      const n = await others();
      return n >= 2 ? n : undefined;
    }, 5_000);
    const exit = exited(server);
    const res = await fetch(`${server.url}/api/auth/forgot-password`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'worker@example.com' }) });
    expect(res.status).toBe(202);
    await whileSending;
    const signalledAt = Date.now();
    server.child.kill('SIGTERM');

    expect(await exit).toEqual({ code: 0, signal: null });
    const exitedAt = Date.now();
    const exitedAfterMs = exitedAt - signalledAt;
    expect(exitedAfterMs).toBeLessThan(BOUND_MS);
    // The send was let finish: the reply came while the process was still there, and it then exited.
    expect(replies).toHaveLength(1);
    expect(replies[0]!.at).toBeLessThanOrEqual(exitedAt);
    expect(exitedAfterMs).toBeGreaterThanOrEqual(HOLD_MS - 100);
    expect(replies[0]!.message).toMatch(/^To: worker@example\.com$/m);
    expect(replies[0]!.message).toMatch(/^Subject: Reset your password$/m);
    expect(server.stdout()).toMatch(/"signal":"SIGTERM","msg":"shutting down"/);
    expect(server.stderr()).toBe('');

    const check = new pg.Client({ connectionString: pgDb.url });
    await check.connect();
    const outbox = (await check.query('select status, attempts, last_error from mail_outbox')).rows;
    await check.end();
    expect(outbox).toEqual([{ status: 'sent', attempts: 1, last_error: null }]);

    // Every connection of the server ended, and each was closed by its pool, not dropped at exit.
    await waitFor('the server connections to end', async () => ((await others()) === 0 ? true : undefined), 5_000);
    const after = await waitFor('the ended sessions to be counted', async () => {
      const stats = await sessionStats();
      return stats.sessions >= before.sessions + serverConnections + 1 ? stats : undefined;
    }, 5_000);
    expect(after.abandoned).toBe(0);
    console.log(
      `SIGTERM during a send (SMTP reply held ${HOLD_MS} ms): delivered, row sent, exit 0 after ${exitedAfterMs} ms; ` +
        `${after.sessions - before.sessions - 1} server sessions to PostgreSQL, all closed by the pools (0 abandoned)`,
    );
  }, 30_000);
});
