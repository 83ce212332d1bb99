import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addUser, makeTestApp, sessionCookie, signIn, STRONG_PASSWORD, OTHER_STRONG_PASSWORD, type TestContext } from '../helpers/app.js';

let ctx: TestContext;
beforeEach(async () => {
  ctx = await makeTestApp();
});
afterEach(async () => {
  await ctx.close();
});

describe('POST /api/auth/login', () => {
  it('signs in by email or by username and sets an HttpOnly SameSite=Lax cookie', async () => {
    await addUser(ctx, { email: 'Jane.Doe@Example.com', username: 'jane' });
    for (const login of ['jane.doe@example.com', 'JANE']) {
      const res = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login, password: STRONG_PASSWORD } });
      expect(res.statusCode).toBe(200);
      expect(res.json().user).toMatchObject({ email: 'Jane.Doe@Example.com', username: 'jane', role: 'user', mustChangePassword: false });
      const cookie = res.cookies.find((c) => c.name === 'gatehouse_session')!;
      expect(cookie.httpOnly).toBe(true);
      expect(cookie.sameSite).toBe('Lax');
      expect(cookie.secure).toBeFalsy();
      expect(cookie.value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    }
  });

  it('answers unknown, disabled and wrong-password logins with the same 401 body', async () => {
    await addUser(ctx, { username: 'bob' });
    const off = await addUser(ctx, { username: 'off' });
    await ctx.db.updateTable('users').set({ disabled: 1 }).where('id', '=', off.id).execute();
    const bodies = [];
    for (const [login, password] of [['nobody', STRONG_PASSWORD], ['off', STRONG_PASSWORD], ['bob', 'wrong password entirely']]) {
      const res = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login, password } });
      expect(res.statusCode).toBe(401);
      bodies.push(res.body);
    }
    expect(new Set(bodies).size).toBe(1);
    expect(JSON.parse(bodies[0]!)).toEqual({ error: 'invalid_credentials', message: expect.any(String) });
  });

  it('stores only the hash of the session token', async () => {
    await addUser(ctx, { username: 'bob' });
    const cookie = await signIn(ctx, 'bob');
    const token = cookie.split('=')[1]!;
    const rows = await ctx.db.selectFrom('sessions').selectAll().execute();
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(token);
  });

  it('refuses an array where a string belongs, extra fields and other content types', async () => {
    const arr = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login: ['a'], password: 'x' } });
    expect(arr.statusCode).toBe(400);
    expect(arr.json().error).toBe('invalid_request');
    const extra = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login: 'a', password: 'x', admin: true } });
    expect(extra.statusCode).toBe(400);
    const text = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'text/plain' }, payload: 'login=a' });
    expect(text.statusCode).toBe(415);
    expect(text.json().error).toBe('unsupported_media_type');
    // A prototype-pollution probe is refused, not quietly cleaned.
    for (const payload of ['{"login":"a","password":"x","__proto__":{"role":"system-admin"}}', '{"login":"a","password":"x","constructor":{"prototype":{"x":1}}}']) {
      const probe = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload });
      expect(probe.statusCode, payload).toBe(400);
      expect(probe.json().error).toBe('invalid_request');
    }
    const big = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login: 'a', password: 'x'.repeat(9000) } });
    expect(big.statusCode).toBe(413);
    expect(big.json().error).toBe('payload_too_large');
    const broken = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"login":' });
    expect(broken.statusCode).toBe(400);
    expect(broken.body).not.toMatch(/at .*\.js/);
  });

  it('refuses a cross-site POST by Origin or Sec-Fetch-Site', async () => {
    await addUser(ctx, { username: 'bob' });
    for (const headers of [{ origin: 'https://evil.example' }, { origin: 'null' }, { 'sec-fetch-site': 'cross-site' }]) {
      const res = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', headers, payload: { login: 'bob', password: STRONG_PASSWORD } });
      expect(res.statusCode).toBe(403);
      expect(res.json().error).toBe('forbidden_origin');
    }
    const same = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', headers: { origin: 'http://localhost:3000' }, payload: { login: 'bob', password: STRONG_PASSWORD } });
    expect(same.statusCode).toBe(200);
  });
});

