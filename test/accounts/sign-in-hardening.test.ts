import type { LightMyRequestResponse } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_CONSECUTIVE_LOGIN_FAILURES } from '../../src/accounts/service.js';
import { MALFORMED_LOGIN_MARKER } from '../../src/accounts/routes.js';
import { SIGN_IN_LOCKED_MESSAGE } from '../../src/accounts/errors.js';
import { listAudit } from '../../src/audit/audit.js';
import type { PasswordHasher } from '../../src/accounts/passwords.js';
import { addUser, makeTestApp, sessionCookie, signIn, OTHER_STRONG_PASSWORD, STRONG_PASSWORD, type TestContext } from '../helpers/app.js';
import { fakeHasher } from '../security/abuse-helpers.js';

let ctx: TestContext;
afterEach(async () => {
  await ctx?.close();
});

const login = (login: string, password: string, cookie?: string) =>
  ctx.app.inject({ method: 'POST', url: '/api/auth/login', headers: cookie ? { cookie } : {}, payload: { login, password } });
const me = (cookie: string) => ctx.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie } });
const auditOf = async (type: string) => (await listAudit(ctx.db, { limit: 500 })).filter((e) => e.type === type);

function cookieOf(res: LightMyRequestResponse, name: string): string {
  const c = res.cookies.find((x) => x.name === name);
  if (!c) throw new Error(`no ${name} cookie`);
  return `${name}=${c.value}`;
}

/** Wrong passwords until the login has failed `count` times, honouring every Retry-After as a patient attacker would. */
async function failUntil(loginName: string, count: number): Promise<void> {
  let failures = 0;
  while (failures < count) {
    const res = await login(loginName, 'a wrong guess of a password');
    if (res.statusCode === 429) {
      ctx.clock.advanceSeconds(Number(res.headers['retry-after']));
      continue;
    }
    expect(res.statusCode).toBe(401);
    failures++;
  }
  ctx.clock.advanceSeconds(15 * 60);
}

