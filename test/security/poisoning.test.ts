import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { AppDeps } from '../../src/deps.js';
import type { OutgoingMessage } from '../../src/mail/transport.js';
import { addUser, makeTestApp, signIn, type TestContext } from '../helpers/app.js';
import { fakeHasher, linksIn, requestWhileOverloaded } from './abuse-helpers.js';
import { listenRaw } from './support/raw-http.js';

// Issue 4 item 4: links in mail come only from PUBLIC_URL, whatever Host or forwarding headers a
// request carries; HSTS when PUBLIC_URL is https; no Referer ever leaves a page of ours; the reset
// page is never cached and may load nothing from another origin.

const opened: TestContext[] = [];
afterEach(async () => {
  for (const ctx of opened.splice(0)) await ctx.close();
});

async function app(env: Record<string, string>, deps: Partial<AppDeps> = {}): Promise<TestContext> {
  const ctx = await makeTestApp({
    env: { LIMIT_FORGOT_PER_ADDRESS_PER_HOUR: '0', LIMIT_FORGOT_PER_IP_PER_MINUTE: '0', ...env },
    deps: { hasher: fakeHasher(), ...deps },
  });
  opened.push(ctx);
  return ctx;
}

const POISON: [string, Record<string, string>][] = [
  ['Host', { host: 'evil.example' }],
  ['Host with a port', { host: 'evil.example:443' }],
  ['X-Forwarded-Host', { 'x-forwarded-host': 'evil.example' }],
  ['X-Forwarded-Host list', { 'x-forwarded-host': 'evil.example, dash.example.com' }],
  ['X-Forwarded-Proto', { 'x-forwarded-proto': 'http' }],
  ['X-Forwarded-Proto and Host', { 'x-forwarded-proto': 'http', 'x-forwarded-host': 'evil.example:8443', 'x-forwarded-port': '8443' }],
  ['Forwarded', { forwarded: 'host=evil.example' }],
  ['Forwarded with proto', { forwarded: 'for=192.0.2.1;host=evil.example;proto=http' }],
  ['X-Forwarded-Prefix', { 'x-forwarded-prefix': '//evil.example' }],
  ['X-Original-Host and friends', { 'x-original-host': 'evil.example', 'x-host': 'evil.example', 'x-forwarded-server': 'evil.example', 'x-original-url': 'http://evil.example/', 'x-rewrite-url': 'http://evil.example/' }],
  ['everything at once', { host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http', forwarded: 'host=evil.example;proto=http', 'x-forwarded-prefix': '/evil' }],
];

/** Every link in the message is PUBLIC_URL's reset page, and nothing of the poison got in. */
function expectLinksFromPublicUrl(messages: OutgoingMessage[], publicUrl: string, context: string): void {
  expect(messages.length, `${context}: no mail was sent`).toBeGreaterThan(0);
  for (const m of messages) {
    const links = linksIn(m);
    expect(links.length, `${context}: no link in ${m.subject}`).toBeGreaterThan(0);
    for (const link of links) expect(link.startsWith(`${publicUrl}/reset-password#token=`), `${context}: ${link}`).toBe(true);
    expect(`${m.subject}\n${m.text}\n${m.html}`, context).not.toMatch(/evil/i);
  }
}

const TRUST = [
  ['TRUST_PROXY off', {}],
  ['TRUST_PROXY=true', { TRUST_PROXY: 'true' }],
  ['TRUST_PROXY=127.0.0.1', { TRUST_PROXY: '127.0.0.1' }],
] as const;
const PUBLIC_URLS = ['https://dash.example.com', 'https://example.com/gatehouse'];

describe('links in mail come only from PUBLIC_URL', () => {
  for (const [trustName, trustEnv] of TRUST) {
    for (const publicUrl of PUBLIC_URLS) {
      it(`forgot-password, admin send-reset and a new user's set-password mail, under every poisoned header (${trustName}, PUBLIC_URL ${publicUrl})`, async () => {
        const ctx = await app({ PUBLIC_URL: publicUrl, ...trustEnv });
        const jane = await addUser(ctx, { email: 'jane@example.com' });
        await addUser(ctx, { username: 'root', email: 'root@example.com', role: 'system-admin' });
        const admin = await signIn(ctx, 'root');
        let n = 0;
        for (const [name, headers] of POISON) {
          const sentBefore = ctx.mailer.sent.length;
          const forgot = await ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', headers, payload: { email: 'jane@example.com' } });
          expect(forgot.statusCode, name).toBe(202);
          const sendReset = await ctx.app.inject({ method: 'POST', url: `/api/users/${jane.id}/send-reset`, headers: { ...headers, cookie: admin } });
          expect(sendReset.statusCode, name).toBe(202);
          const created = await ctx.app.inject({ method: 'POST', url: '/api/users', headers: { ...headers, cookie: admin }, payload: { email: `new${n++}@example.com`, name: 'New', role: 'user' } });
          expect(created.statusCode, name).toBe(201);
          await ctx.outbox.drain();
          const sent = ctx.mailer.sent.slice(sentBefore);
          // The reset mail twice (forgot-password, send-reset) and the new user's set-password mail.
          expect(sent, name).toHaveLength(3);
          expectLinksFromPublicUrl(sent, publicUrl, `${name}, ${trustName}`);
        }
      });
    }
  }

  describe('over a real socket', () => {
    const post = (target: string, body: string | undefined, headers: string[]): string =>
      [
        `POST ${target} HTTP/1.1`,
        ...headers,
        ...(body === undefined ? ['Content-Length: 0'] : ['Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`]),
        'Connection: close',
        '',
        body ?? '',
      ].join('\r\n');

    for (const [trustName, trustEnv] of TRUST) {
      it(`an absolute-URI request line naming another host changes no link (${trustName})`, async () => {
        const publicUrl = 'https://dash.example.com';
        const ctx = await app({ PUBLIC_URL: publicUrl, ...trustEnv });
        const jane = await addUser(ctx, { email: 'jane@example.com' });
        await addUser(ctx, { username: 'root', email: 'root@example.com', role: 'system-admin' });
        const admin = await signIn(ctx, 'root');
        const server = await listenRaw(ctx.app);
        const poison = ['Host: evil.example', 'X-Forwarded-Host: evil.example', 'X-Forwarded-Proto: http', 'Forwarded: host=evil.example;proto=http'];
        const answers = [
          await server.send(post('http://evil.example/api/auth/forgot-password', JSON.stringify({ email: 'jane@example.com' }), poison)),
          await server.send(post('https://evil.example:8443/api/auth/forgot-password', JSON.stringify({ email: 'jane@example.com' }), ['Host: dash.example.com'])),
          await server.send(post(`http://evil.example/api/users/${jane.id}/send-reset`, undefined, [...poison, `Cookie: ${admin}`])),
          await server.send(post('/api/auth/forgot-password', JSON.stringify({ email: 'jane@example.com' }), poison)),
        ];
        // Each answer is an ordinary one: accepted (Node routes the absolute form by its path), or a plain 404.
        for (const answer of answers) expect(answer, answer.slice(0, 200)).toMatch(/^HTTP\/1\.1 (202|404) /);
        expect(answers[3]).toMatch(/^HTTP\/1\.1 202 /);
        await ctx.outbox.drain();
        expect(ctx.mailer.sent).toHaveLength(answers.filter((a) => a.startsWith('HTTP/1.1 202 ')).length);
        expectLinksFromPublicUrl(ctx.mailer.sent, publicUrl, `absolute URI, ${trustName}`);
      });
    }
  });
});

// ---------------------------------------------------------------------------------------------

/** A stand-in for the built web app: the headers under test come from the server, not the page. */
function webRootFixture(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-web-'));
  fs.mkdirSync(path.join(dir, 'assets'));
  fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><html lang="en"><head><script type="module" src="/assets/app-1a2b3c.js"></script></head><body></body></html>');
  fs.writeFileSync(path.join(dir, 'assets', 'app-1a2b3c.js'), 'console.log(1);');
  return dir;
}

interface Probe {
  name: string;
  run(ctx: TestContext, cookies: { user: string }): Promise<LightMyRequestResponse>;
}

const json = { 'content-type': 'application/json' };
const PROBES: Probe[] = [
  { name: 'API 200', run: (c) => c.app.inject({ method: 'GET', url: '/api/auth/password-policy' }) },
  { name: 'API 202 forgot-password', run: (c) => c.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: 'a@example.com' } }) },
  { name: 'API 204 logout', run: (c) => c.app.inject({ method: 'POST', url: '/api/auth/logout' }) },
  { name: 'API 400 invalid_request', run: (c) => c.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: ['a@example.com'] } }) },
  { name: 'API 400 invalid JSON', run: (c) => c.app.inject({ method: 'POST', url: '/api/auth/forgot-password', headers: json, payload: '{' }) },
  { name: 'API 401 invalid_credentials', run: (c) => c.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login: 'x', password: 'y' } }) },
  { name: 'API 401 unauthenticated', run: (c) => c.app.inject({ method: 'GET', url: '/api/users' }) },
  { name: 'API 403 forbidden', run: (c, k) => c.app.inject({ method: 'GET', url: '/api/users', headers: { cookie: k.user } }) },
  {
    name: 'API 403 forbidden_origin',
    run: (c) => c.app.inject({ method: 'POST', url: '/api/auth/forgot-password', headers: { origin: 'https://evil.example' }, payload: { email: 'a@example.com' } }),
  },
  { name: 'API 404 unknown path', run: (c) => c.app.inject({ method: 'GET', url: '/api/nope' }) },
  { name: 'API 405', run: (c) => c.app.inject({ method: 'GET', url: '/api/auth/login' }) },
  { name: 'API 413', run: (c) => c.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login: 'x'.repeat(9000), password: 'y' } }) },
  { name: 'API 415', run: (c) => c.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'text/plain' }, payload: 'x' }) },
  {
    name: 'API 429',
    run: async (c) => {
      const verify = (): Promise<LightMyRequestResponse> =>
        c.app.inject({ method: 'POST', url: '/api/auth/reset-password/verify', remoteAddress: '203.0.113.200', payload: { token: 'A'.repeat(43) } });
      for (let i = 0; i < 10; i++) await verify();
      return verify();
    },
  },
  { name: 'API 400 malformed URL', run: (c) => c.app.inject({ method: 'DELETE', url: '/api/users/%E0%A4%A' }) },
  { name: 'API over-long path parameter', run: (c) => c.app.inject({ method: 'DELETE', url: `/api/users/${'x'.repeat(201)}` }) },
  { name: 'OpenAPI document', run: (c) => c.app.inject({ method: 'GET', url: '/api/openapi.json' }) },
  { name: 'healthz', run: (c) => c.app.inject({ method: 'GET', url: '/healthz' }) },
  { name: 'readyz', run: (c) => c.app.inject({ method: 'GET', url: '/readyz' }) },
  { name: 'page /login', run: (c) => c.app.inject({ method: 'GET', url: '/login' }) },
  { name: 'page /forgot-password', run: (c) => c.app.inject({ method: 'GET', url: '/forgot-password' }) },
  { name: 'page /reset-password', run: (c) => c.app.inject({ method: 'GET', url: '/reset-password' }) },
  { name: 'page HEAD /reset-password', run: (c) => c.app.inject({ method: 'HEAD', url: '/reset-password' }) },
  { name: 'page 404', run: (c) => c.app.inject({ method: 'GET', url: '/no-such-page' }) },
  { name: 'asset', run: (c) => c.app.inject({ method: 'GET', url: '/assets/app-1a2b3c.js' }) },
  { name: 'missing asset', run: (c) => c.app.inject({ method: 'GET', url: '/assets/nope.js' }) },
];

