import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editUser, removeUser, setPassword } from '../../src/accounts/service.js';
import { findUserByEmail } from '../../src/accounts/users-repo.js';
import { sendResetLink } from '../../src/recovery/service.js';
import { addUser, makeTestApp, OTHER_STRONG_PASSWORD, STRONG_PASSWORD, type TestContext } from '../helpers/app.js';
import { describeResponse, listenRaw, responseDifference, type RawClient, type RawResponse } from './support/raw-http.js';

// Issue 4 item 1 (ASVS 5.0 6.3.8): no valid account can be deduced from what forgot-password,
// login, verify and reset answer. Every answer is compared over real HTTP, byte for byte, with the
// answer for an address or token that belongs to no account: same status, same header names in
// the same order, same header values (bar the date) and the same body bytes.

const NEW_PASSWORD = 'a completely new passphrase';
const UNKNOWN_EMAIL = 'nobody@example.com';

const FORGOT = '/api/auth/forgot-password';
const LOGIN = '/api/auth/login';
const VERIFY = '/api/auth/reset-password/verify';
const RESET = '/api/auth/reset-password';

/** Asserts that every labelled answer is indistinguishable from the reference answer. */
function expectAlike(reference: RawResponse, answers: Record<string, RawResponse>): void {
  const differences = Object.entries(answers)
    .map(([label, answer]) => [label, responseDifference(reference, answer)] as const)
    .filter(([, diff]) => diff !== '')
    .map(([label, diff]) => `${label} differs from the reference (${describeResponse(reference)}):\n${diff}`);
  expect(differences, differences.join('\n\n')).toEqual([]);
}

/**
 * Makes `login` an account that "signs in only after a reset" (NIST SP 800-63B): 100 real
 * consecutive failures, waiting out each growing delay on the fake clock, then a day later so the
 * limiter has forgotten the run (what remains is the account's own state, not the typed key's).
 */
async function lockOut(ctx: TestContext, login: string): Promise<void> {
  let failures = 0;
  while (failures < 100) {
    const res = await ctx.app.inject({ method: 'POST', url: LOGIN, payload: { login, password: 'not the password at all' } });
    if (res.statusCode === 429) ctx.clock.advanceSeconds(Number(res.headers['retry-after']));
    else if (res.statusCode === 401) failures++;
    else throw new Error(`unexpected ${res.statusCode} while locking ${login}: ${res.body}`);
  }
  ctx.clock.advanceSeconds(25 * 3600);
  const row = await findUserByEmail(ctx.db, login);
  if (row !== undefined) expect(row.failed_login_count).toBeGreaterThanOrEqual(100);
}

/** An address without an account that strangers have locked exactly as `locked@example.com`. */
const LOCKED_UNKNOWN_EMAIL = 'locked-nobody@example.com';

/** The account states of DESIGN §2, each on its own address. */
async function addAccountStates(ctx: TestContext): Promise<void> {
  await addUser(ctx, { email: 'alice@example.com', username: 'alice' });
  const disabled = await addUser(ctx, { email: 'dis@example.com', username: 'dis' });
  await ctx.db.updateTable('users').set({ disabled: 1 }).where('id', '=', disabled.id).execute();
  await addUser(ctx, { email: 'nopass@example.com', username: 'nopass', password: null });
  await addUser(ctx, { email: 'locked@example.com', username: 'locked' });
  await lockOut(ctx, 'locked@example.com');
  await lockOut(ctx, LOCKED_UNKNOWN_EMAIL);
  await addUser(ctx, { email: 'mustchange@example.com' }, { mustChangePassword: true });
}

let ctx: TestContext;
let http: RawClient;
beforeAll(async () => {
  // Only the limit under test is on: the per-address forgot-password limit (3 an hour, the default).
  ctx = await makeTestApp({ env: { LIMIT_FORGOT_PER_IP_PER_MINUTE: '0', LIMIT_LOGIN_PER_IP_PER_MINUTE: '0', LIMIT_RESET_PER_IP_PER_MINUTE: '0' } });
  await addAccountStates(ctx);
  http = await listenRaw(ctx.app);
});
afterAll(async () => {
  http?.close();
  await ctx?.close();
});

/** A reset token for the account at `email`, requested over HTTP and taken from the sent mail. */
async function requestToken(email: string): Promise<string> {
  const before = ctx.mailer.sent.length;
  expect((await http.post(FORGOT, { email })).status).toBe(202);
  await ctx.outbox.drain();
  const mail = ctx.mailer.sent.slice(before).find((m) => m.to.toLowerCase() === email.toLowerCase());
  const token = mail && /#token=([A-Za-z0-9_-]{43})/.exec(mail.text)?.[1];
  if (!token) throw new Error(`no reset mail for ${email}`);
  return token;
}

