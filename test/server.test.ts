import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, startServer, tempDataDir, type RunningServer } from './helpers/cli.js';

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

    const created = await post('/api/users', { email: 'dev@example.com', name: 'Dev', role: 'user', password: 'developer passphrase here' }, cookie);
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
