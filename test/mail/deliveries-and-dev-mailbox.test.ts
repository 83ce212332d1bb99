import { afterEach, describe, expect, it } from 'vitest';
import { addUser, makeTestApp, signIn, type TestContext } from '../helpers/app.js';
import { startDevInbox, type DevInbox } from '../../src/mail/dev-inbox.js';
import { DEV_INBOX_FROM } from '../../src/mail/transport.js';
import { enqueueDelivery } from '../../src/mail/outbox.js';
import { seededRandom } from '../../src/random.js';
import { FakeClock } from '../../src/clock.js';

let ctx: TestContext;
let inbox: DevInbox | undefined;
afterEach(async () => {
  await ctx.close();
  await inbox?.close();
  inbox = undefined;
});

describe('GET /api/mail/deliveries', () => {
  it('pages newest first with limit and before (a delivery id), and never shows a token or body', async () => {
    ctx = await makeTestApp();
    await addUser(ctx, { username: 'root', role: 'system-admin' });
    const admin = await signIn(ctx, 'root');
    const random = seededRandom(7);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push(await enqueueDelivery(ctx.db, random, { kind: 'reset', userId: null, toAddress: `user${i}@example.com`, nowMs: 1_000_000 + i * 1000, notAfterMs: null }));
    }
    // A request not yet looked up (no address) is not a delivery yet.
    await enqueueDelivery(ctx.db, random, { kind: 'reset', userId: null, lookupEmail: 'typed@example.com', toAddress: null, nowMs: 2_000_000, notAfterMs: null });
    const page = (query: string) => ctx.app.inject({ method: 'GET', url: `/api/mail/deliveries${query}`, headers: { cookie: admin } });

    const first = await page('?limit=2');
    expect(first.statusCode).toBe(200);
    const firstPage = first.json().deliveries;
    expect(firstPage.map((d: { to: string }) => d.to)).toEqual(['user4@example.com', 'user3@example.com']);
    expect(firstPage[0]).toEqual({ id: ids[4], at: new Date(1_004_000).toISOString(), to: 'user4@example.com', kind: 'reset', status: 'queued', attempts: 0, lastError: null, via: null });
    const second = (await page(`?limit=2&before=${firstPage[1].id}`)).json().deliveries;
    expect(second.map((d: { to: string }) => d.to)).toEqual(['user2@example.com', 'user1@example.com']);
    const last = (await page(`?limit=2&before=${second[1].id}`)).json().deliveries;
    expect(last.map((d: { to: string }) => d.to)).toEqual(['user0@example.com']);
    expect((await page('')).json().deliveries).toHaveLength(5);
    expect((await page('')).body).not.toContain('typed@example.com');

    for (const bad of ['?limit=0', '?limit=1000', '?limit=abc', '?before=not-an-id', '?page=2', '?limit=1&limit=2']) {
      const res = await page(bad);
      expect(res.statusCode, bad).toBe(400);
      expect(res.json().error, bad).toBe('invalid_request');
    }
  });

  it('is for system admins only', async () => {
    ctx = await makeTestApp();
    await addUser(ctx, { username: 'someone', role: 'user' });
    expect((await ctx.app.inject({ method: 'GET', url: '/api/mail/deliveries' })).statusCode).toBe(401);
    const user = await signIn(ctx, 'someone');
    expect((await ctx.app.inject({ method: 'GET', url: '/api/mail/deliveries', headers: { cookie: user } })).statusCode).toBe(403);
  });
});