describe('security headers on every response', () => {
  let webRoot: string;
  beforeAll(() => {
    webRoot = webRootFixture();
  });
  afterAll(() => {
    fs.rmSync(webRoot, { recursive: true, force: true });
  });

  async function probeApp(publicUrl: string): Promise<{ ctx: TestContext; cookies: { user: string } }> {
    const ctx = await app({ PUBLIC_URL: publicUrl }, { webRoot });
    await addUser(ctx, { username: 'plain', email: 'plain@example.com' });
    return { ctx, cookies: { user: await signIn(ctx, 'plain') } };
  }

  it.each(PROBES.map((p) => [p.name, p] as const))('Referrer-Policy: no-referrer and HSTS (https PUBLIC_URL) on %s', async (_name, probe) => {
    const { ctx, cookies } = await probeApp('https://dash.example.com');
    const res = await probe.run(ctx, cookies);
    expect(res.headers['referrer-policy'], `${res.statusCode} ${res.body.slice(0, 100)}`).toBe('no-referrer');
    expect(res.headers['strict-transport-security'], `${res.statusCode}`).toMatch(/max-age=\d{7,}/);
  });

  it.each(PROBES.map((p) => [p.name, p] as const))('no HSTS when PUBLIC_URL is http, on %s', async (_name, probe) => {
    const { ctx, cookies } = await probeApp('http://localhost:3000');
    const res = await probe.run(ctx, cookies);
    expect(res.headers['strict-transport-security']).toBeUndefined();
    expect(res.headers['referrer-policy'], `${res.statusCode} ${res.body.slice(0, 100)}`).toBe('no-referrer');
  });

  it('Referrer-Policy: no-referrer and HSTS on a 503 overloaded', async () => {
    const ctx = await app({ PUBLIC_URL: 'https://dash.example.com' }, { loadShedding: { maxEventLoopDelayMs: 50, sampleIntervalMs: 100 } });
    const shed = await requestWhileOverloaded(ctx.app, () => ctx.app.inject({ method: 'GET', url: '/api/auth/password-policy' }));
    expect(shed?.json().error).toBe('overloaded');
    expect(shed!.headers['referrer-policy']).toBe('no-referrer');
    expect(shed!.headers['strict-transport-security']).toMatch(/max-age=\d{7,}/);
  });

  it('never lets an API response be stored by a cache, whatever the path spelling', async () => {
    const { ctx, cookies } = await probeApp('https://dash.example.com');
    for (const url of ['/api/auth/me', '/api/auth/me/', '//api/auth/me', '/api//auth/me', '/api/auth/me?x=1', '/api/auth/%6De']) {
      const res = await ctx.app.inject({ method: 'GET', url, headers: { cookie: cookies.user } });
      expect(res.statusCode, url).toBe(200);
      expect(String(res.headers['cache-control']), `${url} answered the user's own record without Cache-Control: no-store`).toMatch(/no-store/);
    }
  });
});

