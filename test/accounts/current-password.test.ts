import { afterEach, describe, expect, it } from 'vitest';
import { createArgon2Hasher } from '../../src/accounts/passwords.js';
import { MAX_CURRENT_PASSWORD_FAILURES } from '../../src/accounts/reauth.js';
import { listAudit } from '../../src/audit/audit.js';
import { addUser, makeTestApp, signIn, OTHER_STRONG_PASSWORD, STRONG_PASSWORD, type TestContext } from '../helpers/app.js';
import { fakeHasher } from '../security/abuse-helpers.js';

let ctx: TestContext;
afterEach(async () => {
  await ctx?.close();
});

const change = (cookie: string, currentPassword: string, newPassword = OTHER_STRONG_PASSWORD) =>
  ctx.app.inject({ method: 'POST', url: '/api/auth/change-password', headers: { cookie }, payload: { currentPassword, newPassword } });
const me = (cookie: string) => ctx.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie } });

describe('change-password guesses', () => {
  it('get the sign-in wait keyed by the account, are audited one by one, and the tenth miss in a row ends the session', async () => {
    ctx = await makeTestApp({ deps: { hasher: fakeHasher() } });
    const bob = await addUser(ctx, { username: 'bob' });
    const cookie = await signIn(ctx, 'bob');
    const other = await signIn(ctx, 'bob');
    const answers: string[] = [];
    let misses = 0;
    while (misses < MAX_CURRENT_PASSWORD_FAILURES) {
      const res = await change(cookie, 'not my password at all');
      answers.push(`${res.statusCode}${res.headers['retry-after'] ? `:${res.headers['retry-after']}` : ''}`);
      if (res.statusCode === 429) {
        // The wait is the account's, not the session's: another session of bob waits too.
        expect((await change(other, 'not my password either')).statusCode).toBe(429);
        ctx.clock.advanceSeconds(Number(res.headers['retry-after']));
        continue;
      }
      misses++;
    }
    expect(answers).toEqual(['400', '400', '400', '400', '400', '429:1', '400', '429:2', '400', '429:4', '400', '429:8', '400', '429:16', '401']);
    expect((await me(cookie)).statusCode).toBe(401);
    const audit = (await listAudit(ctx.db, { limit: 100 })).filter((e) => e.type === 'password_check_failed').reverse();
    expect(audit.map((e) => e.detail?.failures)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(audit.at(-1)).toMatchObject({ actor: { id: bob.id }, outcome: 'failure', detail: { sessionEnded: true } });
    expect(audit.slice(0, -1).every((e) => e.detail?.sessionEnded === undefined)).toBe(true);
  });

  it('forgets the misses after the right password', async () => {
    ctx = await makeTestApp({ deps: { hasher: fakeHasher() } });
    await addUser(ctx, { username: 'bob' });
    const cookie = await signIn(ctx, 'bob');
    for (let i = 0; i < 4; i++) expect((await change(cookie, 'wrong')).statusCode).toBe(400);
    const ok = await change(cookie, STRONG_PASSWORD);
    expect(ok.statusCode).toBe(204);
    const rotated = ok.cookies.find((c) => c.name === 'gatehouse_session')!;
    for (let i = 0; i < 5; i++) expect((await change(`gatehouse_session=${rotated.value}`, 'wrong')).statusCode).toBe(400);
  });

  it('checks one guess of an account at a time: the rest of a parallel burst is refused without a hash', async () => {
    let verifies = 0;
    const real = createArgon2Hasher();
    ctx = await makeTestApp({ deps: { hasher: { hash: (p) => real.hash(p), verify: (h, p) => (verifies++, real.verify(h, p)) } } });
    await addUser(ctx, { username: 'bob' });
    const cookie = await signIn(ctx, 'bob');
    verifies = 0;
    const answers = await Promise.all(Array.from({ length: 32 }, () => change(cookie, 'a wrong guess')));
    const counts = answers.reduce<Record<number, number>>((acc, r) => ({ ...acc, [r.statusCode]: (acc[r.statusCode] ?? 0) + 1 }), {});
    expect(counts).toEqual({ 400: 1, 429: 31 });
    expect(verifies).toBe(1);
  });
});

describe('a full hash queue', () => {
  it('answers sign-in with 503 overloaded and Retry-After instead of queueing', async () => {
    ctx = await makeTestApp({ deps: { hasher: createArgon2Hasher({ concurrency: 1, maxQueued: 1 }) } });
    await addUser(ctx, { username: 'bob' });
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => ctx.app.inject({ method: 'POST', url: '/api/auth/login', remoteAddress: `10.0.0.${i + 1}`, payload: { login: `someone-${i}`, password: 'a guess' } })),
    );
    const busy = answers.filter((r) => r.statusCode === 503);
    expect(busy.length).toBeGreaterThanOrEqual(1);
    expect(answers.filter((r) => r.statusCode === 401).length).toBeGreaterThanOrEqual(2);
    expect(answers.every((r) => r.statusCode === 401 || r.statusCode === 503)).toBe(true);
    for (const r of busy) {
      expect(r.json()).toEqual({ error: 'overloaded', message: expect.any(String) });
      expect(Number(r.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    }
  });
});