describe('the dev mailbox API', () => {
  async function withInbox(env: Record<string, string> = {}): Promise<DevInbox> {
    inbox = await startDevInbox({ clock: new FakeClock('2026-03-01T12:00:00.000Z'), random: seededRandom(3) });
    ctx = await makeTestApp({ env, deps: { devInbox: inbox } });
    return inbox;
  }

  it('lists and shows a message the embedded SMTP server really received', async () => {
    const box = await withInbox();
    await box.mailer.send({ to: 'jane@example.com', subject: 'Reset your password', text: 'Open the link', html: '<p style="color:red">Open <a href="http://localhost:3000/reset-password#token=abc">Reset Password</a></p>' });
    const list = await ctx.app.inject({ method: 'GET', url: '/api/dev/mailbox' });
    expect(list.statusCode).toBe(200);
    const [summary] = list.json().messages;
    expect(summary).toEqual({ id: expect.any(String), at: '2026-03-01T12:00:00.000Z', from: expect.stringContaining(DEV_INBOX_FROM.replace(/^.*<|>$/g, '')), to: 'jane@example.com', subject: 'Reset your password' });
    const one = await ctx.app.inject({ method: 'GET', url: `/api/dev/mailbox/${summary.id}` });
    expect(one.json().message).toMatchObject({ ...summary, text: expect.stringContaining('Open the link'), html: expect.stringContaining('Reset Password</a>') });
    expect((await ctx.app.inject({ method: 'GET', url: '/api/dev/mailbox/no-such-id' })).statusCode).toBe(404);
  });

  it('serves the HTML on its own with a policy that lets nothing load or run, framable by the app only', async () => {
    const box = await withInbox();
    await box.mailer.send({ to: 'jane@example.com', subject: 'Hi', text: 'x', html: '<p>Hello <script>alert(1)</script></p>' });
    const id = box.list()[0]!.id;
    const res = await ctx.app.inject({ method: 'GET', url: `/api/dev/mailbox/${id}/html` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['content-security-policy']).toBe(
      "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox allow-top-navigation-by-user-activation",
    );
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.body).toContain('<p>Hello');
    // The app's own pages keep the app's policy.
    const api = await ctx.app.inject({ method: 'GET', url: '/api/dev/mailbox' });
    expect(api.headers['content-security-policy']).toContain("frame-ancestors 'none'");
  });

  it('answers 404 to any client that is not on this machine, whatever X-Forwarded-For says', async () => {
    const box = await withInbox({ TRUST_PROXY: 'true' });
    await box.mailer.send({ to: 'jane@example.com', subject: 'Hi', text: 'x', html: '<p>x</p>' });
    const id = box.list()[0]!.id;
    for (const url of ['/api/dev/mailbox', `/api/dev/mailbox/${id}`, `/api/dev/mailbox/${id}/html`]) {
      const local = await ctx.app.inject({ method: 'GET', url });
      expect(local.statusCode, url).toBe(200);
      const remote = await ctx.app.inject({ method: 'GET', url, remoteAddress: '10.0.0.5', headers: { 'x-forwarded-for': '127.0.0.1' } });
      expect(remote.statusCode, url).toBe(404);
      expect(remote.json(), url).toEqual({ error: 'not_found', message: 'Not found.' });
      expect((await ctx.app.inject({ method: 'GET', url, remoteAddress: '::1' })).statusCode, url).toBe(200);
      // A proxy on this machine connects from loopback: what it forwards is still not local.
      const proxied = await ctx.app.inject({ method: 'GET', url, remoteAddress: '127.0.0.1', headers: { 'x-forwarded-for': '203.0.113.9' } });
      expect(proxied.statusCode, url).toBe(404);
      const forwarded = await ctx.app.inject({ method: 'GET', url, remoteAddress: '127.0.0.1', headers: { forwarded: 'for=203.0.113.9' } });
      expect(forwarded.statusCode, url).toBe(404);
    }
  });

  it('answers 404 unless the Host is PUBLIC_URL\'s host name, localhost or a loopback literal (DNS rebinding)', async () => {
    const box = await withInbox({ PUBLIC_URL: 'http://gatehouse.test:3000' });
    await box.mailer.send({ to: 'jane@example.com', subject: 'Hi', text: 'x', html: '<p>x</p>' });
    const id = box.list()[0]!.id;
    for (const url of ['/api/dev/mailbox', `/api/dev/mailbox/${id}`, `/api/dev/mailbox/${id}/html`]) {
      for (const host of ['gatehouse.test:3000', 'GATEHOUSE.test', 'localhost', 'localhost:3000', '127.0.0.1:3000', '127.1.2.3', '[::1]:3000', '[::1]']) {
        const res = await ctx.app.inject({ method: 'GET', url, remoteAddress: '127.0.0.1', headers: { host } });
        expect(res.statusCode, `${url} Host: ${host}`).toBe(200);
      }
      for (const host of ['rebind.attacker.example', 'rebind.attacker.example:3000', 'gatehouse.test.attacker.example', 'localhost.attacker.example', '127.0.0.1.nip.io', '10.0.0.5', '[::2]', '0.0.0.0', 'localhost:3000:1']) {
        const res = await ctx.app.inject({ method: 'GET', url, remoteAddress: '127.0.0.1', headers: { host } });
        expect(res.statusCode, `${url} Host: ${host}`).toBe(404);
        expect(res.json()).toEqual({ error: 'not_found', message: 'Not found.' });
      }
    }
  });

  it('answers 404 to a request that carries any proxy header, whatever its value', async () => {
    const box = await withInbox();
    await box.mailer.send({ to: 'jane@example.com', subject: 'Hi', text: 'x', html: '<p>x</p>' });
    for (const header of ['x-real-ip', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'x-forwarded-server', 'forwarded']) {
      const res = await ctx.app.inject({ method: 'GET', url: '/api/dev/mailbox', remoteAddress: '127.0.0.1', headers: { [header]: '127.0.0.1' } });
      expect(res.statusCode, header).toBe(404);
      expect(res.json()).toEqual({ error: 'not_found', message: 'Not found.' });
    }
  });

  it('answers a browser only from its own origin (Sec-Fetch-Site: same-origin); tools that send no such header are fine', async () => {
    const box = await withInbox();
    await box.mailer.send({ to: 'jane@example.com', subject: 'Hi', text: 'x', html: '<p>x</p>' });
    const id = box.list()[0]!.id;
    for (const url of ['/api/dev/mailbox', `/api/dev/mailbox/${id}`, `/api/dev/mailbox/${id}/html`]) {
      expect((await ctx.app.inject({ method: 'GET', url, headers: { 'sec-fetch-site': 'same-origin' } })).statusCode, url).toBe(200);
      for (const site of ['cross-site', 'same-site', 'none', '']) {
        const res = await ctx.app.inject({ method: 'GET', url, headers: { 'sec-fetch-site': site } });
        expect(res.statusCode, `${url} Sec-Fetch-Site: ${site}`).toBe(404);
      }
    }
  });

  it('answers 404 when the dev mailbox is off', async () => {
    ctx = await makeTestApp();
    for (const url of ['/api/dev/mailbox', '/api/dev/mailbox/x', '/api/dev/mailbox/x/html']) {
      const res = await ctx.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(404);
      expect(res.json().error).toBe('not_found');
    }
  });
});
