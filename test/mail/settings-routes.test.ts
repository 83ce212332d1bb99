import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STRONG_PASSWORD, addUser, makeTestApp, signIn, type TestContext } from '../helpers/app.js';
import { DEFAULT_EMAIL_SETTINGS, findEmailSettings, normalizeEmailSettings, saveEmailSettings } from '../../src/mail/settings.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { SecretStoreUnavailableError, type SecretStore } from '../../src/secrets/store.js';
import type { AppDeps } from '../../src/deps.js';

const SENDER = 'alerts@example.com';
const SMTP_PASSWORD = 'an-app-password-value';
const GOOD = { host: 'smtp.gmail.com', port: 587, emailSecretName: 'smtp-from', passwordSecretName: 'smtp-password', sslEnabled: true };
/** GOOD as saved: the fields a client of before the transport choice leaves out take their defaults. */
const GOOD_SAVED = normalizeEmailSettings(GOOD);
const NO_ENTRA = { clientSecret: null, certificate: null };

let ctx: TestContext;
let admin: string;

async function start(deps: Partial<AppDeps> = {}, env: Record<string, string> = {}): Promise<void> {
  ctx = await makeTestApp({ env, deps: { secrets: createMemorySecretStore({ 'smtp-from': SENDER, 'smtp-password': SMTP_PASSWORD }), ...deps } });
  await addUser(ctx, { username: 'root', role: 'system-admin' });
  admin = await signIn(ctx, 'root');
}
afterEach(async () => {
  await ctx.close();
});

const get = (cookie = admin) => ctx.app.inject({ method: 'GET', url: '/api/settings/email', headers: { cookie } });
/** A save as the Settings page makes it, with the admin's password (needed when host, port or a secret name changes). */
const put = (payload: unknown, cookie = admin) =>
  ctx.app.inject({ method: 'PUT', url: '/api/settings/email', headers: { cookie }, payload: { currentPassword: STRONG_PASSWORD, ...(payload as object) } });
/** A save without the password. */
const putBare = (payload: object) => ctx.app.inject({ method: 'PUT', url: '/api/settings/email', headers: { cookie: admin }, payload });

describe('GET /api/settings/email', () => {
  beforeEach(() => start());

  it('answers the defaults with configured: false before anything is saved', async () => {
    const res = await get();
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ...DEFAULT_EMAIL_SETTINGS, configured: false, secretsResolve: { email: null, password: null, ...NO_ENTRA } });
  });

  it('is for system admins only: 401 without a session (before the role), 403 for a user', async () => {
    expect((await ctx.app.inject({ method: 'GET', url: '/api/settings/email' })).statusCode).toBe(401);
    expect((await ctx.app.inject({ method: 'PUT', url: '/api/settings/email', payload: GOOD })).statusCode).toBe(401);
    await addUser(ctx, { username: 'someone', role: 'user' });
    const user = await signIn(ctx, 'someone');
    expect((await get(user)).statusCode).toBe(403);
    const refused = await put(GOOD, user);
    expect(refused.statusCode).toBe(403);
    expect(await findEmailSettings(ctx.db)).toBeUndefined();
  });
});

