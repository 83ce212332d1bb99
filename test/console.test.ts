import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, cleanEnv, ROOT, runCli, startServer, tempDataDir, type RunningServer } from './helpers/cli.js';

// Issue 10 item 10 on the built server, started as `npm start` starts it: what the console shows.
// LOG_FORMAT=json: every stdout line is a JSON object (the one-time first-start banner aside: its
// password is kept out of the structured log); LOG_FORMAT=pretty: readable lines; a request line
// only at LOG_LEVEL=debug; the start-up names the dev mailbox's address while it runs.

const PASSWORD = 'correct horse battery staple';
const TOKEN = 'T0k3n'.repeat(8);

const isJson = (line: string): boolean => {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null;
  } catch {
    return false;
  }
};
const linesOf = (text: string): string[] => text.split('\n').filter((line) => line.trim() !== '');

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++) await new Promise((r) => setTimeout(r, 100));
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

/** A data directory with a system admin already in it: no first-start banner. */
async function dataDirWithAdmin(): Promise<string> {
  const dataDir = tempDataDir();
  const created = await runCli(['users', 'create', '--username', 'ops', '--name', 'Ops', '--role', 'system-admin'], { env: { DATA_DIR: dataDir }, input: `${PASSWORD}\n` });
  expect(created.code).toBe(0);
  return dataDir;
}

/** Requests that carry a password, a session cookie and a reset token. */
async function exercise(server: RunningServer): Promise<string> {
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  const wrong = await fetch(`${server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: 'ops', password: `${PASSWORD} wrong` }) });
  expect(wrong.status).toBe(401);
  const login = await fetch(`${server.url}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ login: 'ops', password: PASSWORD }) });
  expect(login.status).toBe(200);
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
  expect((await fetch(`${server.url}/api/auth/me`, { headers: { cookie } })).status).toBe(200);
  expect((await fetch(`${server.url}/reset-password?token=${TOKEN}`)).status).toBe(200);
  return cookie.split('=')[1]!;
}

describe('LOG_FORMAT=json at LOG_LEVEL=debug', () => {
  let dataDir: string;
  let server: RunningServer;
  let sessionToken: string;
  beforeAll(async () => {
    assertBuilt();
    dataDir = await dataDirWithAdmin();
    server = await startServer({ DATA_DIR: dataDir, LOG_FORMAT: 'json', LOG_LEVEL: 'debug' });
    sessionToken = await exercise(server);
    await until(() => server.stdout().includes(`/reset-password?token=[redacted]`), 'the request lines');
    await server.stop();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints nothing but JSON objects on stdout, from start-up to shutdown', () => {
    const lines = linesOf(server.stdout());
    expect(lines.length).toBeGreaterThanOrEqual(8);
    expect(lines.filter((line) => !isJson(line))).toEqual([]);
    const messages = lines.map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages).toContain('shutting down');
    expect(messages.some((msg) => msg.startsWith('Gatehouse is running at http://localhost:'))).toBe(true);
  });

  it('names the dev mailbox in a start-up entry, with its address as a field', () => {
    const port = new URL(server.url).port;
    const entries = linesOf(server.stdout()).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(entries).toContainEqual(
      expect.objectContaining({ level: 30, msg: `Emails are caught by the dev mailbox: http://localhost:${port}/dev/mailbox`, devMailbox: `http://localhost:${port}/dev/mailbox` }),
    );
  });

  it('logs one line per request, at debug, with the method, the path, the status and the time', () => {
    const requests = linesOf(server.stdout())
      .map((line) => JSON.parse(line) as { level: number; msg: string; req?: { method: string; url: string }; res?: { statusCode: number }; responseTime?: number })
      .filter((entry) => entry.req !== undefined);
    expect(requests.map((entry) => `${entry.req!.method} ${entry.req!.url} ${entry.res!.statusCode}`)).toEqual(
      expect.arrayContaining(['GET /healthz 200', 'POST /api/auth/login 401', 'POST /api/auth/login 200', 'GET /api/auth/me 200', 'GET /reset-password?token=[redacted] 200']),
    );
    for (const entry of requests) expect(entry).toMatchObject({ level: 20, msg: 'request completed', responseTime: expect.any(Number) });
  });

  it('holds no password, session token or reset token', () => {
    const out = server.stdout() + server.stderr();
    expect(out).not.toContain(PASSWORD);
    expect(out).not.toContain(sessionToken);
    expect(out).not.toContain(TOKEN);
  });
});