describe('forgot-password', () => {
  it('answers an existing, unknown, disabled, password-less, locked or must-change address alike', async () => {
    const reference = await http.post(FORGOT, { email: UNKNOWN_EMAIL });
    expect(reference.status).toBe(202);
    const answers: Record<string, RawResponse> = {};
    for (const [label, email] of Object.entries({
      exists: 'alice@example.com',
      'exists, typed in another case': 'ALICE@Example.COM',
      'another unknown address': 'ghost@example.org',
      disabled: 'dis@example.com',
      'password-less': 'nopass@example.com',
      'locked after 100 failures': 'locked@example.com',
      'must change password': 'mustchange@example.com',
    })) {
      answers[label] = await http.post(FORGOT, { email });
    }
    expectAlike(reference, answers);

    // The answers were alike although the accounts were not: mail went to the active ones only.
    await ctx.outbox.drain();
    const recipients = ctx.mailer.sent.map((m) => m.to);
    expect(recipients).toContain('alice@example.com');
    expect(recipients).toContain('locked@example.com');
    expect(recipients).not.toContain('dis@example.com');
    expect(recipients).not.toContain(UNKNOWN_EMAIL);
  });

  it('answers a throttled address like an unthrottled one, whether the account exists or not', async () => {
    await addUser(ctx, { email: 'tom@example.com' });
    const reference = await http.post(FORGOT, { email: 'fresh-unknown@example.com' });
    const before = ctx.mailer.sent.length;
    const answers: Record<string, RawResponse> = {};
    // 3 an hour per address: the 4th and 5th requests for each are over the limit.
    for (let i = 1; i <= 5; i++) {
      answers[`exists, request ${i}`] = await http.post(FORGOT, { email: 'tom@example.com' });
      answers[`unknown, request ${i}`] = await http.post(FORGOT, { email: 'ghost-throttled@example.com' });
    }
    expectAlike(reference, answers);

    await ctx.outbox.drain();
    expect(ctx.mailer.sent.slice(before).map((m) => m.to)).toEqual(['tom@example.com', 'tom@example.com', 'tom@example.com']);
    const throttled = await ctx.db.selectFrom('audit_events').select('detail').where('type', '=', 'reset_requested').where('outcome', '=', 'failure').execute();
    expect(throttled.filter((r) => r.detail?.includes('to***@example.com'))).toHaveLength(2);
    expect(throttled.filter((r) => r.detail?.includes('gh***@example.com'))).toHaveLength(2);
  });
});

describe('login', () => {
  const logins = {
    'exists, wrong password (email)': ['alice@example.com', OTHER_STRONG_PASSWORD],
    'exists, wrong password (username)': ['alice', OTHER_STRONG_PASSWORD],
    'unknown username': ['nobody', STRONG_PASSWORD],
    'disabled, right password': ['dis@example.com', STRONG_PASSWORD],
    'password-less': ['nopass@example.com', STRONG_PASSWORD],
  } as const;

  it('answers a locked account, even with its right password, like a locked login without an account', async () => {
    for (const at of ['at once', 'two days later']) {
      if (at !== 'at once') ctx.clock.advanceSeconds(2 * 86_400);
      const reference = await http.post(LOGIN, { login: LOCKED_UNKNOWN_EMAIL, password: STRONG_PASSWORD });
      expect(reference.status, at).toBe(403);
      expectAlike(reference, {
        [`locked after 100 failures, right password, ${at}`]: await http.post(LOGIN, { login: 'locked@example.com', password: STRONG_PASSWORD }),
        [`locked after 100 failures, wrong password, ${at}`]: await http.post(LOGIN, { login: 'locked@example.com', password: OTHER_STRONG_PASSWORD }),
      });
    }
  });

  it('answers a wrong password, an unknown, disabled or password-less account alike', async () => {
    ctx.clock.advanceSeconds(25 * 3600);
    const reference = await http.post(LOGIN, { login: UNKNOWN_EMAIL, password: STRONG_PASSWORD });
    expect(reference.status).toBe(401);
    const answers: Record<string, RawResponse> = {};
    for (const [label, [login, password]] of Object.entries(logins)) answers[label] = await http.post(LOGIN, { login, password });
    expectAlike(reference, answers);
  });

  it('throttles what was typed, so known and unknown accounts get the same growing Retry-After, answer for answer', async () => {
    ctx.clock.advanceSeconds(25 * 3600);
    const seen: string[] = [];
    for (let round = 1; round <= 12; round++) {
      const reference = await http.post(LOGIN, { login: UNKNOWN_EMAIL, password: STRONG_PASSWORD });
      const answers: Record<string, RawResponse> = {};
      for (const [label, [login, password]] of Object.entries(logins)) answers[`${label}, round ${round}`] = await http.post(LOGIN, { login, password });
      expectAlike(reference, answers);
      seen.push(reference.status === 429 ? `429 after ${reference.headers['retry-after']} s` : String(reference.status));
      // Wait out the delay on the fake clock, for everyone alike.
      if (reference.status === 429) ctx.clock.advanceSeconds(Number(reference.headers['retry-after']));
    }
    // The throttle really was exercised, with a growing wait rather than a lockout.
    const waits = seen.filter((s) => s.startsWith('429')).map((s) => Number(/after (\d+) s/.exec(s)![1]));
    expect(waits.length, seen.join(', ')).toBeGreaterThanOrEqual(3);
    expect(waits.every((w, i) => i === 0 || w > waits[i - 1]!), seen.join(', ')).toBe(true);
  });
});

