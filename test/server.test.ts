import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, runCli, startServer, tempDataDir, type RunningServer } from './helpers/cli.js';
import { startTestSmtpServer, type TestSmtpServer } from './helpers/smtp.js';
import { findTrustedTestCa } from './helpers/tls.js';

// The built server, started exactly as `npm start` starts it, driven over real HTTP.
describe('the built server (npm start)', () => {
  let dataDir: string;
  let server: RunningServer;
  beforeAll(async () => {
    assertBuilt();
    dataDir = tempDataDir();
    server = await startServer({ DATA_DIR: dataDir });
  });
  afterAll(async () => {
    await server?.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const post = (path: string, body: unknown, cookie?: string) =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(cookie ? { cookie } : {}) },
      body: JSON.stringify(body),
    });

  it('prints the temporary admin password once, and admin must change it before anything else', async () => {
    const match = /Password:\s+(\S+)/.exec(server.stdout());
    expect(match).not.toBeNull();
    const temporary = match![1]!;
    expect(server.stdout().match(new RegExp(temporary.replace(/[-]/g, '\\-'), 'g'))).toHaveLength(1);

    const login = await post('/api/auth/login', { login: 'admin', password: temporary });
    expect(login.status).toBe(200);
    expect((await login.json()).user.mustChangePassword).toBe(true);
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;

    expect((await fetch(`${server.url}/api/users`, { headers: { cookie } })).status).toBe(403);
    const change = await post('/api/auth/change-password', { currentPassword: temporary, newPassword: 'a long operator passphrase 2026' }, cookie);
    expect(change.status).toBe(204);
    // The session id rotates with the password.
    const rotated = change.headers.get('set-cookie')!.split(';')[0]!;
    expect(rotated).not.toBe(cookie);

    const created = await post('/api/users', { email: 'dev@example.com', name: 'Dev', role: 'user', password: 'developer passphrase here' }, rotated);
    expect(created.status).toBe(201);
    const devLogin = await post('/api/auth/login', { login: 'dev@example.com', password: 'developer passphrase here' });
    expect(devLogin.status).toBe(200);

    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${server.child.pid}/status`, 'utf8'))?.[1]);
    console.log(`idle server RSS after sign-ins: ${(rssKb / 1024).toFixed(1)} MiB`);
    expect(rssKb).toBeGreaterThan(0);
  });

  it('serves the dashboard page and its assets from the same origin', async () => {
    const page = await fetch(`${server.url}/login`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('cache-control')).toBe('no-store');
    const html = await page.text();
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset).toBeDefined();
    const js = await fetch(`${server.url}${asset}`);
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toContain('immutable');
  });

  it('answers readiness and keeps unknown API paths a JSON 404', async () => {
    expect((await fetch(`${server.url}/readyz`)).status).toBe(200);
    const missing = await fetch(`${server.url}/api/nope`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'not_found', message: 'Not found.' });
  });
});

const ca = await findTrustedTestCa();

// DESIGN §1 on the built server: the dev mailbox out of the box, then real SMTP configured the
// documented way (secrets in the local store via the CLI, the Settings API as an admin).
describe('the built server delivers recovery mail', () => {
  let dataDir: string;
  let server: RunningServer;
  let smtp: TestSmtpServer;
  beforeAll(async () => {
    assertBuilt();
    if (ca === undefined) throw new Error('the test CA is not trusted: test/global-setup.ts must run');
    dataDir = tempDataDir();
    smtp = await startTestSmtpServer({ ca, credentials: { user: 'ops@example.com', pass: 'relay pass 42' } });
    const env = { DATA_DIR: dataDir, NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS ?? '' };
    expect((await runCli(['users', 'create', '--username', 'boss', '--name', 'Boss', '--role', 'system-admin'], { env, input: 'chief passphrase for tests' })).code).toBe(0);
    expect((await runCli(['users', 'create', '--email', 'worker@example.com', '--name', 'Worker', '--role', 'user'], { env, input: 'employee passphrase for tests' })).code).toBe(0);
    expect((await runCli(['secrets', 'set', 'smtp-sender'], { env, input: 'ops@example.com\n' })).code).toBe(0);
    expect((await runCli(['secrets', 'set', 'smtp-password'], { env, input: 'relay pass 42\n' })).code).toBe(0);
    server = await startServer(env);
  });
  afterAll(async () => {
    await server?.stop();
    await smtp?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  const call = (method: string, path: string, body?: unknown, cookie?: string) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(cookie ? { cookie } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  const linkToken = (text: string): string => /reset-password#token=([A-Za-z0-9_-]{43})/.exec(text)![1]!;
  async function resetWith(token: string, password: string): Promise<void> {
    expect((await call('POST', '/api/auth/reset-password/verify', { token })).status).toBe(200);
    expect((await call('POST', '/api/auth/reset-password', { token, password, confirmPassword: password })).status).toBe(204);
    expect((await call('POST', '/api/auth/login', { login: 'worker@example.com', password })).status).toBe(200);
  }

  it('first through the dev mailbox, then through an SMTP server that requires STARTTLS and AUTH', async () => {
    expect((await call('POST', '/api/auth/forgot-password', { email: 'WORKER@example.com' })).status).toBe(202);
    let listed: { id: string; subject: string }[] = [];
    for (let i = 0; i < 100 && listed.length === 0; i++) {
      listed = (await (await call('GET', '/api/dev/mailbox')).json()).messages;
      if (listed.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect(listed[0]!.subject).toBe('Reset your password');
    const message = (await (await call('GET', `/api/dev/mailbox/${listed[0]!.id}`)).json()).message;
    await resetWith(linkToken(message.text), 'first new passphrase here');

    const login = await call('POST', '/api/auth/login', { login: 'boss', password: 'chief passphrase for tests' });
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
    const saved = await call('PUT', '/api/settings/email', { host: '127.0.0.1', port: smtp.port, emailSecretName: 'smtp-sender', passwordSecretName: 'smtp-password', sslEnabled: true, currentPassword: 'chief passphrase for tests' }, cookie);
    expect(saved.status).toBe(200);
    expect((await saved.json()).secretsResolve).toEqual({ email: true, password: true, clientSecret: null, certificate: null });

    const before = smtp.messages.length;
    expect((await call('POST', '/api/auth/forgot-password', { email: 'worker@example.com' })).status).toBe(202);
    const [mail] = (await smtp.waitForMessages(before + 1)).slice(before);
    expect(mail!.from?.value[0]).toEqual({ name: 'Gatehouse', address: 'ops@example.com' });
    await resetWith(linkToken(mail!.text ?? ''), 'second new passphrase here');
  });
});
