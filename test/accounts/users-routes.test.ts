import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addUser, makeTestApp, signIn, STRONG_PASSWORD, type TestContext } from '../helpers/app.js';

let ctx: TestContext;
let admin: string;
let adminId: string;
beforeEach(async () => {
  ctx = await makeTestApp();
  adminId = (await addUser(ctx, { username: 'root', email: 'root@example.com', role: 'system-admin' })).id;
  admin = await signIn(ctx, 'root');
});
afterEach(async () => {
  await ctx.close();
});

const call = (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, cookie?: string, payload?: unknown) =>
  ctx.app.inject({ method, url, headers: cookie ? { cookie } : {}, ...(payload === undefined ? {} : { payload: payload as object }) });

describe('users admin API', () => {
  it('answers 401 without a session and 403 to a plain user, on every admin route', async () => {
    await addUser(ctx, { username: 'plain' });
    const plain = await signIn(ctx, 'plain');
    const routes: [Parameters<typeof call>[0], string, unknown?][] = [
      ['GET', '/api/users'],
      ['POST', '/api/users', { name: 'X', role: 'user', username: 'x' }],
      ['PATCH', `/api/users/${adminId}`, { name: 'Y' }],
      ['DELETE', `/api/users/${adminId}`],
      ['GET', '/api/audit'],
    ];
    for (const [method, url, body] of routes) {
      const anon = await call(method, url, undefined, body);
      expect(anon.statusCode, `${method} ${url}`).toBe(401);
      expect(anon.json().error).toBe('unauthenticated');
      const user = await call(method, url, plain, body);
      expect(user.statusCode, `${method} ${url}`).toBe(403);
      expect(user.json().error).toBe('forbidden');
    }
    expect((await call('GET', '/api/users', admin)).json().users).toHaveLength(2);
  });

  it('creates a user who can then sign in, and audits it', async () => {
    const res = await call('POST', '/api/users', admin, { email: 'Ann@Example.com', name: ' Ann ', role: 'user', password: STRONG_PASSWORD });
    expect(res.statusCode).toBe(201);
    expect(res.json().user).toMatchObject({ email: 'Ann@Example.com', username: null, name: 'Ann', role: 'user', disabled: false });
    await signIn(ctx, 'ann@example.com');
    const audit = await call('GET', '/api/audit', admin);
    expect(audit.json().events.map((e: { type: string }) => e.type)).toContain('user_created');
  });

  it('refuses duplicates with 409 email_taken / username_taken, whatever the case', async () => {
    const dupEmail = await call('POST', '/api/users', admin, { email: 'ROOT@example.com', name: 'R', role: 'user' });
    expect(dupEmail.statusCode).toBe(409);
    expect(dupEmail.json().error).toBe('email_taken');
    const dupUser = await call('POST', '/api/users', admin, { username: 'Root', name: 'R', role: 'user', password: STRONG_PASSWORD });
    expect(dupUser.statusCode).toBe(409);
    expect(dupUser.json().error).toBe('username_taken');
  });

  it('gives field errors for bad input and writes nothing', async () => {
    const cases = [
      { name: 'A', role: 'user' },
      { email: 'a@b.com, c@d.com', name: 'A', role: 'user' },
      { email: 'Bob <bob@example.com>', name: 'A', role: 'user' },
      { username: 'has space', name: 'A', role: 'user' },
      { username: 'ok', name: '   ', role: 'user' },
      { username: 'ok', name: 'A', role: 'owner' },
      { username: 'ok', name: 'A', role: 'user', password: 'short' },
      { username: ['ok'], name: 'A', role: 'user' },
    ];
    for (const body of cases) {
      const res = await call('POST', '/api/users', admin, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(['invalid_request', 'weak_password']).toContain(res.json().error);
    }
    expect((await call('GET', '/api/users', admin)).json().users).toHaveLength(1);
  });

  it('edits name, email, role and disabled; disabling signs the user out', async () => {
    const ann = await addUser(ctx, { username: 'ann' });
    const annCookie = await signIn(ctx, 'ann');
    const res = await call('PATCH', `/api/users/${ann.id}`, admin, { name: 'Ann B', email: 'ann@example.org', role: 'system-admin' });
    expect(res.statusCode).toBe(200);
    expect(res.json().user).toMatchObject({ name: 'Ann B', email: 'ann@example.org', role: 'system-admin' });
    const off = await call('PATCH', `/api/users/${ann.id}`, admin, { disabled: true });
    expect(off.json().user.disabled).toBe(true);
    expect((await call('GET', '/api/auth/me', annCookie)).statusCode).toBe(401);
    const login = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login: 'ann', password: STRONG_PASSWORD } });
    expect(login.statusCode).toBe(401);
  });

  it('refuses to remove, disable or demote yourself, the last enabled system admin, with 409 and a code of its own (self-protection.test.ts)', async () => {
    for (const [method, body, code] of [['PATCH', { role: 'user' }, 'cannot_demote_self'], ['PATCH', { disabled: true }, 'cannot_disable_self'], ['DELETE', undefined, 'cannot_delete_self']] as const) {
      const res = await call(method, `/api/users/${adminId}`, admin, body);
      expect(res.statusCode).toBe(409);
      expect(res.json().error).toBe(code);
    }
    const other = await addUser(ctx, { username: 'second', role: 'system-admin' });
    expect((await call('PATCH', `/api/users/${other.id}`, admin, { role: 'user' })).statusCode).toBe(200);
  });

  it('removes the last email of a user without a username only with a field error', async () => {
    const ann = await addUser(ctx, { email: 'ann@example.com' });
    const res = await call('PATCH', `/api/users/${ann.id}`, admin, { email: null });
    expect(res.statusCode).toBe(400);
    expect(res.json().fields).toHaveProperty('email');
  });

  it('deletes a user and answers 404 for unknown ids', async () => {
    const ann = await addUser(ctx, { username: 'ann' });
    expect((await call('DELETE', `/api/users/${ann.id}`, admin)).statusCode).toBe(204);
    const again = await call('DELETE', `/api/users/${ann.id}`, admin);
    expect(again.statusCode).toBe(404);
    expect(again.json().error).toBe('not_found');
    expect((await call('PATCH', '/api/users/nope', admin, { name: 'x' })).statusCode).toBe(404);
  });

  it('pages the audit log newest first', async () => {
    for (let i = 0; i < 5; i++) await call('POST', '/api/users', admin, { username: `u${i}`, name: `U${i}`, role: 'user', password: STRONG_PASSWORD });
    const first = (await call('GET', '/api/audit?limit=2', admin)).json().events;
    expect(first).toHaveLength(2);
    expect(first[0].id).toBeGreaterThan(first[1].id);
    const next = (await call('GET', `/api/audit?limit=2&before=${first[1].id}`, admin)).json().events;
    expect(next[0].id).toBeLessThan(first[1].id);
    expect((await call('GET', '/api/audit?limit=abc', admin)).statusCode).toBe(400);
  });
});

describe('access before validation', () => {
  it('answers 401 to an anonymous caller and 403 to a plain user before judging the body', async () => {
    await addUser(ctx, { username: 'plain' });
    const plain = await signIn(ctx, 'plain');
    const bad = { email: ['x'], name: 42, role: 'owner', extra: true };
    expect((await call('POST', '/api/users', undefined, bad)).statusCode).toBe(401);
    expect((await call('POST', '/api/users', plain, bad)).statusCode).toBe(403);
    expect((await call('POST', '/api/users', admin, bad)).statusCode).toBe(400);
  });
});