describe('reset: verify and reset', () => {
  it('answers one way for an unknown, malformed, used, expired, superseded or voided token', async () => {
    // Expired first: the clock then moves past its lifetime (60 minutes from the request).
    await addUser(ctx, { email: 'expired@example.com' });
    const expired = await requestToken('expired@example.com');
    ctx.clock.advanceSeconds(61 * 60);

    await addUser(ctx, { email: 'used@example.com' });
    const used = await requestToken('used@example.com');
    expect((await http.post(RESET, { token: used, password: NEW_PASSWORD, confirmPassword: NEW_PASSWORD })).status).toBe(204);

    await addUser(ctx, { email: 'superseded@example.com' });
    const superseded = await requestToken('superseded@example.com');
    const newer = await requestToken('superseded@example.com');

    await addUser(ctx, { email: 'pwchanged@example.com' });
    const pwChanged = await requestToken('pwchanged@example.com');
    ctx.clock.advanceSeconds(1);
    await setPassword(ctx.deps, (await findUserByEmail(ctx.db, 'pwchanged@example.com'))!, OTHER_STRONG_PASSWORD, { mustChange: false });

    const emailChangedUser = await addUser(ctx, { email: 'emailchanged@example.com' });
    const emailChanged = await requestToken('emailchanged@example.com');
    await editUser(ctx.deps, emailChangedUser.id, { email: 'emailchanged2@example.com' });

    const disabledUser = await addUser(ctx, { email: 'disabled-later@example.com' });
    const disabled = await requestToken('disabled-later@example.com');
    await editUser(ctx.deps, disabledUser.id, { disabled: true });

    const deletedUser = await addUser(ctx, { email: 'deleted@example.com' });
    const deleted = await requestToken('deleted@example.com');
    await removeUser(ctx.deps, deletedUser.id);

    // The newer token is live, so the refusals below are refusals of real tokens.
    expect((await http.post(VERIFY, { token: newer })).status).toBe(200);

    const tokens = {
      'another unknown token': randomBytes(32).toString('base64url'),
      'malformed (too short)': 'not-a-token',
      'malformed (44 characters)': `${randomBytes(33).toString('base64url').slice(0, 44)}`,
      used,
      expired,
      'superseded by a newer request': superseded,
      'voided by a password change': pwChanged,
      'voided by an email change': emailChanged,
      'of an account disabled since': disabled,
      'of an account deleted since': deleted,
    };
    const unknown = randomBytes(32).toString('base64url');

    const verifyReference = await http.post(VERIFY, { token: unknown });
    expect(verifyReference.status).toBe(400);
    const verifyAnswers: Record<string, RawResponse> = {};
    for (const [label, token] of Object.entries(tokens)) verifyAnswers[`verify: ${label}`] = await http.post(VERIFY, { token });
    expectAlike(verifyReference, verifyAnswers);

    // The token is checked before the passwords, so not even a mismatch or a weak password tells.
    const resetReference = await http.post(RESET, { token: unknown, password: NEW_PASSWORD, confirmPassword: NEW_PASSWORD });
    expect(resetReference.status).toBe(400);
    const resetAnswers: Record<string, RawResponse> = {};
    for (const [label, token] of Object.entries(tokens)) {
      resetAnswers[`reset: ${label}`] = await http.post(RESET, { token, password: NEW_PASSWORD, confirmPassword: NEW_PASSWORD });
      resetAnswers[`reset, passwords that differ: ${label}`] = await http.post(RESET, { token, password: NEW_PASSWORD, confirmPassword: OTHER_STRONG_PASSWORD });
      resetAnswers[`reset, weak password: ${label}`] = await http.post(RESET, { token, password: 'aaaaaaaaaaaaaaaa', confirmPassword: 'aaaaaaaaaaaaaaaa' });
    }
    resetAnswers['reset, unknown token, passwords that differ'] = await http.post(RESET, { token: unknown, password: NEW_PASSWORD, confirmPassword: OTHER_STRONG_PASSWORD });
    expectAlike(resetReference, resetAnswers);

    // None of these refusals consumed the live token.
    expect((await http.post(VERIFY, { token: newer })).status).toBe(200);
  });

  it('answers a live token the same whether its account is ordinary, password-less, locked or must change its password', async () => {
    // Requested at the same instant of the fake clock, so expiresAt is the same too.
    const live: Record<string, string> = {};
    for (const [label, email] of Object.entries({
      ordinary: 'alice@example.com',
      'password-less': 'nopass@example.com',
      'locked after 100 failures': 'locked@example.com',
      'must change password': 'mustchange@example.com',
    })) {
      const row = (await findUserByEmail(ctx.db, email))!;
      const before = ctx.mailer.sent.length;
      await sendResetLink(ctx.deps, row, 'reset', null);
      await ctx.outbox.drain();
      live[label] = /#token=([A-Za-z0-9_-]{43})/.exec(ctx.mailer.sent[before]!.text)![1]!;
    }
    const { ordinary, ...others } = live;
    const reference = await http.post(VERIFY, { token: ordinary });
    expect(reference.status).toBe(200);
    const answers: Record<string, RawResponse> = {};
    for (const [label, token] of Object.entries(others)) answers[label] = await http.post(VERIFY, { token });
    expectAlike(reference, answers);
  });
});

