import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import { createDb, type Db } from '../../src/db/index.js';
import type { AppDeps } from '../../src/deps.js';
import { createMemoryRateLimiter, type RateLimiter } from '../../src/limits/rate-limiter.js';
import { createRedisRateLimiter, type RedisRateLimiter } from '../../src/limits/redis-rate-limiter.js';
import { createLogger } from '../../src/logger.js';
import { createRuntime, type Runtime } from '../../src/runtime.js';
import { FORGOT_PASSWORD_ACCEPTED } from '../../src/recovery/routes.js';
import { addUser, makeTestApp, STRONG_PASSWORD, type TestContext } from '../helpers/app.js';
import { deleteRedisKeys, fakeHasher, REDIS_URL, redisOrSkip, requestWhileOverloaded, spyLimiter, uniqueRedisPrefix } from './abuse-helpers.js';

// DESIGN §2 "Rate limits" and issue 4 item 2: every limit, the keys it counts by, and the ways a
// client could try to dodge it (path spellings, forwarded-for headers, a second instance).

const PUBLIC_URL = 'https://dash.example.com';
const WRONG = 'not the password at all';
const NEW_PASSWORD = 'a completely new passphrase';

const opened: TestContext[] = [];
afterEach(async () => {
  for (const ctx of opened.splice(0)) await ctx.close();
});

async function app(options: { env?: Record<string, string>; deps?: Partial<AppDeps>; db?: Db } = {}): Promise<TestContext> {
  const ctx = await makeTestApp({
    env: { PUBLIC_URL, ...options.env },
    deps: { hasher: fakeHasher(), ...options.deps },
    ...(options.db ? { db: options.db } : {}),
  });
  opened.push(ctx);
  return ctx;
}

interface Send {
  ip?: string;
  headers?: Record<string, string>;
  url?: string;
}

const login = (ctx: TestContext, body: { login: string; password?: string }, o: Send = {}): Promise<LightMyRequestResponse> =>
  ctx.app.inject({
    method: 'POST',
    url: o.url ?? '/api/auth/login',
    remoteAddress: o.ip ?? '203.0.113.1',
    headers: o.headers ?? {},
    payload: { login: body.login, password: body.password ?? WRONG },
  });

const forgot = (ctx: TestContext, email: string, o: Send = {}): Promise<LightMyRequestResponse> =>
  ctx.app.inject({ method: 'POST', url: o.url ?? '/api/auth/forgot-password', remoteAddress: o.ip ?? '203.0.113.1', headers: o.headers ?? {}, payload: { email } });

const verify = (ctx: TestContext, token: string, o: Send = {}): Promise<LightMyRequestResponse> =>
  ctx.app.inject({ method: 'POST', url: o.url ?? '/api/auth/reset-password/verify', remoteAddress: o.ip ?? '203.0.113.1', payload: { token } });

const reset = (ctx: TestContext, token: string, o: Send = {}): Promise<LightMyRequestResponse> =>
  ctx.app.inject({
    method: 'POST',
    url: o.url ?? '/api/auth/reset-password',
    remoteAddress: o.ip ?? '203.0.113.1',
    payload: { token, password: NEW_PASSWORD, confirmPassword: NEW_PASSWORD },
  });

/** A well-formed token that was never issued. */
const UNKNOWN_TOKEN = 'A'.repeat(43);

function expectRateLimited(res: LightMyRequestResponse, maxSeconds: number): number {
  expect(res.statusCode, res.body).toBe(429);
  expect(res.json()).toEqual({ error: 'rate_limited', message: expect.any(String) });
  const retryAfter = Number(res.headers['retry-after']);
  expect(Number.isInteger(retryAfter)).toBe(true);
  expect(retryAfter).toBeGreaterThanOrEqual(1);
  expect(retryAfter).toBeLessThanOrEqual(maxSeconds);
  return retryAfter;
}

function expectAccepted(res: LightMyRequestResponse): void {
  expect(res.statusCode, res.body).toBe(202);
  expect(res.json()).toEqual(FORGOT_PASSWORD_ACCEPTED);
}

