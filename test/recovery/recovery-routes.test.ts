import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addUser, makeTestApp, signIn, OTHER_STRONG_PASSWORD, STRONG_PASSWORD, type TestContext } from '../helpers/app.js';
import { MailSendError } from '../../src/mail/transport.js';

let ctx: TestContext;
beforeEach(async () => {
  ctx = await makeTestApp({ env: { PUBLIC_URL: 'https://dash.example.com' } });
});
afterEach(async () => {
  await ctx.close();
});

const NEW_PASSWORD = 'a completely new passphrase';

const forgot = (email: unknown, headers: Record<string, string> = {}) =>
  ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', headers, payload: { email } as object });
const verify = (token: string) => ctx.app.inject({ method: 'POST', url: '/api/auth/reset-password/verify', payload: { token } });
const reset = (token: string, password = NEW_PASSWORD, confirmPassword = password) =>
  ctx.app.inject({ method: 'POST', url: '/api/auth/reset-password', payload: { token, password, confirmPassword } });

function linkIn(text: string): { link: string; token: string } {
  const m = /(https:\/\/dash\.example\.com\/reset-password#token=([A-Za-z0-9_-]{43}))/.exec(text);
  if (!m) throw new Error(`no reset link in: ${text}`);
  return { link: m[1]!, token: m[2]! };
}

async function requestToken(email: string): Promise<string> {
  expect((await forgot(email)).statusCode).toBe(202);
  await ctx.outbox.drain();
  const last = ctx.mailer.sent.at(-1);
  if (!last) throw new Error('no mail sent');
  return linkIn(last.text).token;
}

describe('forgot-password', () => {
  it('answers 202 with the same body for known, unknown, disabled and throttled addresses', async () => {
    await addUser(ctx, { email: 'known@example.com' });
    const off = await addUser(ctx, { email: 'off@example.com' });
    await ctx.db.updateTable('users').set({ disabled: 1 }).where('id', '=', off.id).execute();
    const bodies = new Set<string>();
    for (const email of ['known@example.com', 'nobody@example.com', 'off@example.com', 'known@example.com', 'known@example.com', 'known@example.com']) {
      const res = await forgot(email);
      expect(res.statusCode).toBe(202);
      bodies.add(res.body);
    }
    expect(bodies.size).toBe(1);
    await ctx.outbox.drain();
    // 3 per address per hour: the fourth request for known@ sent nothing; unknown and disabled got nothing.
    expect(ctx.mailer.sent.map((m) => m.to)).toEqual(['known@example.com', 'known@example.com', 'known@example.com']);
  });

  it('refuses anything that is not exactly one well-formed address with 400', async () => {
    for (const email of ['', 'nope', 'a@b.com, c@d.com', 'a@b.com;c@d.com', 'Bob <bob@example.com>', 'a@b.com\r\nBcc: x@y.com', ['a@b.com'], 42, null]) {
      const res = await forgot(email);
      expect(res.statusCode, JSON.stringify(email)).toBe(400);
      expect(res.json().error).toBe('invalid_request');
    }
  });

  it('sends the mail to the stored address, whatever case and form was typed', async () => {
    await addUser(ctx, { email: 'Jane.Doe@Example.com', name: 'Jane <b>Doe</b>' });
    await forgot('  JANE.DOE@example.COM ');
    await ctx.outbox.drain();
    const mail = ctx.mailer.sent[0]!;
    expect(mail.to).toBe('Jane.Doe@Example.com');
    expect(mail.subject).toBe('Reset your password');
    expect(mail.html).toContain('Jane &lt;b&gt;Doe&lt;/b&gt;');
    expect(mail.html).toContain('>Reset Password</a>');
    expect(mail.html.match(/href="/g)).toHaveLength(1);
    expect(mail.text).toContain('expires in 1 hour');
    expect(mail.text).toContain('If you did not ask for this, ignore this email');
  });

  it('keeps no usable token in the database: only its SHA-256, and no body in the outbox', async () => {
    await addUser(ctx, { email: 'jane@example.com' });
    const token = await requestToken('jane@example.com');
    const tables = JSON.stringify({
      tokens: await ctx.db.selectFrom('reset_tokens').selectAll().execute(),
      outbox: await ctx.db.selectFrom('mail_outbox').selectAll().execute(),
      audit: await ctx.db.selectFrom('audit_events').selectAll().execute(),
    });
    expect(tables).not.toContain(token);
    expect(ctx.logs.join('')).not.toContain(token);
  });
});

describe('verify and reset', () => {
  it('completes the flow: verify, reset, sign in with the new password, and a "password changed" email', async () => {
    await addUser(ctx, { email: 'jane@example.com' });
    const session = await signIn(ctx, 'jane@example.com');
    const token = await requestToken('jane@example.com');
    const v = await verify(token);
    expect(v.statusCode).toBe(200);
    expect(v.json()).toEqual({ valid: true, expiresAt: '2026-03-01T13:00:00.000Z' });
    expect((await reset(token)).statusCode).toBe(204);
    expect((await ctx.app.inject({ method: 'GET', url: '/api/auth/me', headers: { cookie: session } })).statusCode).toBe(401);
    const old = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login: 'jane@example.com', password: STRONG_PASSWORD } });
    expect(old.statusCode).toBe(401);
    await signIn(ctx, 'jane@example.com', NEW_PASSWORD);
    await ctx.outbox.drain();
    const changed = ctx.mailer.sent.at(-1)!;
    expect(changed.subject).toBe('Your password was changed');
    expect(changed.text).not.toMatch(/token=/);
    const types = (await ctx.db.selectFrom('audit_events').select('type').execute()).map((r) => r.type);
    expect(types).toEqual(expect.arrayContaining(['reset_requested', 'reset_email_sent', 'reset_completed']));
  });

  it('works once: the second use is invalid_or_expired_token', async () => {
    await addUser(ctx, { email: 'jane@example.com' });
    const token = await requestToken('jane@example.com');
    expect((await reset(token)).statusCode).toBe(204);
    const again = await reset(token, OTHER_STRONG_PASSWORD);
    expect(again.statusCode).toBe(400);
    expect(again.json().error).toBe('invalid_or_expired_token');
    expect((await verify(token)).statusCode).toBe(400);
  });

  it('is valid at exactly the TTL counted from the request, and refused one second later', async () => {
    await addUser(ctx, { email: 'jane@example.com' });
    const token = await requestToken('jane@example.com');
    ctx.clock.advanceSeconds(60 * 60);
    expect((await verify(token)).statusCode).toBe(200);
    ctx.clock.advanceSeconds(1);
    expect((await verify(token)).json().error).toBe('invalid_or_expired_token');
    expect((await reset(token)).json().error).toBe('invalid_or_expired_token');
  });

  it('a new request voids the older link', async () => {
    await addUser(ctx, { email: 'jane@example.com' });
    const first = await requestToken('jane@example.com');
    const second = await requestToken('jane@example.com');
    expect(second).not.toBe(first);
    expect((await verify(first)).statusCode).toBe(400);
    expect((await verify(second)).statusCode).toBe(200);
  });

  it('a password change, an email change or disabling the account voids the link', async () => {
    const jane = await addUser(ctx, { email: 'jane@example.com', username: 'jane' });
    const admin = await addUser(ctx, { username: 'root', role: 'system-admin' });
    const adminCookie = await signIn(ctx, 'root');
    expect(admin.role).toBe('system-admin');

    const t1 = await requestToken('jane@example.com');
    const janeCookie = await signIn(ctx, 'jane');
    ctx.clock.advanceSeconds(1);
    await ctx.app.inject({ method: 'POST', url: '/api/auth/change-password', headers: { cookie: janeCookie }, payload: { currentPassword: STRONG_PASSWORD, newPassword: OTHER_STRONG_PASSWORD } });
    expect((await verify(t1)).statusCode).toBe(400);

    const t2 = await requestToken('jane@example.com');
    await ctx.app.inject({ method: 'PATCH', url: `/api/users/${jane.id}`, headers: { cookie: adminCookie }, payload: { email: 'jane@example.org' } });
    expect((await verify(t2)).statusCode).toBe(400);

    const t3 = await requestToken('jane@example.org');
    await ctx.app.inject({ method: 'PATCH', url: `/api/users/${jane.id}`, headers: { cookie: adminCookie }, payload: { disabled: true } });
    expect((await verify(t3)).statusCode).toBe(400);
  });

  it('checks token, then mismatch, then strength, and a refused reset keeps the token usable', async () => {
    await addUser(ctx, { email: 'jane@example.com' });
    const token = await requestToken('jane@example.com');
    const bad = await reset('x'.repeat(43), 'short', 'different');
    expect(bad.json().error).toBe('invalid_or_expired_token');
    const mismatch = await reset(token, 'short', 'different');
    expect(mismatch.json().error).toBe('password_mismatch');
    const weak = await reset(token, 'short', 'short');
    expect(weak.statusCode).toBe(400);
    expect(weak.json()).toMatchObject({ error: 'weak_password', reasons: expect.arrayContaining([expect.objectContaining({ code: 'too_short' })]) });
    expect((await reset(token)).statusCode).toBe(204);
  });

  it('answers one way for malformed, unknown and empty tokens', async () => {
    const bodies = new Set<string>();
    for (const token of ['x', 'A'.repeat(43), '../../etc/passwd', 'é'.repeat(43)]) {
      const res = await verify(token);
      expect(res.statusCode).toBe(400);
      bodies.add(res.body);
    }
    expect(bodies.size).toBe(1);
  });

  it('unlocks an account locked by 100 failed sign-ins', async () => {
    const jane = await addUser(ctx, { email: 'jane@example.com' });
    await ctx.db.updateTable('users').set({ failed_login_count: 100, locked_at: ctx.clock.now().getTime() }).where('id', '=', jane.id).execute();
    const locked = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login: 'jane@example.com', password: STRONG_PASSWORD } });
    expect(locked.statusCode).toBe(403);
    expect(locked.json().error).toBe('sign_in_locked');
    const token = await requestToken('jane@example.com');
    expect((await reset(token)).statusCode).toBe(204);
    await signIn(ctx, 'jane@example.com', NEW_PASSWORD);
  });
});