describe('per-IP limits', () => {
  let tight: TestContext;
  let tightHttp: RawClient;
  beforeAll(async () => {
    tight = await makeTestApp({ env: { LIMIT_FORGOT_PER_IP_PER_MINUTE: '2', LIMIT_LOGIN_PER_IP_PER_MINUTE: '2', LIMIT_RESET_PER_IP_PER_MINUTE: '2' } });
    await addUser(tight, { email: 'alice@example.com', username: 'alice' });
    tightHttp = await listenRaw(tight.app);
  });
  afterAll(async () => {
    tightHttp?.close();
    await tight?.close();
  });

  it('forgot-password over the per-IP limit answers a known and an unknown address as below it', async () => {
    const reference = await tightHttp.post(FORGOT, { email: UNKNOWN_EMAIL });
    const answers = {
      'exists, within the limit': await tightHttp.post(FORGOT, { email: 'alice@example.com' }),
      'exists, over the limit': await tightHttp.post(FORGOT, { email: 'alice@example.com' }),
      'unknown, over the limit': await tightHttp.post(FORGOT, { email: 'ghost@example.com' }),
    };
    expectAlike(reference, answers);
    await tight.outbox.drain();
    expect(tight.mailer.sent.map((m) => m.to)).toEqual(['alice@example.com']);
  });

  it('login over the per-IP limit answers an account with its right password like an unknown one', async () => {
    await tightHttp.post(LOGIN, { login: UNKNOWN_EMAIL, password: STRONG_PASSWORD });
    await tightHttp.post(LOGIN, { login: UNKNOWN_EMAIL, password: STRONG_PASSWORD });
    const reference = await tightHttp.post(LOGIN, { login: UNKNOWN_EMAIL, password: STRONG_PASSWORD });
    expect(reference.status).toBe(429);
    expectAlike(reference, {
      'exists, right password': await tightHttp.post(LOGIN, { login: 'alice@example.com', password: STRONG_PASSWORD }),
      'exists by username, right password': await tightHttp.post(LOGIN, { login: 'alice', password: STRONG_PASSWORD }),
    });
  });

  it('verify and reset over the per-IP limit answer a live token like an unknown one', async () => {
    const row = (await findUserByEmail(tight.db, 'alice@example.com'))!;
    await sendResetLink(tight.deps, row, 'reset', null);
    await tight.outbox.drain();
    const live = /#token=([A-Za-z0-9_-]{43})/.exec(tight.mailer.sent.at(-1)!.text)![1]!;
    const unknown = randomBytes(32).toString('base64url');
    expect((await tightHttp.post(VERIFY, { token: live })).status).toBe(200);
    await tightHttp.post(VERIFY, { token: unknown });
    const verifyReference = await tightHttp.post(VERIFY, { token: unknown });
    expect(verifyReference.status).toBe(429);
    expectAlike(verifyReference, { 'verify, live token': await tightHttp.post(VERIFY, { token: live }) });
    const resetReference = await tightHttp.post(RESET, { token: unknown, password: NEW_PASSWORD, confirmPassword: NEW_PASSWORD });
    expect(resetReference.status).toBe(429);
    expectAlike(resetReference, { 'reset, live token': await tightHttp.post(RESET, { token: live, password: NEW_PASSWORD, confirmPassword: NEW_PASSWORD }) });
    // Refused by the limit, the live token was not consumed.
    tight.clock.advanceSeconds(61);
    expect((await tightHttp.post(VERIFY, { token: live })).status).toBe(200);
  });
});