describe('PUT /api/settings/email', () => {
  beforeEach(() => start());

  it('saves, answers the saved settings with configured: true, and GET says the same', async () => {
    const res = await put(GOOD);
    expect(res.statusCode, res.body).toBe(200);
    const expected = { ...GOOD_SAVED, configured: true, secretsResolve: { email: true, password: true, ...NO_ENTRA } };
    expect(res.json()).toEqual(expected);
    expect((await get()).json()).toEqual(expected);
    expect(await findEmailSettings(ctx.db)).toEqual(GOOD_SAVED);
  });

  it('reports which named secrets resolve, never their values', async () => {
    const res = await put({ ...GOOD, passwordSecretName: 'smtp-not-there' });
    expect(res.json().secretsResolve).toEqual({ email: true, password: false, ...NO_ENTRA });
    expect(res.body).not.toContain(SENDER);
    expect(res.body).not.toContain(SMTP_PASSWORD);
    const relay = await put({ ...GOOD, emailSecretName: 'smtp-missing-sender', passwordSecretName: null });
    expect(relay.json()).toMatchObject({ passwordSecretName: null, secretsResolve: { email: false, password: null } });
  });

  it('treats an empty password secret name as "a relay without AUTH" and trims names and host', async () => {
    const res = await put({ ...GOOD, host: '  smtp.example.com ', emailSecretName: ' smtp-from ', passwordSecretName: '  ' });
    expect(res.statusCode).toBe(200);
    expect(await findEmailSettings(ctx.db)).toEqual({ ...GOOD_SAVED, host: 'smtp.example.com', passwordSecretName: null });
  });

  it('refuses bad fields with 400 invalid_request and a message per field, saving nothing', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ ...GOOD, host: 'smtp://smtp.gmail.com' }, 'host'],
      [{ ...GOOD, host: 'smtp.gmail.com:587' }, 'host'],
      [{ ...GOOD, host: '' }, 'host'],
      [{ ...GOOD, port: 0 }, 'port'],
      [{ ...GOOD, port: 70000 }, 'port'],
      [{ ...GOOD, port: '587' }, 'port'],
      [{ ...GOOD, port: 587.5 }, 'port'],
      [{ ...GOOD, emailSecretName: 'smtp from' }, 'emailSecretName'],
      [{ ...GOOD, passwordSecretName: 'pass_word' }, 'passwordSecretName'],
      [{ ...GOOD, sslEnabled: 'true' }, 'sslEnabled'],
      [{ ...GOOD, password: 'hunter2' }, 'password'],
    ];
    for (const [body, field] of cases) {
      const res = await put(body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error).toBe('invalid_request');
      expect(Object.keys(res.json().fields), JSON.stringify(body)).toEqual([field]);
    }
    const { host: _host, ...missing } = GOOD;
    expect(Object.keys((await put(missing)).json().fields)).toEqual(['host']);
    expect(await findEmailSettings(ctx.db)).toBeUndefined();
  });

  it('audits each save with the fields that changed and their new values (names, never secret values)', async () => {
    await put(GOOD);
    await put({ ...GOOD, port: 465, passwordSecretName: 'smtp-password-2' });
    const events = (await ctx.app.inject({ method: 'GET', url: '/api/audit?limit=2', headers: { cookie: admin } })).json().events;
    expect(events.map((e: { type: string }) => e.type)).toEqual(['settings_changed', 'settings_changed']);
    expect(events[0]).toMatchObject({ actor: { label: 'root' }, outcome: 'success', detail: { settings: 'email', changed: { port: 465, passwordSecretName: 'smtp-password-2' } } });
    expect(Object.keys(events[0].detail.changed)).toEqual(['port', 'passwordSecretName']);
    expect(Object.keys(events[1].detail.changed)).toEqual(['transport', 'host', 'port', 'sslEnabled', 'tlsMode', 'emailSecretName', 'passwordSecretName']);
    const all = JSON.stringify(events);
    expect(all).not.toContain(SMTP_PASSWORD);
    expect(all).not.toContain(SENDER);
  });
});

describe('secret names outside MAIL_SECRET_NAME_PATTERN', () => {
  const OTHER_SECRET = 'the billing database password';
  /** The store with one secret that is not for mail, counting every read by name. */
  function countingStore(): { store: SecretStore; reads: string[] } {
    const inner = createMemorySecretStore({ 'smtp-from': SENDER, 'smtp-password': SMTP_PASSWORD, 'billing-db-password': OTHER_SECRET });
    const reads: string[] = [];
    return { reads, store: { ...inner, get: async (name) => (reads.push(name), inner.get(name)) } };
  }

  it('are refused on save with a field error naming the pattern (^(smtp|mail)- by default), saving nothing', async () => {
    const { store, reads } = countingStore();
    await start({ secrets: store });
    for (const [body, field] of [
      [{ ...GOOD, emailSecretName: 'billing-db-password' }, 'emailSecretName'],
      [{ ...GOOD, passwordSecretName: 'billing-db-password' }, 'passwordSecretName'],
      [{ ...GOOD, passwordSecretName: 'tempAdminPassword' }, 'passwordSecretName'],
    ] as const) {
      const res = await put(body);
      expect(res.statusCode, field).toBe(400);
      expect(res.json()).toEqual({
        error: 'invalid_request',
        message: 'Some fields are not valid.',
        fields: { [field]: 'Email settings can only use secrets whose names match ^(smtp|mail)- (MAIL_SECRET_NAME_PATTERN).' },
      });
    }
    expect(await findEmailSettings(ctx.db)).toBeUndefined();
    expect(reads).not.toContain('billing-db-password');
    expect((await put({ ...GOOD, emailSecretName: 'mail-from', passwordSecretName: 'smtp-password' })).statusCode).toBe(200);
  });

  it('follow MAIL_SECRET_NAME_PATTERN when it is set', async () => {
    await start({}, { MAIL_SECRET_NAME_PATTERN: '^outbound-' });
    const refused = await put(GOOD);
    expect(refused.statusCode).toBe(400);
    expect(refused.json().fields).toEqual({
      emailSecretName: 'Email settings can only use secrets whose names match ^outbound- (MAIL_SECRET_NAME_PATTERN).',
      passwordSecretName: 'Email settings can only use secrets whose names match ^outbound- (MAIL_SECRET_NAME_PATTERN).',
    });
    expect((await put({ ...GOOD, emailSecretName: 'outbound-from', passwordSecretName: null })).statusCode).toBe(200);
  });

  it('in settings saved before the rule, are reported as not resolving, and the store is not read for them', async () => {
    const { store, reads } = countingStore();
    await start({ secrets: store });
    await saveEmailSettings(ctx.db, ctx.clock, normalizeEmailSettings({ ...GOOD, emailSecretName: 'billing-db-password', passwordSecretName: 'billing-db-password' }), null);
    const res = await get();
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ emailSecretName: 'billing-db-password', configured: true, secretsResolve: { email: false, password: false } });
    expect(res.body).not.toContain(OTHER_SECRET);
    expect(reads).toEqual([]);
  });
});