describe('LOG_FORMAT=pretty at LOG_LEVEL=debug', () => {
  let dataDir: string;
  let server: RunningServer;
  let sessionToken: string;
  beforeAll(async () => {
    assertBuilt();
    dataDir = await dataDirWithAdmin();
    server = await startServer({ DATA_DIR: dataDir, LOG_FORMAT: 'pretty', LOG_LEVEL: 'debug' });
    sessionToken = await exercise(server);
    await until(() => server.stdout().includes(`/reset-password?token=[redacted]`), 'the request lines');
    await server.stop();
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('prints readable lines: time, level and message, no JSON line, no colour codes on a pipe', () => {
    const lines = linesOf(server.stdout());
    expect(lines.filter(isJson)).toEqual([]);
    expect(server.stdout()).not.toContain('\u001b[');
    expect(lines).toContainEqual(expect.stringMatching(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: shutting down \{"signal":"SIGTERM"\}$/));
    expect(lines).toContainEqual(expect.stringMatching(/^\[\d\d:\d\d:\d\d\.\d{3}\] DEBUG: GET \/healthz → 200 \(\d+(\.\d)? ms\) \{"reqId":"[^"]+"\}$/));
    expect(lines).toContainEqual(expect.stringMatching(/^\[[\d:.]+\] DEBUG: POST \/api\/auth\/login → 401 \(/));
    expect(lines).toContainEqual(expect.stringMatching(/^\[[\d:.]+\] DEBUG: GET \/reset-password\?token=\[redacted\] → 200 \(/));
  });

  it('starts with where the dashboard and the dev mailbox are, as plain lines', () => {
    const port = new URL(server.url).port;
    const lines = linesOf(server.stdout());
    expect(lines).toContain(`Gatehouse is running at http://localhost:${port}`);
    expect(lines).toContain(`Emails are caught by the dev mailbox: http://localhost:${port}/dev/mailbox`);
  });

  it('holds no password, session token or reset token', () => {
    const out = server.stdout() + server.stderr();
    expect(out).not.toContain(PASSWORD);
    expect(out).not.toContain(sessionToken);
    expect(out).not.toContain(TOKEN);
  });
});

describe('at LOG_LEVEL=info (the default), first start', () => {
  let dataDir: string;
  let server: RunningServer;
  beforeAll(async () => {
    assertBuilt();
    dataDir = tempDataDir();
    server = await startServer({ DATA_DIR: dataDir, LOG_FORMAT: 'json', LOG_LEVEL: 'info', PUBLIC_URL: 'https://dash.example.com/gate' });
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('logs no request line', async () => {
    for (const p of ['/healthz', '/login', `/reset-password?token=${TOKEN}`, '/api/nope']) await fetch(`${server.url}${p}`);
    // A line written for the last request would be out before its answer: give it a moment all the same.
    await new Promise((r) => setTimeout(r, 300));
    const entries = linesOf(server.stdout()).filter(isJson).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(entries.length).toBeGreaterThanOrEqual(2);
    expect(entries.filter((entry) => entry.req !== undefined || entry.res !== undefined)).toEqual([]);
    expect(server.stdout()).not.toContain('/healthz');
  });

  it('keeps the one-time admin banner, names the dev mailbox on PUBLIC_URL, and every other line is JSON', () => {
    const out = server.stdout();
    const banner = /={64}\n[\s\S]*?\n={64}\n/.exec(out)?.[0];
    expect(banner).toContain('Gatehouse first start: an administrator account was created.');
    expect(banner).toContain('Open:      https://dash.example.com/gate\n');
    expect(banner).toMatch(/Password:\s+\S{12,}/);
    const rest = linesOf(out.replace(banner!, ''));
    expect(rest.filter((line) => !isJson(line))).toEqual([]);
    const messages = rest.map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages).toContain('Gatehouse is running at https://dash.example.com/gate');
    expect(messages).toContain('Emails are caught by the dev mailbox: https://dash.example.com/gate/dev/mailbox');
  });
});

describe('without the dev mailbox', () => {
  it('says where the dashboard runs and nothing of a dev mailbox', async () => {
    assertBuilt();
    const dataDir = await dataDirWithAdmin();
    const server = await startServer({ DATA_DIR: dataDir, LOG_FORMAT: 'pretty', MAIL_DEV_INBOX: 'false' });
    try {
      const port = new URL(server.url).port;
      expect(linesOf(server.stdout())).toContain(`Gatehouse is running at http://localhost:${port}`);
      expect(server.stdout()).not.toContain('dev mailbox');
    } finally {
      await server.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('the outbox thread', () => {
  // The thread loads its Config from the environment the server hands it (src/server.ts puts the
  // format it chose there). A database without tables makes the thread's worker log a warning.
  async function threadLines(format: 'pretty' | 'json'): Promise<string[]> {
    const dir = tempDataDir();
    const file = path.join(dir, 'empty.sqlite');
    fs.writeFileSync(file, '');
    const script = `
      import { startOutboxThread } from ${JSON.stringify(path.join(ROOT, 'dist/mail/index.js'))};
      import { createLogger } from ${JSON.stringify(path.join(ROOT, 'dist/logger.js'))};
      const env = { DATABASE_URL: ${JSON.stringify(`sqlite:${file}`)}, SECRETS_PROVIDER: 'env', MAIL_DEV_INBOX: 'false', LOG_LEVEL: 'warn', LOG_FORMAT: ${JSON.stringify(format)} };
      const thread = startOutboxThread({ env, devInboxPort: undefined }, { logger: createLogger('warn') });
      thread.start();
      setTimeout(() => thread.stop(), 1500);
    `;
    const entry = path.join(dir, 'thread.mjs');
    fs.writeFileSync(entry, script);
    const child = spawn(process.execPath, [entry], { env: cleanEnv({}), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += String(d)));
    await new Promise((resolve) => child.on('close', resolve));
    fs.rmSync(dir, { recursive: true, force: true });
    return linesOf(out);
  }

  it('writes its lines in the format it is given', async () => {
    const pretty = await threadLines('pretty');
    expect(pretty).toContainEqual(expect.stringMatching(/^\[[\d:.]+\] WARN: outbox worker: claiming deliveries failed \{"thread":"outbox"\}$/));
    expect(pretty.filter(isJson)).toEqual([]);
    const json = await threadLines('json');
    expect(json.length).toBeGreaterThanOrEqual(1);
    expect(json.filter((line) => !isJson(line))).toEqual([]);
    expect(JSON.parse(json[0]!)).toMatchObject({ level: 40, thread: 'outbox', msg: 'outbox worker: claiming deliveries failed' });
  });
});

describe('gatehouse serve --help', () => {
  it('says where the logs go and how to choose their format', async () => {
    assertBuilt();
    const help = await runCli(['serve', '--help'], { env: {} });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('readable lines when stdout is a terminal, one JSON object per line\notherwise (LOG_FORMAT=pretty|json to choose)');
    expect(help.stdout).toContain('debug adds a line per\nrequest');
  });
});