describe('the reset page', () => {
  let webRoot: string;
  beforeAll(() => {
    webRoot = webRootFixture();
  });
  afterAll(() => {
    fs.rmSync(webRoot, { recursive: true, force: true });
  });

  // Fetch directives (CSP3) and the navigation/document ones that name where content may come from.
  const SOURCE_DIRECTIVES = [
    'default-src',
    'script-src',
    'script-src-elem',
    'script-src-attr',
    'style-src',
    'style-src-elem',
    'style-src-attr',
    'img-src',
    'font-src',
    'connect-src',
    'media-src',
    'object-src',
    'frame-src',
    'child-src',
    'worker-src',
    'manifest-src',
    'prefetch-src',
    'form-action',
    'base-uri',
    'frame-ancestors',
  ];

  function parseCsp(header: string): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const part of header.split(';')) {
      const [name, ...values] = part.trim().split(/\s+/);
      if (name) out.set(name.toLowerCase(), values);
    }
    return out;
  }

  it.each(['/reset-password', '/reset-password/', '/reset-password?x=1', '//reset-password'])('%s is served uncacheable, with no Referer, under a CSP that allows no other origin', async (url) => {
    const ctx = await app({ PUBLIC_URL: 'https://dash.example.com' }, { webRoot });
    const res = await ctx.app.inject({ method: 'GET', url });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['cache-control']).toMatch(/(^|,\s*)no-store(\s*,|$)/);
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    const csp = parseCsp(String(res.headers['content-security-policy']));
    expect(csp.get('default-src'), 'a default-src covers every fetch directive not named').toBeDefined();
    for (const [directive, values] of csp) {
      if (!SOURCE_DIRECTIVES.includes(directive)) continue;
      expect(values.length, directive).toBeGreaterThan(0);
      for (const v of values) expect(["'self'", "'none'", 'data:'], `${directive} ${v}`).toContain(v);
    }
    // The page is never framed by another site (clickjacking the reset form).
    expect(csp.get('frame-ancestors')).toEqual(["'none'"]);
  });
});