describe('sign-in lock and trusted devices (device cookies)', () => {
  it('locks untrusted clients out after 100 failures with one answer for known and unknown logins, while the owner\'s browser still signs in', async () => {
    ctx = await makeTestApp({ deps: { hasher: fakeHasher() } });
    const bob = await addUser(ctx, { username: 'bob', email: 'bob@example.com' });
    const before = await login('bob', STRONG_PASSWORD);
    expect(before.statusCode).toBe(200);
    const bobsBrowser = cookieOf(before, 'gatehouse_device');

    await failUntil('bob', MAX_CONSECUTIVE_LOGIN_FAILURES);
    await failUntil('nobody-here', MAX_CONSECUTIVE_LOGIN_FAILURES);
    const known = await login('bob', STRONG_PASSWORD);
    const unknown = await login('nobody-here', STRONG_PASSWORD);
    expect(known.statusCode).toBe(403);
    expect(known.body).toBe(unknown.body);
    expect(known.json()).toEqual({ error: 'sign_in_locked', message: SIGN_IN_LOCKED_MESSAGE });

    // The owner's browser that signed in before is not locked out by failures from elsewhere.
    const owner = await login('bob', STRONG_PASSWORD, bobsBrowser);
    expect(owner.statusCode).toBe(200);
    expect((await me(sessionCookie(owner))).statusCode).toBe(200);
    // …and its success hands the strangers no fresh attempts.
    expect((await login('bob', STRONG_PASSWORD)).statusCode).toBe(403);

    const locks = await auditOf('account_locked');
    expect(locks).toHaveLength(1);
    expect(locks[0]).toMatchObject({ target: { id: bob.id }, outcome: 'success' });
  });

  it('shows admins the locked account and lets them unlock it', async () => {
    ctx = await makeTestApp({ deps: { hasher: fakeHasher() } });
    await addUser(ctx, { username: 'root', role: 'system-admin' });
    const bob = await addUser(ctx, { username: 'bob' });
    await failUntil('bob', MAX_CONSECUTIVE_LOGIN_FAILURES);
    const admin = await signIn(ctx, 'root');
    const users = await ctx.app.inject({ method: 'GET', url: '/api/users', headers: { cookie: admin } });
    expect(users.json().users.find((u: { id: string }) => u.id === bob.id)).toMatchObject({ locked: true });

    const unlocked = await ctx.app.inject({ method: 'POST', url: `/api/users/${bob.id}/unlock`, headers: { cookie: admin } });
    expect(unlocked.statusCode).toBe(200);
    expect(unlocked.json().user).toMatchObject({ id: bob.id, locked: false });
    expect((await login('bob', STRONG_PASSWORD)).statusCode).toBe(200);
    expect(await auditOf('account_unlocked')).toMatchObject([{ target: { id: bob.id }, actor: { label: 'root' } }]);

    const asUser = await ctx.app.inject({ method: 'POST', url: `/api/users/${bob.id}/unlock`, headers: { cookie: await signIn(ctx, 'bob') } });
    expect(asUser.statusCode).toBe(403);
    const missing = await ctx.app.inject({ method: 'POST', url: '/api/users/no-such-id/unlock', headers: { cookie: admin } });
    expect(missing.statusCode).toBe(404);
  });

  it('lifts the lock with a password reset', async () => {
    ctx = await makeTestApp({ env: { PUBLIC_URL: 'https://dash.example.com' }, deps: { hasher: fakeHasher() } });
    await addUser(ctx, { username: 'bob', email: 'bob@example.com' });
    await failUntil('bob', MAX_CONSECUTIVE_LOGIN_FAILURES);
    expect((await login('bob', STRONG_PASSWORD)).statusCode).toBe(403);
    await ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: 'bob@example.com' } });
    await ctx.outbox.drain();
    const token = /#token=([A-Za-z0-9_-]{43})/.exec(ctx.mailer.sent.at(-1)!.text)![1]!;
    const reset = await ctx.app.inject({ method: 'POST', url: '/api/auth/reset-password', payload: { token, password: OTHER_STRONG_PASSWORD, confirmPassword: OTHER_STRONG_PASSWORD } });
    expect(reset.statusCode).toBe(204);
    expect((await login('bob', OTHER_STRONG_PASSWORD)).statusCode).toBe(200);
  });
});

describe('what lifts a lock', () => {
  it('a password change from the owner\'s trusted browser lifts it for the new password', async () => {
    ctx = await makeTestApp({ deps: { hasher: fakeHasher() } });
    await addUser(ctx, { username: 'bob' });
    const trusted = await login('bob', STRONG_PASSWORD);
    const device = cookieOf(trusted, 'gatehouse_device');
    await failUntil('bob', MAX_CONSECUTIVE_LOGIN_FAILURES);
    expect((await login('bob', STRONG_PASSWORD)).statusCode).toBe(403);
    const owner = await login('bob', STRONG_PASSWORD, device);
    const change = await ctx.app.inject({
      method: 'POST',
      url: '/api/auth/change-password',
      headers: { cookie: `${sessionCookie(owner)}; ${device}` },
      payload: { currentPassword: STRONG_PASSWORD, newPassword: OTHER_STRONG_PASSWORD },
    });
    expect(change.statusCode).toBe(204);
    expect((await login('bob', OTHER_STRONG_PASSWORD)).statusCode).toBe(200);
  });

  it('a new account starts unlocked, whatever strangers typed before it existed', async () => {
    ctx = await makeTestApp({ deps: { hasher: fakeHasher() } });
    await failUntil('newbie@example.com', MAX_CONSECUTIVE_LOGIN_FAILURES);
    ctx.clock.advanceSeconds(2 * 86_400);
    expect((await login('newbie@example.com', STRONG_PASSWORD)).statusCode).toBe(403);
    await addUser(ctx, { email: 'newbie@example.com' });
    expect((await login('newbie@example.com', STRONG_PASSWORD)).statusCode).toBe(200);
  });
});

