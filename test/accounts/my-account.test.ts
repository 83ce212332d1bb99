import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/db/index.js';
import { hashSessionToken } from '../../src/accounts/sessions.js';
import { describeAddress, LOCAL_NETWORK_PLACE } from '../../src/accounts/account-service.js';
import { describeDevice } from '../../src/accounts/user-agent.js';
import { addUser, makeTestApp, sessionCookie, STRONG_PASSWORD, type TestContext } from '../helpers/app.js';
import { bothDialects, postgresSuite, type DialectDb } from '../helpers/pg.js';

// "My account" (issue 10, item 6): a signed-in user's own sessions — listed with device, address
// and times, signed out one by one or all but this one — and their name.

const FIREFOX_WINDOWS = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0';
const SAFARI_IPHONE =
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1';

const describeOnPostgres = await postgresSuite();

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';
interface Browser {
  cookie: string;
  token: string;
  userAgent: string;
  remoteAddress: string;
  headers: Record<string, string>;
}

function harness(open?: () => Promise<DialectDb>, env: Record<string, string> = {}) {
  const h = {
    ctx: undefined as unknown as TestContext,
    handle: undefined as DialectDb | undefined,
    async start() {
      h.handle = open ? await open() : undefined;
      h.ctx = await makeTestApp({ ...(h.handle ? { db: h.handle.db } : {}), env });
    },
    async stop() {
      await h.ctx.close();
      if (h.handle) {
        await h.handle.db.destroy();
        await h.handle.drop();
      }
    },
    /** A request with this cookie (or a browser's cookie, User-Agent and address: each request touches its session). */
    call(method: Method, url: string, as?: string | Browser, payload?: unknown, headers: Record<string, string> = {}) {
      const browser: Partial<Browser> | undefined = typeof as === 'string' ? { cookie: as } : as;
      return h.ctx.app.inject({
        method,
        url,
        ...(browser?.remoteAddress ? { remoteAddress: browser.remoteAddress } : {}),
        headers: { ...(browser?.userAgent ? { 'user-agent': browser.userAgent } : {}), ...headers, ...(browser ? { cookie: browser.cookie } : {}) },
        ...(payload === undefined ? {} : { payload: payload as object }),
      });
    },
    /** Signs in from a browser with this User-Agent (and address); the session cookie and the token. */
    async signInFrom(login: string, userAgent: string, remoteAddress = '127.0.0.1', headers: Record<string, string> = {}): Promise<Browser> {
      const res = await h.ctx.app.inject({
        method: 'POST',
        url: '/api/auth/login',
        remoteAddress,
        headers: { 'user-agent': userAgent, ...headers },
        payload: { login, password: STRONG_PASSWORD },
      });
      expect(res.statusCode, res.body).toBe(200);
      const cookie = sessionCookie(res);
      return { cookie, token: cookie.slice(cookie.indexOf('=') + 1), userAgent, remoteAddress, headers };
    },
    async sessionsOf(browser: Browser) {
      const res = await h.call('GET', '/api/account/sessions', browser, undefined, browser.headers);
      expect(res.statusCode, res.body).toBe(200);
      return res.json().sessions as { id: string; device: string; ip: string | null; place: string | null; createdAt: string; lastSeenAt: string; current: boolean }[];
    },
  };
  return h;
}