async function outboxRows(ctx: TestContext): Promise<number> {
  const row = await ctx.db.selectFrom('mail_outbox').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

/** Where the worker sent mail so far, sorted: one drain sends a batch concurrently, in no fixed order. */
async function sentTo(ctx: TestContext): Promise<string[]> {
  await ctx.outbox.drain();
  return ctx.mailer.sent.map((m) => m.to).sort();
}

async function addUsers(ctx: TestContext, n: number, prefix = 'user'): Promise<string[]> {
  const emails: string[] = [];
  for (let i = 0; i < n; i++) {
    const email = `${prefix}${i}@example.com`;
    await addUser(ctx, { email });
    emails.push(email);
  }
  return emails;
}

/** Signs in, waiting out any Retry-After on the fake clock; returns the first non-429 answer. */
async function loginAfterWaiting(ctx: TestContext, clock: FakeClock, body: { login: string; password?: string }): Promise<{ res: LightMyRequestResponse; waitedSeconds: number }> {
  let waitedSeconds = 0;
  for (;;) {
    const res = await login(ctx, body);
    if (res.statusCode !== 429) return { res, waitedSeconds };
    const wait = Number(res.headers['retry-after']);
    waitedSeconds += wait;
    clock.advanceSeconds(wait);
  }
}

// The spellings a client might try to land on the same handler with a fresh counter.
const PATH_VARIANTS = (path: string): string[] => {
  const [, first, ...rest] = path.split('/');
  const tail = rest.join('/');
  return [
    `${path}/`,
    `/${path}`,
    `${path}//`,
    `/${first}//${tail}`,
    `${path}?x=1`,
    `${path}?`,
    `${path}/?a=b`,
    path.toUpperCase(),
    `/${first!.toUpperCase()}/${tail}`,
    `${path.slice(0, -1)}${path.at(-1)!.toUpperCase()}`,
    `${path.slice(0, -1)}%${path.charCodeAt(path.length - 1).toString(16)}`,
    `/${first}/./${tail}`,
    `/${first}/x/../${tail}`,
    `${path};x=1`,
    `${path}%2F`,
    `${path}%20`,
  ];
};

describe('forgot-password limits (always 202, over the limit nothing is sent)', () => {
  it('per IP: the eleventh request from one IP in a minute gets the same 202 and sends nothing', async () => {
    const ctx = await app();
    const emails = await addUsers(ctx, 12);
    for (const email of emails.slice(0, 10)) expectAccepted(await forgot(ctx, email, { ip: '198.51.100.1' }));
    const rowsBefore = await outboxRows(ctx);
    expectAccepted(await forgot(ctx, emails[10]!, { ip: '198.51.100.1' }));
    expect(await outboxRows(ctx)).toBe(rowsBefore);
    expect(await sentTo(ctx)).toEqual(emails.slice(0, 10).sort());

    // Another client is not held back, and the first one may ask again once the minute is over.
    expectAccepted(await forgot(ctx, emails[11]!, { ip: '198.51.100.2' }));
    expect(await sentTo(ctx)).toEqual([...emails.slice(0, 10), emails[11]!].sort());
    ctx.clock.advanceSeconds(60);
    expectAccepted(await forgot(ctx, emails[10]!, { ip: '198.51.100.1' }));
    expect(await sentTo(ctx)).toEqual([...emails].sort());
  });

  it('per normalised address: the fourth request in an hour, from any IP and in any spelling, sends nothing', async () => {
    const ctx = await app();
    await addUser(ctx, { email: 'Jane.Doe@Example.com' });
    const spellings = ['jane.doe@example.com', '  JANE.DOE@EXAMPLE.COM  ', 'Ｊａｎｅ.Ｄｏｅ@Ｅｘａｍｐｌｅ.ｃｏｍ', ' jane.DOE@example.com\u00a0'];
    for (const [i, email] of spellings.entries()) expectAccepted(await forgot(ctx, email, { ip: `198.51.100.${i + 1}` }));
    // Three sends, all to the address as stored: the fourth spelling hit the same counter.
    expect(await sentTo(ctx)).toEqual(['Jane.Doe@Example.com', 'Jane.Doe@Example.com', 'Jane.Doe@Example.com']);
    ctx.clock.advanceSeconds(3599);
    expectAccepted(await forgot(ctx, 'jane.doe@example.com', { ip: '198.51.100.9' }));
    expect(await sentTo(ctx)).toHaveLength(3);
    ctx.clock.advanceSeconds(1);
    expectAccepted(await forgot(ctx, 'jane.doe@example.com', { ip: '198.51.100.9' }));
    expect(await sentTo(ctx)).toHaveLength(4);
  });

  it('keys and counts unknown addresses exactly like known ones, in every spelling', async () => {
    const trace = async (stored: boolean, spellings: string[]): Promise<unknown[]> => {
      const limiter = spyLimiter(createMemoryRateLimiter(new FakeClock('2026-03-01T12:00:00.000Z')));
      const ctx = await app({ deps: { limiter } });
      if (stored) await addUser(ctx, { email: spellings[0]! });
      const answers: string[] = [];
      for (const email of spellings) {
        const res = await forgot(ctx, email, { ip: '198.51.100.7' });
        answers.push(`${res.statusCode} ${res.body}`);
      }
      const keys = new Set(limiter.calls.map((c) => c.key));
      const calls = limiter.calls.map((c) => ({ ...c, key: c.key.replace(/^(forgot:address:).*$/, '$1<address>') }));
      return [answers, calls, keys.size];
    };
    const known = await trace(true, ['Jane.Doe@Example.com', 'jane.doe@example.com', ' JANE.DOE@EXAMPLE.COM ', 'Ｊａｎｅ.Ｄｏｅ@example.com', 'jane.doe@example.com']);
    const unknown = await trace(false, ['Nobo.Dee@Example.com', 'nobo.dee@example.com', ' NOBO.DEE@EXAMPLE.COM ', 'Ｎｏｂｏ.Ｄｅｅ@example.com', 'nobo.dee@example.com']);
    // Same calls, same answers, and one address key per account however it was spelled.
    expect(unknown).toEqual(known);
    expect(known[2]).toBe(2);

    // Only what the client sent makes a key: its IP and the normalised address, never an account.
    const limiter = spyLimiter(createMemoryRateLimiter(new FakeClock()));
    const ctx = await app({ deps: { limiter } });
    const user = await addUser(ctx, { email: 'Jane.Doe@Example.com' });
    for (const email of ['Jane.Doe@Example.com', ' JANE.DOE@EXAMPLE.COM ', 'Ｊａｎｅ.Ｄｏｅ@Ｅｘａｍｐｌｅ.ｃｏｍ', 'nobody@example.com']) await forgot(ctx, email, { ip: '198.51.100.7' });
    expect([...new Set(limiter.calls.map((c) => c.key))].sort()).toEqual(['forgot:address:jane.doe@example.com', 'forgot:address:nobody@example.com', 'forgot:ip:198.51.100.7']);
    expect(limiter.calls.every((c) => !c.key.includes(user.id))).toBe(true);
  });
});

describe('verify and reset limits', () => {
  it('counts verify and reset together per IP: the eleventh attempt in a minute is 429 rate_limited with Retry-After', async () => {
    const ctx = await app();
    for (let i = 0; i < 10; i++) {
      const res = i % 2 === 0 ? await verify(ctx, UNKNOWN_TOKEN) : await reset(ctx, UNKNOWN_TOKEN);
      expect(res.json().error).toBe('invalid_or_expired_token');
    }
    expectRateLimited(await verify(ctx, UNKNOWN_TOKEN), 60);
    expectRateLimited(await reset(ctx, UNKNOWN_TOKEN), 60);
    expect((await verify(ctx, UNKNOWN_TOKEN, { ip: '203.0.113.2' })).statusCode).toBe(400);
    ctx.clock.advanceSeconds(60);
    expect((await reset(ctx, UNKNOWN_TOKEN)).statusCode).toBe(400);
  });

  it('refuses even a valid token while the IP is throttled, and keeps it usable for later', async () => {
    const ctx = await app();
    await addUser(ctx, { email: 'jane@example.com' });
    await forgot(ctx, 'jane@example.com', { ip: '198.51.100.1' });
    await ctx.outbox.drain();
    const token = /#token=([A-Za-z0-9_-]{43})/.exec(ctx.mailer.sent[0]!.text)![1]!;
    for (let i = 0; i < 10; i++) await verify(ctx, UNKNOWN_TOKEN);
    expectRateLimited(await verify(ctx, token), 60);
    expectRateLimited(await reset(ctx, token), 60);
    ctx.clock.advanceSeconds(60);
    expect((await reset(ctx, token)).statusCode).toBe(204);
  });
});

describe('sign-in limits', () => {
  it('per IP: the 31st attempt in a minute is 429, even with the right password; other IPs are not held back', async () => {
    const ctx = await app();
    await addUser(ctx, { email: 'jane@example.com' });
    for (let i = 0; i < 30; i++) expect((await login(ctx, { login: `nobody${i}@example.com` })).statusCode).toBe(401);
    expectRateLimited(await login(ctx, { login: 'jane@example.com', password: STRONG_PASSWORD }), 60);
    expect((await login(ctx, { login: 'jane@example.com', password: STRONG_PASSWORD }, { ip: '203.0.113.99' })).statusCode).toBe(200);
  });

  it('per login: Retry-After grows 1, 2, 4, 8, 16 s after the fifth failure, identically for known and unknown accounts', async () => {
    const trace = async (name: string, known: boolean): Promise<string[]> => {
      const ctx = await app();
      if (known) await addUser(ctx, { email: `${name}@example.com` });
      const seen: string[] = [];
      for (let i = 0; i < 5; i++) seen.push(String((await login(ctx, { login: `${name}@example.com` })).statusCode));
      for (let round = 0; round < 5; round++) {
        const refused = await login(ctx, { login: `${name}@example.com`, password: known ? STRONG_PASSWORD : WRONG });
        const wait = expectRateLimited(refused, 900);
        seen.push(`${refused.statusCode} retry-after=${wait} ${refused.body}`);
        ctx.clock.advanceSeconds(wait - 1);
        seen.push(String((await login(ctx, { login: `${name}@example.com` })).statusCode));
        ctx.clock.advanceSeconds(1);
        seen.push(String((await login(ctx, { login: `${name}@example.com` })).statusCode));
      }
      return seen;
    };
    const known = await trace('jane', true);
    expect(known.filter((s) => s.startsWith('429 retry-after')).map((s) => s.split(' ')[1])).toEqual(
      ['retry-after=1', 'retry-after=2', 'retry-after=4', 'retry-after=8', 'retry-after=16'],
    );
    expect(await trace('nobody', false)).toEqual(known);
  });

  it('counts every spelling of one login against one counter, known or unknown', async () => {
    for (const [stored, spellings] of [
      [true, ['jane.doe@example.com', 'JANE.DOE@EXAMPLE.COM', ' Jane.Doe@Example.com ', 'Ｊａｎｅ.Ｄｏｅ@example.com', 'jane.doe@ＥＸＡＭＰＬＥ.com', 'Jane.Doe@Example.com']],
      [false, ['no.body@example.com', 'NO.BODY@EXAMPLE.COM', ' No.Body@Example.com ', 'Ｎｏ.Ｂｏｄｙ@example.com', 'no.body@ＥＸＡＭＰＬＥ.com', 'No.Body@Example.com']],
    ] as const) {
      const ctx = await app();
      if (stored) await addUser(ctx, { email: 'Jane.Doe@Example.com' });
      for (const spelling of spellings.slice(0, 5)) expect((await login(ctx, { login: spelling })).statusCode).toBe(401);
      expectRateLimited(await login(ctx, { login: spellings[5]!, password: STRONG_PASSWORD }), 1);
    }
  });

  async function resetBy(ctx: TestContext, email: string): Promise<void> {
    expectAccepted(await forgot(ctx, email, { ip: '198.51.100.1' }));
    await ctx.outbox.drain();
    const token = /#token=([A-Za-z0-9_-]{43})/.exec(ctx.mailer.sent.at(-1)!.text)![1]!;
    expect((await reset(ctx, token, { ip: '198.51.100.1' })).statusCode).toBe(204);
  }

  it('after 100 consecutive failures the account signs in only after a reset', async () => {
    const ctx = await app();
    await addUser(ctx, { email: 'jane@example.com' });
    for (let i = 0; i < 100; i++) expect((await loginAfterWaiting(ctx, ctx.clock, { login: 'jane@example.com' })).res.statusCode).toBe(401);
    // The right password no longer works from a browser that never signed in, however long one
    // waits; the lock says so, in the words every locked login gets, known or not.
    const locked = await loginAfterWaiting(ctx, ctx.clock, { login: 'jane@example.com', password: STRONG_PASSWORD });
    expect(locked.res.statusCode).toBe(403);
    expect(locked.res.json().error).toBe('sign_in_locked');
    ctx.clock.advanceSeconds(86_400 * 2);
    expect((await loginAfterWaiting(ctx, ctx.clock, { login: 'jane@example.com', password: STRONG_PASSWORD })).res.statusCode).toBe(403);

    await resetBy(ctx, 'jane@example.com');
    expect((await loginAfterWaiting(ctx, ctx.clock, { login: 'jane@example.com', password: NEW_PASSWORD })).res.statusCode).toBe(200);
  });

  it('a completed reset lifts the sign-in wait: the new password works at once', async () => {
    // Only the per-login wait is under test here.
    const ctx = await app({ env: { LIMIT_LOGIN_PER_IP_PER_MINUTE: '0' } });
    await addUser(ctx, { email: 'jane@example.com', username: 'jane' });
    for (let i = 0; i < 12; i++) await loginAfterWaiting(ctx, ctx.clock, { login: 'jane@example.com' });
    for (let i = 0; i < 12; i++) await loginAfterWaiting(ctx, ctx.clock, { login: 'jane' });
    expect((await login(ctx, { login: 'jane@example.com', password: STRONG_PASSWORD })).statusCode).toBe(429);
    await resetBy(ctx, 'jane@example.com');
    // The reset proved control of the mailbox; the page sends the user to sign in a few seconds later.
    const answer = async (loginName: string): Promise<string> => {
      const res = await login(ctx, { login: loginName, password: NEW_PASSWORD });
      return res.statusCode === 429 ? `429, wait ${res.headers['retry-after']} s` : String(res.statusCode);
    };
    expect({ byEmail: await answer('jane@example.com'), byUsername: await answer('jane') }).toEqual({ byEmail: '200', byUsername: '200' });
  });

  it('a throttled login, per IP or per account, does not stop forgot-password', async () => {
    const ctx = await app();
    await addUser(ctx, { email: 'jane@example.com' });
    for (let i = 0; i < 30; i++) await login(ctx, { login: 'jane@example.com' });
    expect((await login(ctx, { login: 'jane@example.com' })).statusCode).toBe(429);
    expect((await login(ctx, { login: 'jane@example.com' }, { ip: '203.0.113.77' })).statusCode).toBe(429);
    expectAccepted(await forgot(ctx, 'jane@example.com'));
    expect(await sentTo(ctx)).toEqual(['jane@example.com']);
  });

  it('keys sign-in by IP and by what was typed, never by account', async () => {
    const limiter = spyLimiter(createMemoryRateLimiter(new FakeClock()));
    const ctx = await app({ deps: { limiter } });
    const user = await addUser(ctx, { email: 'Jane.Doe@Example.com', username: 'jane' });
    await login(ctx, { login: ' JANE.DOE@example.com ' });
    await login(ctx, { login: 'JANE' });
    await login(ctx, { login: 'nobody@example.com' });
    expect([...new Set(limiter.calls.map((c) => c.key))].sort()).toEqual(
      ['login:ip:203.0.113.1', 'login:jane', 'login:jane.doe@example.com', 'login:nobody@example.com'].sort(),
    );
    expect(limiter.calls.every((c) => !c.key.includes(user.id))).toBe(true);
  });
});

describe('path variants never dodge a limit', () => {
  it.each(PATH_VARIANTS('/api/auth/login'))('sign-in at %s counts against the same per-IP limit or reaches no handler', async (variant) => {
    const ctx = await app();
    const answers = new Set<number>();
    for (let i = 0; i < 30; i++) answers.add((await login(ctx, { login: `nobody${i}` }, { url: variant })).statusCode);
    expect([...answers].length, `mixed answers ${[...answers]}`).toBe(1);
    const [answer] = [...answers];
    if (answer === 404) {
      // Never reached a handler: a 404 from the router, not a sign-in answer.
      expect((await login(ctx, { login: 'x' }, { url: variant })).json().error).toBe('not_found');
      return;
    }
    expect(answer).toBe(401);
    expectRateLimited(await login(ctx, { login: 'nobody-canonical' }), 60);
    expectRateLimited(await login(ctx, { login: 'nobody-variant' }, { url: variant }), 60);
  });

  it.each(PATH_VARIANTS('/api/auth/forgot-password'))('forgot-password at %s counts against the same per-IP limit or reaches no handler', async (variant) => {
    const ctx = await app();
    const emails = await addUsers(ctx, 11);
    const first = await forgot(ctx, emails[0]!, { url: variant });
    if (first.statusCode === 404) {
      expect(first.json().error).toBe('not_found');
      expect(await outboxRows(ctx)).toBe(0);
      return;
    }
    expectAccepted(first);
    for (const email of emails.slice(1, 10)) expectAccepted(await forgot(ctx, email, { url: variant }));
    expectAccepted(await forgot(ctx, emails[10]!));
    expect(await sentTo(ctx)).toEqual(emails.slice(0, 10).sort());
  });

  const resetBody = { token: UNKNOWN_TOKEN, password: NEW_PASSWORD, confirmPassword: NEW_PASSWORD };
  it.each([
    ...PATH_VARIANTS('/api/auth/reset-password').map((url) => [url, resetBody] as const),
    ...PATH_VARIANTS('/api/auth/reset-password/verify').map((url) => [url, { token: UNKNOWN_TOKEN }] as const),
  ])('verify/reset at %s counts against the same per-IP limit or reaches no handler', async (variant, body) => {
    const ctx = await app();
    const send = (): Promise<LightMyRequestResponse> => ctx.app.inject({ method: 'POST', url: variant, remoteAddress: '203.0.113.1', payload: body });
    const first = await send();
    if (first.statusCode === 404) {
      expect(first.json().error).toBe('not_found');
      return;
    }
    expect(first.json().error).toBe('invalid_or_expired_token');
    for (let i = 0; i < 9; i++) expect((await send()).json().error).toBe('invalid_or_expired_token');
    expectRateLimited(await verify(ctx, UNKNOWN_TOKEN), 60);
    expectRateLimited(await send(), 60);
  });
});

describe('X-Forwarded-For is honoured only with TRUST_PROXY', () => {
  const spoofs = (i: number): Record<string, string> => ({
    'x-forwarded-for': `10.${i}.0.${i}`,
    'x-real-ip': `10.${i}.1.${i}`,
    forwarded: `for=10.${i}.2.${i}`,
    'true-client-ip': `10.${i}.3.${i}`,
    'cf-connecting-ip': `10.${i}.4.${i}`,
  });

  it('without TRUST_PROXY, spoofed forwarding headers all count against the socket address (sign-in)', async () => {
    const ctx = await app();
    for (let i = 0; i < 30; i++) expect((await login(ctx, { login: `nobody${i}` }, { ip: '198.51.100.5', headers: spoofs(i) })).statusCode).toBe(401);
    expectRateLimited(await login(ctx, { login: 'nobody-last' }, { ip: '198.51.100.5', headers: spoofs(99) }), 60);
  });

  it('without TRUST_PROXY, spoofed forwarding headers all count against the socket address (forgot-password)', async () => {
    const ctx = await app();
    const emails = await addUsers(ctx, 11);
    for (const [i, email] of emails.entries()) expectAccepted(await forgot(ctx, email, { ip: '198.51.100.5', headers: spoofs(i) }));
    expect(await sentTo(ctx)).toEqual(emails.slice(0, 10).sort());
  });

  it('without TRUST_PROXY, spoofed forwarding headers all count against the socket address (verify and reset)', async () => {
    const ctx = await app();
    for (let i = 0; i < 10; i++) {
      const res = await ctx.app.inject({ method: 'POST', url: '/api/auth/reset-password/verify', remoteAddress: '198.51.100.5', headers: spoofs(i), payload: { token: UNKNOWN_TOKEN } });
      expect(res.statusCode).toBe(400);
    }
    const last = await ctx.app.inject({ method: 'POST', url: '/api/auth/reset-password/verify', remoteAddress: '198.51.100.5', headers: spoofs(42), payload: { token: UNKNOWN_TOKEN } });
    expectRateLimited(last, 60);
  });

  it('with TRUST_PROXY=127.0.0.1, the proxy\'s X-Forwarded-For tells clients apart; other peers cannot use it', async () => {
    const ctx = await app({ env: { TRUST_PROXY: '127.0.0.1' } });
    for (let i = 0; i < 31; i++) {
      expect((await login(ctx, { login: `nobody${i}` }, { ip: '127.0.0.1', headers: { 'x-forwarded-for': `192.0.2.${i + 1}` } })).statusCode).toBe(401);
    }
    for (let i = 0; i < 30; i++) await login(ctx, { login: `again${i}` }, { ip: '127.0.0.1', headers: { 'x-forwarded-for': '192.0.2.200' } });
    expectRateLimited(await login(ctx, { login: 'again-last' }, { ip: '127.0.0.1', headers: { 'x-forwarded-for': '192.0.2.200' } }), 60);
    // A peer that is not the trusted proxy is counted by its socket address, whatever it claims.
    for (let i = 0; i < 30; i++) await login(ctx, { login: `direct${i}` }, { ip: '198.51.100.8', headers: { 'x-forwarded-for': `192.0.2.${i + 1}` } });
    expectRateLimited(await login(ctx, { login: 'direct-last' }, { ip: '198.51.100.8', headers: { 'x-forwarded-for': '192.0.2.250' } }), 60);
  });

  it('with TRUST_PROXY=127.0.0.1, forgot-password counts each forwarded client separately', async () => {
    const ctx = await app({ env: { TRUST_PROXY: '127.0.0.1' } });
    const emails = await addUsers(ctx, 11);
    for (const [i, email] of emails.entries()) expectAccepted(await forgot(ctx, email, { ip: '127.0.0.1', headers: { 'x-forwarded-for': `192.0.2.${i + 1}` } }));
    expect(await sentTo(ctx)).toEqual([...emails].sort());
  });

  it('with a hop count (TRUST_PROXY=1), the entry the proxy appended tells clients apart; entries a client prepends are ignored', async () => {
    const ctx = await app({ env: { TRUST_PROXY: '1' } });
    for (let i = 0; i < 30; i++) {
      await login(ctx, { login: `nobody${i}` }, { ip: '127.0.0.1', headers: { 'x-forwarded-for': `10.9.9.${i}, 192.0.2.50` } });
    }
    expectRateLimited(await login(ctx, { login: 'last' }, { ip: '127.0.0.1', headers: { 'x-forwarded-for': '10.9.9.99, 192.0.2.50' } }), 60);
    const other = await login(ctx, { login: 'other' }, { ip: '127.0.0.1', headers: { 'x-forwarded-for': '10.9.9.99, 192.0.2.51' } });
    expect(other.statusCode, 'another client behind the proxy was throttled: the hop count was not honoured').toBe(401);
  });
});

const haveRedis = await redisOrSkip('Redis-backed rate-limit tests (test/security/rate-limits.test.ts)');

describe.runIf(haveRedis)('with REDIS_URL, every instance shares the counters', () => {
  const prefixes: string[] = [];
  const limiters: RedisRateLimiter[] = [];
  const dbs: Db[] = [];
  afterEach(async () => {
    for (const ctx of opened.splice(0)) await ctx.close();
    for (const l of limiters.splice(0)) await l.close();
    for (const db of dbs.splice(0)) await db.destroy();
  });
  afterAll(async () => {
    for (const p of prefixes) await deleteRedisKeys(p);
  });

  /** Two app instances on one database, each with its own connection to one Redis. */
  async function twoInstances(): Promise<{ a: TestContext; b: TestContext; clock: FakeClock; sent: () => Promise<string[]> }> {
    const prefix = uniqueRedisPrefix();
    prefixes.push(prefix);
    const db = createDb({ kind: 'sqlite', file: ':memory:' });
    dbs.push(db);
    const clock = new FakeClock('2026-03-01T12:00:00.000Z');
    const make = async (): Promise<TestContext> => {
      const limiter = createRedisRateLimiter(REDIS_URL, { clock, logger: createLogger('silent'), prefix });
      limiters.push(limiter);
      return app({ db, deps: { clock, limiter } });
    };
    const a = await make();
    const b = await make();
    return {
      a,
      b,
      clock,
      async sent() {
        await a.outbox.drain();
        await b.outbox.drain();
        return [...a.mailer.sent, ...b.mailer.sent].map((m) => m.to);
      },
    };
  }

  it('shares the per-login failure count: failures on one instance throttle the other', async () => {
    const { a, b } = await twoInstances();
    await addUser(a, { email: 'jane@example.com' });
    for (const ctx of [a, b, a, b, a]) expect((await login(ctx, { login: 'jane@example.com' })).statusCode).toBe(401);
    expectRateLimited(await login(b, { login: 'jane@example.com', password: STRONG_PASSWORD }), 1);
    expectRateLimited(await login(a, { login: 'JANE@example.com', password: STRONG_PASSWORD }), 1);
  });

  it('shares the per-IP sign-in count', async () => {
    const { a, b } = await twoInstances();
    for (let i = 0; i < 30; i++) expect((await login(i % 2 ? a : b, { login: `nobody${i}` })).statusCode).toBe(401);
    expectRateLimited(await login(a, { login: 'nobody-a' }), 60);
    expectRateLimited(await login(b, { login: 'nobody-b' }), 60);
  });

  it('shares the forgot-password per-address and per-IP counts', async () => {
    const { a, b, sent } = await twoInstances();
    await addUser(a, { email: 'jane@example.com' });
    for (const ctx of [a, b, a, b]) expectAccepted(await forgot(ctx, 'jane@example.com', { ip: ctx === a ? '198.51.100.1' : '198.51.100.2' }));
    expect(await sent()).toEqual(['jane@example.com', 'jane@example.com', 'jane@example.com']);

    const emails = await addUsers(a, 11);
    for (const [i, email] of emails.entries()) expectAccepted(await forgot(i % 2 ? a : b, email, { ip: '198.51.100.30' }));
    expect((await sent()).filter((to) => to !== 'jane@example.com').sort()).toEqual(emails.slice(0, 10).sort());
  });

  it('shares the verify/reset per-IP count', async () => {
    const { a, b } = await twoInstances();
    for (let i = 0; i < 10; i++) expect((await verify(i % 2 ? a : b, UNKNOWN_TOKEN)).statusCode).toBe(400);
    expectRateLimited(await reset(a, UNKNOWN_TOKEN), 60);
    expectRateLimited(await verify(b, UNKNOWN_TOKEN), 60);
  });

  it('a throttled login on one instance does not stop forgot-password on another', async () => {
    const { a, b, sent } = await twoInstances();
    await addUser(a, { email: 'jane@example.com' });
    for (let i = 0; i < 30; i++) await login(a, { login: 'jane@example.com' });
    expect((await login(b, { login: 'jane@example.com' })).statusCode).toBe(429);
    expectAccepted(await forgot(b, 'jane@example.com'));
    expect(await sent()).toEqual(['jane@example.com']);
  });

  it('the server wiring uses Redis when REDIS_URL is set, and each instance its own counters when not', async () => {
    const dirs: string[] = [];
    const runtimes: Runtime[] = [];
    const runtime = async (env: Record<string, string>): Promise<Runtime> => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-sec-'));
      dirs.push(dir);
      const config = loadConfig({ DATA_DIR: dir, SECRETS_KEY: '0'.repeat(64), ...env });
      const r = await createRuntime(config, createLogger('silent'), {}, { role: 'command' });
      runtimes.push(r);
      return r;
    };
    // The production prefix is shared by design: a key no one else uses keeps this run apart.
    const key = `security-test:${uniqueRedisPrefix()}`;
    try {
      const shared = [await runtime({ REDIS_URL }), await runtime({ REDIS_URL })];
      const local = [await runtime({}), await runtime({})];
      const hits = async (limiters: RateLimiter[]): Promise<boolean[]> => {
        const out: boolean[] = [];
        for (const l of [...limiters, ...limiters]) out.push((await l.hit(key, 2, 60)).allowed);
        return out;
      };
      expect(await hits(shared.map((r) => r.deps.limiter))).toEqual([true, true, false, false]);
      expect(await hits(local.map((r) => r.deps.limiter))).toEqual([true, true, true, true]);
    } finally {
      for (const r of runtimes) await r.close();
      for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
      await deleteRedisKeys(`gatehouse:rl:${key}`);
    }
  });
});