describe('delivery', () => {
  it('marks a reset email expired, not sent, when its link would already have expired', async () => {
    await addUser(ctx, { email: 'jane@example.com' });
    await forgot('jane@example.com');
    ctx.clock.advanceSeconds(60 * 60);
    await ctx.outbox.drain();
    expect(ctx.mailer.sent).toHaveLength(0);
    const row = await ctx.db.selectFrom('mail_outbox').selectAll().executeTakeFirstOrThrow();
    expect(row.status).toBe('expired');
  });

  it('retries transient failures with backoff, voiding the token of each failed attempt', async () => {
    await addUser(ctx, { email: 'jane@example.com' });
    ctx.mailer.fail = new MailSendError('451 4.3.0 try later', true, 'rejected');
    await forgot('jane@example.com');
    await ctx.outbox.drain();
    let row = await ctx.db.selectFrom('mail_outbox').selectAll().executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'retrying', attempts: 1 });
    expect(row.last_error).toContain('451');
    // During the outage a copy of the database holds nothing that allows a reset.
    expect(await ctx.db.selectFrom('reset_tokens').selectAll().execute()).toHaveLength(0);
    ctx.mailer.fail = undefined;
    await ctx.outbox.drain();
    expect(ctx.mailer.sent).toHaveLength(0);
    ctx.clock.advanceSeconds(1);
    await ctx.outbox.drain();
    row = await ctx.db.selectFrom('mail_outbox').selectAll().executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'sent', attempts: 2 });
    expect((await verify(linkIn(ctx.mailer.sent[0]!.text).token)).statusCode).toBe(200);
  });

  it('fails permanently on a 5xx reply', async () => {
    await addUser(ctx, { email: 'jane@example.com' });
    ctx.mailer.fail = new MailSendError('550 5.1.1 no such mailbox', false, 'rejected');
    await forgot('jane@example.com');
    await ctx.outbox.drain();
    const row = await ctx.db.selectFrom('mail_outbox').selectAll().executeTakeFirstOrThrow();
    expect(row.status).toBe('failed');
    const types = (await ctx.db.selectFrom('audit_events').select('type').execute()).map((r) => r.type);
    expect(types).toContain('reset_email_failed');
  });

  it('lists deliveries for admins without tokens', async () => {
    await addUser(ctx, { email: 'jane@example.com' });
    await addUser(ctx, { username: 'root', role: 'system-admin' });
    const cookie = await signIn(ctx, 'root');
    const token = await requestToken('jane@example.com');
    await forgot('nobody@example.com');
    await ctx.outbox.drain();
    const res = await ctx.app.inject({ method: 'GET', url: '/api/mail/deliveries', headers: { cookie } });
    expect(res.statusCode).toBe(200);
    expect(res.json().deliveries).toEqual([expect.objectContaining({ to: 'jane@example.com', kind: 'reset', status: 'sent', attempts: 1, lastError: null })]);
    expect(res.body).not.toContain(token);
  });
});