for (const [dialect, open, describeOn] of bothDialects(describeOnPostgres, 'gatehouse-my-account-')) {
  describeOn(`my account sessions on ${dialect}`, () => {
    const h = harness(open);
    beforeEach(() => h.start());
    afterEach(() => h.stop());

    it('lists the two browsers a user signed in from, with device, address, times and which is this one; ids are not token hashes', async () => {
      await addUser(h.ctx, { username: 'ann', email: 'ann@example.com' });
      const firefox = await h.signInFrom('ann', FIREFOX_WINDOWS);
      h.ctx.clock.advanceSeconds(5 * 60);
      const iphone = await h.signInFrom('ann', SAFARI_IPHONE, '203.0.113.9');

      const sessions = await h.sessionsOf(firefox);
      expect(sessions).toHaveLength(2);
      const byDevice = Object.fromEntries(sessions.map((s) => [s.device, s]));
      expect(byDevice['Firefox on Windows']).toMatchObject({ ip: '127.0.0.1', place: LOCAL_NETWORK_PLACE, current: true, createdAt: '2026-03-01T12:00:00.000Z' });
      expect(byDevice['Safari on iOS']).toMatchObject({ ip: '203.0.113.9', place: null, current: false, createdAt: '2026-03-01T12:05:00.000Z' });
      // The most recently seen first.
      expect(sessions.map((s) => s.device)).toEqual(['Safari on iOS', 'Firefox on Windows']);
      // From the other browser, the other one is "this browser".
      expect((await h.sessionsOf(iphone)).filter((s) => s.current).map((s) => s.device)).toEqual(['Safari on iOS']);

      const hashes = [firefox.token, iphone.token].map(hashSessionToken);
      const body = JSON.stringify(sessions);
      for (const secret of [firefox.token, iphone.token, ...hashes]) expect(body).not.toContain(secret);
      for (const s of sessions) expect(s.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      const stored = await h.ctx.db.selectFrom('sessions').select(['public_id', 'token_hash']).execute();
      expect(stored.map((r) => r.public_id).sort()).toEqual(sessions.map((s) => s.id).sort());
      for (const r of stored) expect(r.public_id).not.toBe(r.token_hash);
    });

    it('signing one session out ends it (its cookie gets 401); another user’s session id is a 404, the same as an unknown one', async () => {
      await addUser(h.ctx, { username: 'ann' });
      await addUser(h.ctx, { username: 'bob' });
      const annHere = await h.signInFrom('ann', FIREFOX_WINDOWS);
      const annThere = await h.signInFrom('ann', SAFARI_IPHONE);
      const bob = await h.signInFrom('bob', FIREFOX_WINDOWS);
      const there = (await h.sessionsOf(annHere)).find((s) => !s.current)!;
      const bobsId = (await h.sessionsOf(bob))[0]!.id;

      const foreign = await h.call('DELETE', `/api/account/sessions/${bobsId}`, annHere);
      const unknown = await h.call('DELETE', '/api/account/sessions/AAAAAAAAAAAAAAAAAAAAAA', annHere);
      for (const res of [foreign, unknown]) {
        expect(res.statusCode).toBe(404);
        expect(res.json()).toEqual({ error: 'not_found', message: 'No such session.' });
      }
      expect((await h.call('GET', '/api/auth/me', bob)).statusCode).toBe(200);

      const res = await h.call('DELETE', `/api/account/sessions/${there.id}`, annHere);
      expect(res.statusCode).toBe(204);
      const gone = await h.call('GET', '/api/auth/me', annThere);
      expect(gone.statusCode).toBe(401);
      expect(gone.json().error).toBe('unauthenticated');
      expect((await h.sessionsOf(annHere)).map((s) => s.device)).toEqual(['Firefox on Windows']);
      // Signed out already: the id is unknown now.
      expect((await h.call('DELETE', `/api/account/sessions/${there.id}`, annHere)).statusCode).toBe(404);

      const events = await h.ctx.db.selectFrom('audit_events').selectAll().where('type', '=', 'session_signed_out').execute();
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ actor_label: 'ann', outcome: 'success' });
      expect(JSON.parse(events[0]!.detail!)).toEqual({ device: 'Safari on iOS', current: false });
    });

    it('sign-out-others keeps this session and ends every other one of this user only, and audits it', async () => {
      await addUser(h.ctx, { username: 'ann' });
      await addUser(h.ctx, { username: 'bob' });
      const here = await h.signInFrom('ann', FIREFOX_WINDOWS);
      const others = [await h.signInFrom('ann', SAFARI_IPHONE), await h.signInFrom('ann', 'curl/8.5.0')];
      const bob = await h.signInFrom('bob', SAFARI_IPHONE);

      const res = await h.call('POST', '/api/account/sign-out-others', here);
      expect(res.statusCode).toBe(204);
      for (const other of others) expect((await h.call('GET', '/api/auth/me', other)).statusCode).toBe(401);
      expect((await h.call('GET', '/api/auth/me', here)).statusCode).toBe(200);
      expect((await h.call('GET', '/api/auth/me', bob)).statusCode).toBe(200);
      expect(await h.sessionsOf(here)).toEqual([expect.objectContaining({ device: 'Firefox on Windows', current: true })]);

      const events = await h.ctx.db.selectFrom('audit_events').selectAll().where('type', '=', 'signed_out_other_sessions').execute();
      expect(events.map((e) => [e.actor_label, JSON.parse(e.detail!)])).toEqual([['ann', { sessions: 2 }]]);
    });

    it('refreshes last seen, address and browser at most once a minute, and lists no expired session', async () => {
      await addUser(h.ctx, { username: 'ann' });
      const here = await h.signInFrom('ann', FIREFOX_WINDOWS);
      const seen = async () => (await h.sessionsOf(here))[0]!;
      h.ctx.clock.advanceSeconds(30);
      const early = await h.call('GET', '/api/auth/me', here, undefined, { 'user-agent': SAFARI_IPHONE });
      expect(early.statusCode).toBe(200);
      expect(await seen()).toMatchObject({ lastSeenAt: '2026-03-01T12:00:00.000Z', device: 'Firefox on Windows' });
      h.ctx.clock.advanceSeconds(31);
      // This request is the touch: it comes from another address and browser version.
      await h.ctx.app.inject({ method: 'GET', url: '/api/auth/me', remoteAddress: '198.51.100.7', headers: { cookie: here.cookie, 'user-agent': SAFARI_IPHONE } });
      expect(await seen()).toMatchObject({ lastSeenAt: '2026-03-01T12:01:01.000Z', device: 'Safari on iOS', ip: '198.51.100.7', place: null });

      const other = await h.signInFrom('ann', SAFARI_IPHONE);
      await h.ctx.db.updateTable('sessions').set({ idle_expires_at: h.ctx.clock.now().getTime() - 1 }).where('token_hash', '=', hashSessionToken(other.token)).execute();
      expect(await h.sessionsOf(here)).toHaveLength(1);
    });
  });
}

