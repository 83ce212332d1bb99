// The built Gatehouse server as a child process, exactly as `npm start` runs it, with its data
// in a temporary folder; plus the one-off preparation of that data (users, sender secret,
// email settings).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { run, stopChild, tempDir, track } from './children.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = path.join(ROOT, 'bin', 'gatehouse.js');
/** Node's own flags in package.json's start script (`exec node <flags> bin/gatehouse.js serve`): the server runs as npm start runs it. */
export const START_NODE_FLAGS = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.start.match(/node\s+(.*?)\s*bin\/gatehouse\.js/)?.[1] ?? '')
  .split(/\s+/)
  .filter(Boolean);
// Email settings may only name secrets matching MAIL_SECRET_NAME_PATTERN (default ^(smtp|mail)-).
export const SENDER_SECRET = 'mail-bench-sender';
export const ADMIN_USERNAME = 'bench-admin';

/** Newest modification time of any file under dir (0 when dir is missing). */
function newestMtimeMs(dir) {
  if (!fs.existsSync(dir)) return 0;
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const m = fs.statSync(path.join(entry.parentPath ?? entry.path, entry.name)).mtimeMs;
    if (m > newest) newest = m;
  }
  return newest;
}

/**
 * Builds when dist/ is missing or older than src/. A failed build is not fatal when the server
 * part was built (the web build is not benchmarked) or a previous dist/ exists; the result says so.
 */