describe('sessions', () => {
  it('me answers 401 without a session and the user with one', async () => {
    expect((await ctx.app.inject({ method: 'GET', url: '/api/auth/me' })).statusCode).toBe(401);
    await addUser(ctx, { username: 'bob', name: 'Bob' });
    const cookie = await signIn(ctx, 'bob');
    const me = await ctx.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie } });
    expect(me.statusCode).toBe(200);
    expect(me.json().user).toMatchObject({ username: 'bob', name: 'Bob', role: 'user', disabled: false, mustChangePassword: false });
    expect(me.json().user).not.toHaveProperty('password_hash');
  });

  it('expires after the idle time but not a second before', async () => {
    await addUser(ctx, { username: 'bob' });
    const cookie = await signIn(ctx, 'bob');
    ctx.clock.advanceSeconds(120 * 60 - 1);
    expect((await ctx.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie } })).statusCode).toBe(200);
    // that request refreshed the idle window
    ctx.clock.advanceSeconds(120 * 60);
    expect((await ctx.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie } })).statusCode).toBe(401);
  });

  it('expires at the absolute limit even when in constant use', async () => {
    await addUser(ctx, { username: 'bob' });
    const cookie = await signIn(ctx, 'bob');
    for (let minutes = 0; minutes < 12 * 60 - 60; minutes += 60) {
      ctx.clock.advanceSeconds(3600);
      expect((await ctx.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie } })).statusCode).toBe(200);
    }
    ctx.clock.advanceSeconds(3599);
    expect((await ctx.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie } })).statusCode).toBe(200);
    ctx.clock.advanceSeconds(1);
    expect((await ctx.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie } })).statusCode).toBe(401);
  });

  it('logout revokes the session and answers 204 also without one', async () => {
    await addUser(ctx, { username: 'bob' });
    const cookie = await signIn(ctx, 'bob');
    expect((await ctx.app.inject({ method: 'POST', url: '/api/auth/logout', headers: { cookie } })).statusCode).toBe(204);
    expect((await ctx.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie } })).statusCode).toBe(401);
    expect((await ctx.app.inject({ method: 'POST', url: '/api/auth/logout' })).statusCode).toBe(204);
  });
});

describe('POST /api/auth/change-password', () => {
  it('changes the password and revokes every other session, keeping this one', async () => {
    await addUser(ctx, { username: 'bob' });
    const a = await signIn(ctx, 'bob');
    const b = await signIn(ctx, 'bob');
    const res = await ctx.app.inject({
      method: 'POST',
      url: '/api/auth/change-password',
      headers: { cookie: a },
      payload: { currentPassword: STRONG_PASSWORD, newPassword: OTHER_STRONG_PASSWORD },
    });
    expect(res.statusCode).toBe(204);
    // This browser stays signed in with a new session id; the old id is void like every other session.
    const rotated = sessionCookie(res);
    expect(rotated).not.toBe(a);
    expect((await ctx.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie: rotated } })).statusCode).toBe(200);
    expect((await ctx.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie: a } })).statusCode).toBe(401);
    expect((await ctx.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie: b } })).statusCode).toBe(401);
    await signIn(ctx, 'bob', OTHER_STRONG_PASSWORD);
  });

  it('refuses a wrong current password and a weak new one with reasons', async () => {
    await addUser(ctx, { username: 'bobby-tables' });
    const cookie = await signIn(ctx, 'bobby-tables');
    const wrong = await ctx.app.inject({ method: 'POST', url: '/api/auth/change-password', headers: { cookie }, payload: { currentPassword: 'nope', newPassword: OTHER_STRONG_PASSWORD } });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().error).toBe('invalid_current_password');
    const weak = await ctx.app.inject({ method: 'POST', url: '/api/auth/change-password', headers: { cookie }, payload: { currentPassword: STRONG_PASSWORD, newPassword: 'bobby-tables-is-my-name' } });
    expect(weak.statusCode).toBe(400);
    expect(weak.json()).toMatchObject({ error: 'weak_password', reasons: [{ code: 'contains_context' }] });
  });

  it('clears mustChangePassword, which until then blocks every other API with 403', async () => {
    await addUser(ctx, { username: 'admin', role: 'system-admin' }, { mustChangePassword: true });
    const cookie = await signIn(ctx, 'admin');
    const blocked = await ctx.app.inject({ method: 'GET', url: '/api/users', headers: { cookie } });
    expect(blocked.statusCode).toBe(403);
    expect(blocked.json().error).toBe('password_change_required');
    expect((await ctx.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie } })).json().user.mustChangePassword).toBe(true);
    const change = await ctx.app.inject({ method: 'POST', url: '/api/auth/change-password', headers: { cookie }, payload: { currentPassword: STRONG_PASSWORD, newPassword: OTHER_STRONG_PASSWORD } });
    expect(change.statusCode).toBe(204);
    expect((await ctx.app.inject({ method: 'GET', url: '/api/users', headers: { cookie: sessionCookie(change) } })).statusCode).toBe(200);
  });
});