describe('my account', () => {
  const h = harness();
  beforeEach(() => h.start());
  afterEach(() => h.stop());

  it('answers 401 without a session and 403 password_change_required while a password change is required', async () => {
    await addUser(h.ctx, { username: 'new' }, { mustChangePassword: true });
    const pending = await h.signInFrom('new', FIREFOX_WINDOWS);
    const routes: [Method, string, unknown?][] = [
      ['GET', '/api/account/sessions'],
      ['DELETE', '/api/account/sessions/AAAAAAAAAAAAAAAAAAAAAA'],
      ['POST', '/api/account/sign-out-others'],
      ['PATCH', '/api/account', { name: 'New Name' }],
    ];
    for (const [method, url, body] of routes) {
      const anon = await h.call(method, url, undefined, body);
      expect(anon.statusCode, `${method} ${url}`).toBe(401);
      expect(anon.json().error).toBe('unauthenticated');
      const res = await h.call(method, url, pending.cookie, body);
      expect(res.statusCode, `${method} ${url}`).toBe(403);
      expect(res.json().error).toBe('password_change_required');
    }
    expect((await h.ctx.db.selectFrom('users').select('name').executeTakeFirstOrThrow()).name).toBe('Test User');
  });

  it('a plain user changes their own name (trimmed), audited as user_updated; a blank or wrong name is a 400 that changes nothing', async () => {
    const ann = await addUser(h.ctx, { username: 'ann', email: 'ann@example.com', name: 'Ann' });
    const { cookie } = await h.signInFrom('ann', FIREFOX_WINDOWS);
    const res = await h.call('PATCH', '/api/account', cookie, { name: '  Ann Lee ' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().user).toMatchObject({ id: ann.id, name: 'Ann Lee', username: 'ann', email: 'ann@example.com', role: 'user' });
    expect((await h.call('GET', '/api/auth/me', cookie)).json().user.name).toBe('Ann Lee');

    const bad: [unknown, string][] = [
      [{ name: '   ' }, 'name'],
      [{ name: '' }, 'name'],
      [{ name: 'x'.repeat(201) }, 'name'],
      [{ name: 'Ann\u0007' }, 'name'],
      [{ name: ['Ann'] }, 'name'],
      [{ name: 'Ann', role: 'system-admin' }, 'role'],
      [{}, 'name'],
    ];
    for (const [body] of bad) {
      const refused = await h.call('PATCH', '/api/account', cookie, body);
      expect(refused.statusCode, JSON.stringify(body)).toBe(400);
      expect(refused.json().error, JSON.stringify(body)).toBe('invalid_request');
    }
    const blank = await h.call('PATCH', '/api/account', cookie, { name: '   ' });
    expect(blank.json().fields).toEqual({ name: 'Required.' });
    expect((await h.call('GET', '/api/auth/me', cookie)).json().user).toMatchObject({ name: 'Ann Lee', role: 'user' });

    const events = await h.ctx.db.selectFrom('audit_events').selectAll().where('type', '=', 'user_updated').execute();
    expect(events.map((e) => [e.actor_id, e.target_id, JSON.parse(e.detail!)])).toEqual([[ann.id, ann.id, { fields: ['name'], self: true }]]);
  });

  it('signing out this very session from the list clears its cookie and ends it', async () => {
    await addUser(h.ctx, { username: 'ann' });
    const here = await h.signInFrom('ann', FIREFOX_WINDOWS);
    const mine = (await h.sessionsOf(here))[0]!;
    const res = await h.call('DELETE', `/api/account/sessions/${mine.id}`, here);
    expect(res.statusCode).toBe(204);
    expect(res.cookies.find((c) => c.name === 'gatehouse_session')?.value).toBe('');
    expect((await h.call('GET', '/api/auth/me', here)).statusCode).toBe(401);
  });

  it('lists the OpenAPI shapes of the four routes', async () => {
    const doc = (await h.call('GET', '/api/openapi.json')).json();
    expect(Object.keys(doc.paths['/api/account/sessions'])).toEqual(['get']);
    expect(Object.keys(doc.paths['/api/account/sessions/{id}'])).toEqual(['delete']);
    expect(Object.keys(doc.paths['/api/account/sign-out-others'])).toEqual(['post']);
    expect(Object.keys(doc.paths['/api/account'])).toEqual(['patch']);
    const item = doc.paths['/api/account/sessions'].get.responses['200'].content['application/json'].schema.properties.sessions.items;
    expect(item.required).toEqual(['id', 'device', 'ip', 'place', 'createdAt', 'lastSeenAt', 'current']);
  });
});

describe('my account behind a proxy', () => {
  const h = harness(undefined, { TRUST_PROXY: '127.0.0.1' });
  beforeEach(() => h.start());
  afterEach(() => h.stop());

  it('shows the client address the trusted proxy forwarded; an IPv6 client by its /64; a private one as this device’s network', async () => {
    await addUser(h.ctx, { username: 'ann' });
    const v6 = await h.signInFrom('ann', FIREFOX_WINDOWS, '127.0.0.1', { 'x-forwarded-for': '2001:db8:1:2:aaaa:bbbb:cccc:dddd' });
    await h.signInFrom('ann', SAFARI_IPHONE, '127.0.0.1', { 'x-forwarded-for': '192.168.1.20' });
    const sessions = await h.sessionsOf(v6);
    expect(sessions.map((s) => [s.device, s.ip, s.place])).toEqual(
      expect.arrayContaining([
        ['Firefox on Windows', '2001:db8:1:2::/64', null],
        ['Safari on iOS', '192.168.1.20', LOCAL_NETWORK_PLACE],
      ]),
    );
  });
});

describe('device and address descriptions', () => {
  it.each([
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36', 'Chrome on Windows'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.68', 'Edge on Windows'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15', 'Safari on macOS'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0', 'Firefox on macOS'],
    ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36', 'Chrome on Linux'],
    ['Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0', 'Firefox on Linux'],
    ['Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36', 'Chrome on Android'],
    ['Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36 EdgA/126.0.0.0', 'Edge on Android'],
    [SAFARI_IPHONE, 'Safari on iOS'],
    ['Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1', 'Chrome on iOS'],
    ['Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/127.0 Mobile/15E148 Safari/605.1.15', 'Firefox on iOS'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0', 'Unknown browser on Windows'],
    ['curl/8.5.0', 'Unknown browser'],
    ['', 'Unknown browser'],
  ])('%s → %s', (ua, label) => {
    expect(describeDevice(ua).label).toBe(label);
  });

  it('marks loopback and private addresses, shows IPv6 by /64 and IPv4-mapped as IPv4', () => {
    expect(describeAddress('127.0.0.1')).toEqual({ ip: '127.0.0.1', place: LOCAL_NETWORK_PLACE });
    expect(describeAddress('::1')).toEqual({ ip: '::/64', place: LOCAL_NETWORK_PLACE });
    expect(describeAddress('10.1.2.3').place).toBe(LOCAL_NETWORK_PLACE);
    expect(describeAddress('172.31.255.1').place).toBe(LOCAL_NETWORK_PLACE);
    expect(describeAddress('172.32.0.1').place).toBeNull();
    expect(describeAddress('::ffff:192.168.0.5')).toEqual({ ip: '192.168.0.5', place: LOCAL_NETWORK_PLACE });
    expect(describeAddress('fd12:3456::1').place).toBe(LOCAL_NETWORK_PLACE);
    expect(describeAddress('fe80::1%eth0').place).toBe(LOCAL_NETWORK_PLACE);
    expect(describeAddress('2001:db8:1:2:3:4:5:6')).toEqual({ ip: '2001:db8:1:2::/64', place: null });
    expect(describeAddress('8.8.8.8')).toEqual({ ip: '8.8.8.8', place: null });
    expect(describeAddress(null)).toEqual({ ip: null, place: null });
  });
});