describe('admin-initiated links', () => {
  it('send-reset queues a reset email; 409 for no email or disabled; 404 for unknown', async () => {
    await addUser(ctx, { username: 'root', role: 'system-admin' });
    const cookie = await signIn(ctx, 'root');
    const jane = await addUser(ctx, { email: 'jane@example.com' });
    const bare = await addUser(ctx, { username: 'bare' });
    const send = (id: string) => ctx.app.inject({ method: 'POST', url: `/api/users/${id}/send-reset`, headers: { cookie } });
    expect((await send(jane.id)).statusCode).toBe(202);
    await ctx.outbox.drain();
    expect(ctx.mailer.sent[0]!.to).toBe('jane@example.com');
    expect((await send(bare.id)).json().error).toBe('no_email');
    await ctx.db.updateTable('users').set({ disabled: 1 }).where('id', '=', jane.id).execute();
    expect((await send(jane.id)).json().error).toBe('user_disabled');
    expect((await send('nope')).statusCode).toBe(404);
    const types = (await ctx.db.selectFrom('audit_events').select('type').execute()).map((r) => r.type);
    expect(types).toContain('admin_reset_sent');
  });

  it('send-reset allows an admin 20 links in 10 minutes, then 429 rate_limited with Retry-After, counted per admin', async () => {
    // Links are not read here: the app on plain http will do.
    await ctx.close();
    ctx = await makeTestApp();
    await addUser(ctx, { username: 'root', role: 'system-admin' });
    await addUser(ctx, { username: 'other-admin', role: 'system-admin' });
    const root = await signIn(ctx, 'root');
    const other = await signIn(ctx, 'other-admin');
    const jane = await addUser(ctx, { email: 'jane@example.com' });
    const send = (cookie: string, id = jane.id) => ctx.app.inject({ method: 'POST', url: `/api/users/${id}/send-reset`, headers: { cookie } });
    for (let i = 0; i < 20; i++) expect((await send(root)).statusCode, `link ${i + 1}`).toBe(202);
    const limited = await send(root);
    expect(limited.statusCode).toBe(429);
    expect(limited.json()).toEqual({ error: 'rate_limited', message: 'Too many attempts. Try again later.' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(600);
    // Probing unknown ids counts too.
    expect((await send(root, 'nope')).statusCode).toBe(429);
    expect((await send(other)).statusCode).toBe(202);
    const queued = await ctx.db.selectFrom('mail_outbox').select('id').execute();
    expect(queued).toHaveLength(21);
    ctx.clock.advanceSeconds(600);
    expect((await send(root)).statusCode).toBe(202);
  });

  it('a user created without a password gets a set-password email and can then sign in', async () => {
    await addUser(ctx, { username: 'root', role: 'system-admin' });
    const cookie = await signIn(ctx, 'root');
    const res = await ctx.app.inject({ method: 'POST', url: '/api/users', headers: { cookie }, payload: { email: 'new@example.com', name: 'New', role: 'user' } });
    expect(res.statusCode).toBe(201);
    const denied = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login: 'new@example.com', password: NEW_PASSWORD } });
    expect(denied.statusCode).toBe(401);
    await ctx.outbox.drain();
    const mail = ctx.mailer.sent[0]!;
    expect(mail.subject).toContain('set your password');
    expect(mail.text).toContain('expires in 24 hours');
    expect((await reset(linkIn(mail.text).token)).statusCode).toBe(204);
    await signIn(ctx, 'new@example.com', NEW_PASSWORD);
  });
});

describe('housekeeping', () => {
  it('deletes finished deliveries after 30 days and expired tokens, keeping everything still live', async () => {
    const { deleteOldDeliveries } = await import('../../src/mail/outbox.js');
    const { deleteExpiredResetTokens } = await import('../../src/recovery/tokens.js');
    await addUser(ctx, { email: 'jane@example.com' });
    await addUser(ctx, { email: 'joe@example.com' });
    const token = await requestToken('jane@example.com');
    ctx.mailer.fail = new MailSendError('451 later', true, 'rejected');
    await forgot('joe@example.com');
    await ctx.outbox.drain();
    const now = () => ctx.clock.now().getTime();
    await deleteExpiredResetTokens(ctx.db, now());
    expect((await verify(token)).statusCode).toBe(200);
    ctx.clock.advanceSeconds(3601);
    await deleteExpiredResetTokens(ctx.db, now());
    expect(await ctx.db.selectFrom('reset_tokens').selectAll().execute()).toHaveLength(0);
    ctx.clock.advanceSeconds(30 * 86_400);
    await deleteOldDeliveries(ctx.db, now());
    const left = await ctx.db.selectFrom('mail_outbox').select('status').execute();
    expect(left.map((r) => r.status)).toEqual(['retrying']);
  });
});