describe('the audit of failed sign-ins', () => {
  it('keeps the typed login only when it is a well-formed email or username', async () => {
    ctx = await makeTestApp({ deps: { hasher: fakeHasher() } });
    for (const typed of ['jane@example.com', 'jane.doe', 'my secret passphrase 123', 'p@ss w0rd!', 'Tr0ub4dor&3']) await login(typed, 'wrong password');
    const logins = (await auditOf('login_failed')).map((e) => e.detail?.login).reverse();
    expect(logins).toEqual(['jane@example.com', 'jane.doe', MALFORMED_LOGIN_MARKER, MALFORMED_LOGIN_MARKER, MALFORMED_LOGIN_MARKER]);
  });
});

describe('sessions', () => {
  it('carries the __Host- prefix, Secure and Path=/ over https, for the session and the device cookie', async () => {
    ctx = await makeTestApp({ env: { PUBLIC_URL: 'https://dash.example.com' }, deps: { hasher: fakeHasher() } });
    await addUser(ctx, { username: 'bob' });
    const res = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', headers: { origin: 'https://dash.example.com' }, payload: { login: 'bob', password: STRONG_PASSWORD } });
    expect(res.statusCode).toBe(200);
    for (const name of ['__Host-gatehouse_session', '__Host-gatehouse_device']) {
      const c = res.cookies.find((x) => x.name === name);
      expect(c, name).toMatchObject({ secure: true, path: '/', httpOnly: true });
      expect(c?.domain).toBeUndefined();
    }
    expect(res.cookies.map((c) => c.name)).not.toContain('gatehouse_session');
    expect((await me(cookieOf(res, '__Host-gatehouse_session'))).statusCode).toBe(200);
  });

  it('signs every session of the account out with logout-everywhere', async () => {
    ctx = await makeTestApp({ deps: { hasher: fakeHasher() } });
    const bob = await addUser(ctx, { username: 'bob' });
    await addUser(ctx, { username: 'amy' });
    const [a, b, amy] = [await signIn(ctx, 'bob'), await signIn(ctx, 'bob'), await signIn(ctx, 'amy')];
    const res = await ctx.app.inject({ method: 'POST', url: '/api/auth/logout-everywhere', headers: { cookie: a } });
    expect(res.statusCode).toBe(204);
    expect(res.cookies.find((c) => c.name === 'gatehouse_session')?.value).toBe('');
    expect((await me(a)).statusCode).toBe(401);
    expect((await me(b)).statusCode).toBe(401);
    expect((await me(amy)).statusCode).toBe(200);
    expect(await auditOf('signed_out_everywhere')).toMatchObject([{ actor: { id: bob.id } }]);
    expect((await ctx.app.inject({ method: 'POST', url: '/api/auth/logout-everywhere' })).statusCode).toBe(401);
  });

  it('rotates on a role change: the account\'s old sessions end; an admin cannot change their own role (409 cannot_demote_self)', async () => {
    ctx = await makeTestApp({ deps: { hasher: fakeHasher() } });
    const root = await addUser(ctx, { username: 'root', role: 'system-admin' });
    const bob = await addUser(ctx, { username: 'bob' });
    const admin = await signIn(ctx, 'root');
    const bobs = await signIn(ctx, 'bob');
    const promote = await ctx.app.inject({ method: 'PATCH', url: `/api/users/${bob.id}`, headers: { cookie: admin }, payload: { role: 'system-admin' } });
    expect(promote.statusCode).toBe(200);
    expect((await me(bobs)).statusCode).toBe(401);
    expect((await me(admin)).statusCode).toBe(200);

    const demoteSelf = await ctx.app.inject({ method: 'PATCH', url: `/api/users/${root.id}`, headers: { cookie: admin }, payload: { role: 'user' } });
    expect(demoteSelf.statusCode).toBe(409);
    expect(demoteSelf.json().error).toBe('cannot_demote_self');
    expect((await me(admin)).json().user).toMatchObject({ id: root.id, role: 'system-admin' });

    // Another admin demotes root: root's session ends with the privileges it was issued with.
    const bobAdmin = await signIn(ctx, 'bob');
    const demoted = await ctx.app.inject({ method: 'PATCH', url: `/api/users/${root.id}`, headers: { cookie: bobAdmin }, payload: { role: 'user' } });
    expect(demoted.statusCode).toBe(200);
    expect((await me(admin)).statusCode).toBe(401);
    expect((await me(bobAdmin)).statusCode).toBe(200);
  });
});