describe('HTTP hygiene', () => {
  it('answers 405 with Allow for a known path and another method, 404 for unknown paths', async () => {
    const res = await ctx.app.inject({ method: 'PUT', url: '/api/auth/login' });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('POST');
    expect(res.json().error).toBe('method_not_allowed');
    const missing = await ctx.app.inject({ method: 'GET', url: '/api/nothing-here' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toBe('not_found');
  });

  it('sends security headers and no-store on the API', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/api/auth/me' });
    expect(res.headers['content-security-policy']).toContain("default-src 'self'");
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['strict-transport-security']).toBeUndefined();
  });

  it('serves an OpenAPI document listing the routes', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/api/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(Object.keys(res.json().paths)).toEqual(expect.arrayContaining(['/api/auth/login', '/api/users', '/api/users/{id}']));
  });

  it('healthz and readyz answer 200 on a migrated database', async () => {
    expect((await ctx.app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
    expect((await ctx.app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
  });
});

describe('logs', () => {
  it('never hold a password, a session token or a cookie, even when the logger is asked for everything', async () => {
    await addUser(ctx, { username: 'bob' });
    ctx.deps.logger.level = 'trace';
    await ctx.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login: 'bob', password: 'wrong but secret-ish value' } });
    const cookie = await signIn(ctx, 'bob');
    await ctx.app.inject({ method: 'POST', url: '/api/auth/change-password', headers: { cookie }, payload: { currentPassword: STRONG_PASSWORD, newPassword: OTHER_STRONG_PASSWORD } });
    ctx.deps.logger.info({ password: 'p1', token: 't1', user: { password: 'p2', secret: 's2' }, req: { headers: { cookie: 'c1' } } }, 'probe');
    const text = ctx.logs.join('');
    expect(text).toContain('probe');
    for (const secret of ['wrong but secret-ish value', STRONG_PASSWORD, OTHER_STRONG_PASSWORD, cookie.split('=')[1]!, '"p1"', '"t1"', '"p2"', '"s2"', '"c1"']) {
      expect(text).not.toContain(secret);
    }
  });
});

describe('GET /api/auth/password-policy', () => {
  it('tells anyone the configured length limits', async () => {
    const res = await ctx.app.inject({ method: 'GET', url: '/api/auth/password-policy' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ minLength: 15, maxLength: 128 });
  });
});

describe('login throttling', () => {
  const attempt = (login: string, password = 'not the password at all') =>
    ctx.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login, password } });

  it('answers 429 with a growing Retry-After after five failures, the same for known and unknown accounts', async () => {
    await addUser(ctx, { username: 'bob' });
    for (const login of ['bob', 'nobody-here']) {
      for (let i = 0; i < 5; i++) expect((await attempt(login)).statusCode).toBe(401);
      const first = await attempt(login);
      expect(first.statusCode).toBe(429);
      expect(first.headers['retry-after']).toBe('1');
      expect(first.json().error).toBe('rate_limited');
      ctx.clock.advanceSeconds(1);
      expect((await attempt(login)).statusCode).toBe(401);
      const second = await attempt(login);
      expect(second.headers['retry-after']).toBe('2');
    }
  });

  it('does not stop the right password once the wait is over, and forgets the failures after it', async () => {
    await addUser(ctx, { username: 'bob' });
    for (let i = 0; i < 5; i++) await attempt('bob');
    expect((await attempt('bob', STRONG_PASSWORD)).statusCode).toBe(429);
    ctx.clock.advanceSeconds(1);
    expect((await attempt('bob', STRONG_PASSWORD)).statusCode).toBe(200);
    expect((await attempt('bob')).statusCode).toBe(401);
  });

  it('a throttled login does not stop forgot-password', async () => {
    await addUser(ctx, { username: 'bob', email: 'bob@example.com' });
    for (let i = 0; i < 6; i++) await attempt('bob@example.com');
    expect((await attempt('bob@example.com')).statusCode).toBe(429);
    const forgot = await ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: 'bob@example.com' } });
    expect(forgot.statusCode).toBe(202);
    await ctx.outbox.drain();
    expect(ctx.mailer.sent.map((m) => m.to)).toEqual(['bob@example.com']);
  });
});
