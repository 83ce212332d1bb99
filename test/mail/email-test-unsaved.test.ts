import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { STRONG_PASSWORD, addUser, makeTestApp, signIn, type TestContext } from '../helpers/app.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { findEmailSettings } from '../../src/mail/settings.js';
import { PASSWORD, RECIPIENT, SECRETS, SENDER, settingsFor, startSmtp, type SmtpFixture } from './fixtures.js';

// POST /api/settings/email/test with the form's unsaved values: they are checked as a save checks
// them, moving mail elsewhere needs the current password as a save does, and nothing is saved.

let ctx: TestContext;
let admin: string;
let smtp: SmtpFixture;
let other: SmtpFixture;

beforeAll(async () => {
  [smtp, other] = await Promise.all([
    startSmtp({ smtp: { disabledCommands: ['STARTTLS'], allowInsecureAuth: true } }),
    startSmtp({ smtp: { disabledCommands: ['STARTTLS'], allowInsecureAuth: true } }),
  ]);
  ctx = await makeTestApp({ deps: { secrets: createMemorySecretStore(SECRETS) } });
  await addUser(ctx, { username: 'root', role: 'system-admin' });
  await addUser(ctx, { username: 'plain-user', role: 'user' });
  admin = await signIn(ctx, 'root');
});
afterAll(async () => {
  await ctx.close();
  await smtp.close();
  await other.close();
});
// The route allows an admin 10 tests in 10 minutes.
beforeEach(() => ctx.clock.advanceSeconds(600));

/** Plain SMTP to a loopback server: the password may go in clear to this machine. */
const formFor = (server: SmtpFixture, extra: Record<string, unknown> = {}) => ({ ...settingsFor(server, { sslEnabled: false }), ...extra });

const test = (payload: object, cookie = admin) => ctx.app.inject({ method: 'POST', url: '/api/settings/email/test', headers: { cookie }, payload });
const audits = async () => (await ctx.db.selectFrom('audit_events').select(['type', 'outcome', 'detail']).where('type', '=', 'email_test_sent').orderBy('id').execute()).map((e) => ({ ...e, detail: JSON.parse(e.detail ?? '{}') }));

describe('POST /api/settings/email/test with unsaved settings', () => {
  it('before any save: checks the form values (with the current password), sends through them, and saves nothing', async () => {
    const res = await test({ to: RECIPIENT, settings: formFor(smtp, { currentPassword: STRONG_PASSWORD }) });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ ok: true });
    expect(res.json().stages.map((s: { name: string }) => s.name)).toEqual(['settings', 'secrets', 'dns', 'connect', 'tls', 'auth', 'send']);
    expect(smtp.messages).toHaveLength(1);
    expect(smtp.messages[0]!.rcpt).toEqual([RECIPIENT]);
    expect(smtp.auths.length).toBeGreaterThan(0);
    expect(new Set(smtp.auths.map((a) => `${a.username} ${a.password}`))).toEqual(new Set([`${SENDER} ${PASSWORD}`]));
    expect(await findEmailSettings(ctx.db)).toBeUndefined();
    expect(res.body).not.toContain(PASSWORD);
    const [event] = await audits();
    expect(event).toMatchObject({ outcome: 'success', detail: { result: 'ok', unsaved: true, transport: 'smtp', host: '127.0.0.1', port: smtp.port } });
  });

  it('before any save, without the current password: 400 reauthentication_required, nothing connects', async () => {
    const [messages, auths] = [smtp.messages.length, smtp.auths.length];
    const res = await test({ to: RECIPIENT, settings: formFor(smtp) });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'reauthentication_required', message: 'Enter your current password to change where mail is sent.' });
    expect(smtp.messages).toHaveLength(messages);
    expect(smtp.auths).toHaveLength(auths);
  });

  it('a wrong current password: 400 invalid_current_password, nothing connects', async () => {
    const res = await test({ to: RECIPIENT, settings: formFor(other, { currentPassword: 'not my password at all' }) });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toBe('invalid_current_password');
    expect(other.auths).toEqual([]);
  });

  it('invalid values are refused like a save: 400 invalid_request with fields, before any password check', async () => {
    const res = await test({ to: RECIPIENT, settings: { host: 'smtp_example.com', port: 70000, emailSecretName: 'billing-db', currentPassword: STRONG_PASSWORD } });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({
      error: 'invalid_request',
      fields: {
        host: 'Enter a host name such as smtp.gmail.com (no scheme, no port).',
        port: 'Enter a port from 1 to 65535.',
        emailSecretName: 'Email settings can only use secrets whose names match ^(smtp|mail)- (MAIL_SECRET_NAME_PATTERN).',
      },
    });
    // An unknown field is refused by the schema, as on PUT.
    const extra = await test({ to: RECIPIENT, settings: { ...formFor(smtp), secretValue: 'x' } });
    expect(extra.statusCode).toBe(400);
    expect(extra.json().error).toBe('invalid_request');
  });

  describe('with settings saved', () => {
    beforeAll(async () => {
      const saved = await ctx.app.inject({ method: 'PUT', url: '/api/settings/email', headers: { cookie: admin }, payload: formFor(smtp, { currentPassword: STRONG_PASSWORD }) });
      expect(saved.statusCode, saved.body).toBe(200);
    });

    it('the same values as saved need no password (SSL alone is not where mail goes)', async () => {
      const res = await test({ to: RECIPIENT, settings: formFor(smtp) });
      expect(res.statusCode, res.body).toBe(200);
    });

    it('values pointing elsewhere need the password; with it they go there, and the saved settings stay as they were', async () => {
      const refused = await test({ to: RECIPIENT, settings: formFor(other) });
      expect(refused.statusCode).toBe(400);
      expect(refused.json().error).toBe('reauthentication_required');
      expect(other.messages).toEqual([]);

      const smtpBefore = smtp.messages.length;
      const res = await test({ to: 'elsewhere@example.com', settings: formFor(other, { currentPassword: STRONG_PASSWORD }) });
      expect(res.statusCode, res.body).toBe(200);
      expect(other.messages.map((m) => m.rcpt)).toEqual([['elsewhere@example.com']]);
      expect(smtp.messages).toHaveLength(smtpBefore);
      expect(await findEmailSettings(ctx.db)).toMatchObject({ host: '127.0.0.1', port: smtp.port });
    });

    it('unsaved values that fail report their own failure (502), and the saved settings still pass', async () => {
      const broken = await test({ to: RECIPIENT, settings: formFor(smtp, { passwordSecretName: 'smtp-no-such-secret', currentPassword: STRONG_PASSWORD }) });
      expect(broken.statusCode).toBe(502);
      expect(broken.json()).toMatchObject({ ok: false, error: 'secret_not_found' });
      expect(broken.json().message).toContain('smtp-no-such-secret');
      const saved = await test({ to: RECIPIENT });
      expect(saved.statusCode, saved.body).toBe(200);
    });
  });

  it('is for system admins only', async () => {
    const user = await signIn(ctx, 'plain-user');
    const res = await test({ to: RECIPIENT, settings: formFor(smtp, { currentPassword: STRONG_PASSWORD }) }, user);
    expect(res.statusCode).toBe(403);
  });
});