describe('changing where mail is sent asks for the current password again', () => {
  beforeEach(() => start());
  const saved = async (): Promise<unknown> => findEmailSettings(ctx.db);

  it('a first save without the password is 400 reauthentication_required; a wrong one is 400 invalid_current_password; nothing is saved', async () => {
    const missing = await putBare(GOOD);
    expect(missing.statusCode).toBe(400);
    expect(missing.json()).toEqual({ error: 'reauthentication_required', message: 'Enter your current password to change where mail is sent.' });
    expect((await putBare({ ...GOOD, currentPassword: '' })).json().error).toBe('reauthentication_required');
    const wrong = await putBare({ ...GOOD, currentPassword: 'not my password at all' });
    expect(wrong.statusCode).toBe(400);
    expect(wrong.json().error).toBe('invalid_current_password');
    expect(await saved()).toBeUndefined();
    expect((await putBare({ ...GOOD, currentPassword: STRONG_PASSWORD })).statusCode).toBe(200);
    expect(await saved()).toEqual(GOOD_SAVED);
  });

  it('host, port, email secret name and password secret name each need it; SSL alone and an unchanged save do not', async () => {
    expect((await put(GOOD)).statusCode).toBe(200);
    for (const change of [{ host: 'smtp.evil.example' }, { port: 2525 }, { emailSecretName: 'smtp-other' }, { passwordSecretName: 'smtp-other' }, { passwordSecretName: null }]) {
      const res = await putBare({ ...GOOD, ...change });
      expect(res.statusCode, JSON.stringify(change)).toBe(400);
      expect(res.json().error, JSON.stringify(change)).toBe('reauthentication_required');
      expect(await saved()).toEqual(GOOD_SAVED);
    }
    expect((await putBare(GOOD)).statusCode).toBe(200);
    // Trimmed as saved: the same host with spaces is no change.
    expect((await putBare({ ...GOOD, host: ` ${GOOD.host} ` })).statusCode).toBe(200);
    const sslOff = await putBare({ ...GOOD, sslEnabled: false });
    expect(sslOff.statusCode, sslOff.body).toBe(200);
    expect(await saved()).toEqual({ ...GOOD_SAVED, sslEnabled: false });
    expect((await putBare({ ...GOOD, port: 465, currentPassword: STRONG_PASSWORD })).statusCode).toBe(200);
  });

  it('checks the fields before the password, so a typo costs no password attempt', async () => {
    const res = await putBare({ ...GOOD, host: 'smtp://x', currentPassword: 'wrong guess' });
    expect(res.statusCode).toBe(400);
    expect(res.json()).toMatchObject({ error: 'invalid_request', fields: { host: expect.any(String) } });
    const events = (await ctx.app.inject({ method: 'GET', url: '/api/audit?limit=5', headers: { cookie: admin } })).json().events;
    expect(events.map((e: { type: string }) => e.type)).not.toContain('password_check_failed');
  });
});

describe('a secret-store outage', () => {
  it('reads as "does not resolve" with the store\'s message, never a 500', async () => {
    const down: SecretStore = {
      ...createMemorySecretStore(),
      kind: 'azure-keyvault',
      get: async () => {
        throw new SecretStoreUnavailableError('Azure Key Vault did not answer (503)');
      },
    };
    await start({ secrets: down });
    const res = await put(GOOD);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ configured: true, secretsResolve: { email: false, password: false }, secretsError: 'Azure Key Vault did not answer (503)' });
    const other: SecretStore = { ...down, get: async () => Promise.reject(new Error('socket hang up at 10.1.2.3 with token xyz')) };
    await ctx.close();
    await start({ secrets: other });
    await put(GOOD);
    const again = await get();
    expect(again.statusCode).toBe(200);
    // An unknown error's text may hold anything: it is logged, not shown.
    expect(again.json().secretsError).toBe('The azure-keyvault secret store could not be read.');
  });
});