describe('without REDIS_URL, a single instance keeps its own counters', () => {
  const dbs: Db[] = [];
  afterEach(async () => {
    for (const ctx of opened.splice(0)) await ctx.close();
    for (const db of dbs.splice(0)) await db.destroy();
  });

  it('counts per instance: on one database, each of two instances allows its own three mails to one address', async () => {
    const db = createDb({ kind: 'sqlite', file: ':memory:' });
    dbs.push(db);
    const a = await app({ db });
    const b = await app({ db });
    await addUser(a, { email: 'jane@example.com' });
    for (let i = 0; i < 4; i++) expectAccepted(await forgot(a, 'jane@example.com'));
    for (let i = 0; i < 3; i++) expectAccepted(await forgot(b, 'jane@example.com'));
    await a.outbox.drain();
    expect(a.mailer.sent.map((m) => m.to)).toEqual(Array(6).fill('jane@example.com'));
  });
});

describe('load shedding', () => {
  // A 100 ms sample: under-pressure measures with a 10 ms resolution, and a sample interval that
  // short reads an empty histogram as an infinite delay, shedding every request.
  it('answers 503 overloaded with Retry-After while the event loop lags, and serves again after', async () => {
    const ctx = await app({ deps: { loadShedding: { maxEventLoopDelayMs: 50, sampleIntervalMs: 100 } } });
    const policy = (): Promise<LightMyRequestResponse> => ctx.app.inject({ method: 'GET', url: '/api/auth/password-policy' });
    const settle = async (): Promise<LightMyRequestResponse> => {
      for (let i = 0; i < 100; i++) {
        await new Promise((r) => setTimeout(r, 50));
        const res = await policy();
        if (res.statusCode !== 503) return res;
      }
      throw new Error('the app never settled below the load-shedding threshold');
    };
    expect((await settle()).statusCode).toBe(200);

    const shed = await requestWhileOverloaded(ctx.app, () => ctx.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login: 'x', password: 'y' } }));
    expect(shed, 'no request was shed after blocking the event loop').toBeDefined();
    expect(shed!.json()).toEqual({ error: 'overloaded', message: expect.any(String) });
    expect(Number(shed!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect((await settle()).statusCode).toBe(200);
  });
});