export async function ensureBuilt(log) {
  const mainJs = path.join(ROOT, 'dist', 'main.js');
  const builtAt = fs.existsSync(mainJs) ? fs.statSync(mainJs).mtimeMs : 0;
  const srcAt = newestMtimeMs(path.join(ROOT, 'src'));
  if (builtAt > 0 && builtAt >= srcAt) return { built: false, stale: false, note: 'dist/ is up to date' };
  log(builtAt === 0 ? 'dist/ is missing: npm run build' : 'src/ is newer than dist/: npm run build');
  const startedAt = Date.now();
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = await run(npm, ['run', 'build'], { env: process.env, cwd: ROOT });
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
  if (r.code === 0) return { built: true, stale: false, note: `built in ${seconds} s` };
  const serverBuilt = fs.existsSync(mainJs) && fs.statSync(mainJs).mtimeMs >= startedAt;
  const tail = (r.stdout + r.stderr).trim().split('\n').slice(-8).join('\n');
  if (serverBuilt) return { built: true, stale: false, note: `server built; the web build failed (not benchmarked):\n${tail}` };
  if (builtAt > 0) return { built: false, stale: true, note: `npm run build failed; benchmarking the previous, STALE dist/:\n${tail}` };
  throw new Error(`npm run build failed and there is no dist/:\n${tail}`);
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {net.AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/** Nothing inherited that could change the app's behaviour; every rate limit off (DESIGN §2). */
function serverEnv(dataDir, extra = {}) {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATA_DIR: dataDir,
    LOG_LEVEL: 'warn',
    LIMIT_FORGOT_PER_ADDRESS_PER_HOUR: '0',
    LIMIT_FORGOT_PER_IP_PER_MINUTE: '0',
    LIMIT_RESET_PER_IP_PER_MINUTE: '0',
    LIMIT_LOGIN_PER_IP_PER_MINUTE: '0',
    // Mail goes to the bench's SMTP sink through the saved settings, never to the dev mailbox.
    MAIL_DEV_INBOX: 'false',
    ...extra,
  };
}

/** `gatehouse …` on the data folder; cwd is the data folder so no project .env is read. */
export async function cli(dataDir, args, input = '', env = {}) {
  // One hash and a few rows: seconds at most, even on a busy machine.
  const r = await run(process.execPath, [BIN, ...args], { env: serverEnv(dataDir, env), cwd: dataDir, input, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`gatehouse ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * `gatehouse serve` on a free port; resolves once /healthz answers and the start line is printed.
 * env: more variables (DATABASE_URL, MAIL_POOL_SIZE).
 */
export async function startGatehouse(dataDir, env = {}) {
  const port = await freePort();
  const child = track(
    spawn(process.execPath, [...START_NODE_FLAGS, BIN, 'serve'], { env: serverEnv(dataDir, { ...env, PORT: String(port) }), cwd: dataDir, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  let out = '';
  let err = '';
  /** @type {string | undefined} */
  let exited;
  child.once('exit', (code, signal) => (exited = signal ?? `code ${code}`));
  // pino writes its JSON lines to stdout; crashes land on stderr. Both are kept (the tail).
  child.stdout.on('data', (d) => {
    out += String(d);
    if (out.length > 50_000) out = out.slice(-50_000);
  });
  child.stderr.on('data', (d) => {
    err += String(d);
    if (err.length > 50_000) err = err.slice(-50_000);
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`gatehouse serve exited ${child.exitCode}: ${err.trim().slice(-2000)}`);
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok && out.includes('Gatehouse')) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`gatehouse serve did not start: ${err.trim().slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    origin: url,
    child,
    dataDir,
    databaseUrl: env.DATABASE_URL,
    /** what the server logged at warn and above (JSON lines), and stdout after the start line */
    logs: () => [...out.split('\n').filter((l) => !l.includes('Gatehouse is running')), ...err.split('\n')].filter((l) => l.trim() !== '').join('\n'),
    /** how the server ended, when it ended on its own (a crash) */
    exited: () => exited,
    stop: () => stopChild(child, 10_000),
  };
}

/**
 * fetch for the set-up requests, retried on 503 `overloaded`: the server sheds load whenever
 * its event loop misses a 100 ms sample, which other work on this machine can cause.
 */
async function setupFetch(url, init) {
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(url, init);
    if (res.status !== 503 || attempt >= 20) return res;
    await res.arrayBuffer();
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function login(server, loginName, password) {
  const res = await setupFetch(`${server.url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: server.origin },
    body: JSON.stringify({ login: loginName, password }),
  });
  if (res.status !== 200) throw new Error(`admin sign-in answered ${res.status}: ${await res.text()}`);
  const cookie = res.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
  return cookie;
}

export const userEmail = (i) => `bench-user-${String(i).padStart(4, '0')}@example.com`;
export const unknownEmail = (i) => `nobody-${String(i).padStart(4, '0')}@example.com`;

/**
 * A data folder to copy for each scenario: an admin made with the CLI, `users` users made over
 * the HTTP API (each with `password`), the sender address in the secret store, and email
 * settings that point at the SMTP sink. With env.DATABASE_URL, the database part goes there
 * (the folder keeps the secret store).
 */
export async function makeTemplate({ users, password, sinkPort, log, env = {} }) {
  const dir = tempDir('template');
  await cli(dir, ['users', 'create', '--username', ADMIN_USERNAME, '--name', 'Bench admin', '--role', 'system-admin'], `${password}\n`, env);
  await cli(dir, ['secrets', 'set', SENDER_SECRET], 'bench-sender@example.com\n', env);
  const server = await startGatehouse(dir, env);
  try {
    const cookie = await login(server, ADMIN_USERNAME, password);
    const headers = { 'content-type': 'application/json', origin: server.origin, cookie };
    let nextUser = 0;
    // Each creation hashes once; two at a time keeps both cores busy.
    await Promise.all(
      [0, 1].map(async () => {
        while (nextUser < users) {
          const i = nextUser++;
          const res = await setupFetch(`${server.url}/api/users`, {
            method: 'POST',
            headers,
            body: JSON.stringify({ email: userEmail(i), name: `Bench user ${i}`, role: 'user', password }),
          });
          if (res.status !== 201) throw new Error(`POST /api/users answered ${res.status}: ${await res.text()}`);
        }
      }),
    );
    const settings = { host: '127.0.0.1', port: sinkPort, emailSecretName: SENDER_SECRET, passwordSecretName: null, sslEnabled: false };
    const put = await setupFetch(`${server.url}/api/settings/email`, { method: 'PUT', headers, body: JSON.stringify({ ...settings, currentPassword: password }) });
    let settingsVia;
    if (put.ok) {
      settingsVia = 'PUT /api/settings/email';
    } else if (env.DATABASE_URL !== undefined) {
      throw new Error(`PUT /api/settings/email answered ${put.status}: ${await put.text()}`);
    } else {
      // The route is not there yet: the same row the route would write.
      writeEmailSettingsRow(path.join(dir, 'gatehouse.sqlite'), settings);
      settingsVia = `settings row written directly (PUT /api/settings/email answered ${put.status})`;
    }
    log(`template: admin + ${users} users, sender secret, email settings via ${settingsVia}`);
    return { dir, settingsVia };
  } finally {
    await server.stop();
  }
}

function writeEmailSettingsRow(file, settings) {
  const db = new Database(file);
  try {
    db.pragma('busy_timeout = 5000');
    db.prepare(
      `insert into settings (key, value, updated_at, updated_by) values ('email', ?, ?, null)
       on conflict (key) do update set value = excluded.value, updated_at = excluded.updated_at`,
    ).run(JSON.stringify(settings), Date.now());
  } finally {
    db.close();
  }
}

/** A fresh copy of the template, so each scenario starts with an empty outbox and new counters. */
export function cloneDataDir(template, name) {
  const dir = tempDir(name);
  fs.cpSync(template, dir, { recursive: true });
  return dir;
}

/** Outbox rows by status of a running server's database: its SQLite file, or PostgreSQL. */
export async function serverOutboxCounts(server) {
  if (server.databaseUrl === undefined) return outboxCounts(server.dataDir);
  const { pgOutboxCounts } = await import('./postgres.js');
  return pgOutboxCounts(server.databaseUrl);
}

/** Outbox rows by status, read straight from the SQLite file (WAL lets a reader in beside the server). */
export function outboxCounts(dataDir) {
  const db = new Database(path.join(dataDir, 'gatehouse.sqlite'), { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const rows = /** @type {{ status: string, n: number }[]} */ (db.prepare('select status, count(*) as n from mail_outbox group by status').all());
    const counts = Object.fromEntries(rows.map((r) => [r.status, r.n]));
    const audit = /** @type {{ type: string, n: number }[]} */ (
      db.prepare(`select type, count(*) as n from audit_events where type in ('reset_requested', 'reset_email_sent', 'reset_email_failed') group by type`).all()
    );
    return { outbox: counts, audit: Object.fromEntries(audit.map((r) => [r.type, r.n])) };
  } finally {
    db.close();
  }
}

export function pendingOf(counts) {
  const o = counts.outbox;
  return (o.queued ?? 0) + (o.sending ?? 0) + (o.retrying ?? 0);
}