interface Hold {
  reached: Promise<void>;
  release(): void;
}

/** A hasher whose next hash (or verify) waits until release() — to hold a request at the exact point a race needs. */
function gatedHasher(inner: PasswordHasher): PasswordHasher & { holdNextHash(): Hold; holdNextVerify(): Hold } {
  const gates: { hash?: { reached: () => void; wait: Promise<void> }; verify?: { reached: () => void; wait: Promise<void> } } = {};
  const pass = async (which: 'hash' | 'verify'): Promise<void> => {
    const g = gates[which];
    delete gates[which];
    if (g) {
      g.reached();
      await g.wait;
    }
  };
  const hold = (which: 'hash' | 'verify'): Hold => {
    let reached!: () => void;
    let release!: () => void;
    const reachedP = new Promise<void>((r) => (reached = r));
    gates[which] = { reached, wait: new Promise<void>((r) => (release = r)) };
    return { reached: reachedP, release };
  };
  return {
    async verify(h, p) {
      const result = await inner.verify(h, p);
      await pass('verify');
      return result;
    },
    async hash(password) {
      await pass('hash');
      return inner.hash(password);
    },
    holdNextHash: () => hold('hash'),
    holdNextVerify: () => hold('verify'),
  };
}

describe('a reset racing a password change', () => {
  const NEW_BY_RESET = 'reset chose this passphrase';

  async function setup() {
    const hasher = gatedHasher(fakeHasher());
    ctx = await makeTestApp({ deps: { hasher } });
    await addUser(ctx, { username: 'bob', email: 'bob@example.com' });
    const session = await signIn(ctx, 'bob');
    await ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: 'bob@example.com' } });
    await ctx.outbox.drain();
    const token = /#token=([A-Za-z0-9_-]{43})/.exec(ctx.mailer.sent.at(-1)!.text)![1]!;
    const change = () =>
      ctx.app.inject({ method: 'POST', url: '/api/auth/change-password', headers: { cookie: session }, payload: { currentPassword: STRONG_PASSWORD, newPassword: OTHER_STRONG_PASSWORD } });
    const reset = () => ctx.app.inject({ method: 'POST', url: '/api/auth/reset-password', payload: { token, password: NEW_BY_RESET, confirmPassword: NEW_BY_RESET } });
    return { hasher, change, reset };
  }

  it('lets the reset win when it completes while the change is hashing: the change writes nothing', async () => {
    const { hasher, change, reset } = await setup();
    const held = hasher.holdNextHash();
    const changing = change();
    await held.reached;
    expect((await reset()).statusCode).toBe(204);
    held.release();
    expect((await changing).statusCode).toBe(401);
    expect((await login('bob', NEW_BY_RESET)).statusCode).toBe(200);
    expect((await login('bob', OTHER_STRONG_PASSWORD)).statusCode).toBe(401);
  });

  it('gives no session to a sign-in that verified the old password while the reset completed', async () => {
    const { hasher, reset } = await setup();
    const held = hasher.holdNextVerify();
    const signingIn = login('bob', STRONG_PASSWORD);
    await held.reached;
    expect((await reset()).statusCode).toBe(204);
    held.release();
    expect((await signingIn).statusCode).toBe(401);
    expect(await ctx.db.selectFrom('sessions').selectAll().execute()).toEqual([]);
  });

  it('lets the change win when it completes while the reset is hashing: the reset refuses the link', async () => {
    const { hasher, change, reset } = await setup();
    const held = hasher.holdNextHash();
    const resetting = reset();
    await held.reached;
    expect((await change()).statusCode).toBe(204);
    held.release();
    const refused = await resetting;
    expect(refused.statusCode).toBe(400);
    expect(refused.json().error).toBe('invalid_or_expired_token');
    expect((await login('bob', OTHER_STRONG_PASSWORD)).statusCode).toBe(200);
    expect((await login('bob', NEW_BY_RESET)).statusCode).toBe(401);
  });
});
