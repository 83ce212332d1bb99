import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addUser, makeTestApp, signIn, type TestContext } from '../helpers/app.js';
import { DEFAULT_EMAIL_SETTINGS, findEmailSettings } from '../../src/mail/settings.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { SecretStoreUnavailableError, type SecretStore } from '../../src/secrets/store.js';
import type { AppDeps } from '../../src/deps.js';

const SENDER = 'alerts@example.com';
const SMTP_PASSWORD = 'an-app-password-value';
const GOOD = { host: 'smtp.gmail.com', port: 587, emailSecretName: 'smtp-from', passwordSecretName: 'smtp-password', sslEnabled: true };

let ctx: TestContext;
let admin: string;

async function start(deps: Partial<AppDeps> = {}): Promise<void> {
  ctx = await makeTestApp({ deps: { secrets: createMemorySecretStore({ 'smtp-from': SENDER, 'smtp-password': SMTP_PASSWORD }), ...deps } });
  await addUser(ctx, { username: 'root', role: 'system-admin' });
  admin = await signIn(ctx, 'root');
}
afterEach(async () => {
  await ctx.close();
});

const get = (cookie = admin) => ctx.app.inject({ method: 'GET', url: '/api/settings/email', headers: { cookie } });
const put = (payload: unknown, cookie = admin) => ctx.app.inject({ method: 'PUT', url: '/api/settings/email', headers: { cookie }, payload: payload as object });

describe('GET /api/settings/email', () => {
  beforeEach(() => start());

  it('answers the defaults with configured: false before anything is saved', async () => {
    const res = await get();
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ...DEFAULT_EMAIL_SETTINGS, configured: false, secretsResolve: { email: false, password: null } });
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
    const expected = { ...GOOD, configured: true, secretsResolve: { email: true, password: true } };
    expect(res.json()).toEqual(expected);
    expect((await get()).json()).toEqual(expected);
    expect(await findEmailSettings(ctx.db)).toEqual(GOOD);
  });

  it('reports which named secrets resolve, never their values', async () => {
    const res = await put({ ...GOOD, passwordSecretName: 'not-there' });
    expect(res.json().secretsResolve).toEqual({ email: true, password: false });
    expect(res.body).not.toContain(SENDER);
    expect(res.body).not.toContain(SMTP_PASSWORD);
    const relay = await put({ ...GOOD, emailSecretName: 'missing-sender', passwordSecretName: null });
    expect(relay.json()).toMatchObject({ passwordSecretName: null, secretsResolve: { email: false, password: null } });
  });

  it('treats an empty password secret name as "a relay without AUTH" and trims names and host', async () => {
    const res = await put({ ...GOOD, host: '  smtp.example.com ', emailSecretName: ' smtp-from ', passwordSecretName: '  ' });
    expect(res.statusCode).toBe(200);
    expect(await findEmailSettings(ctx.db)).toEqual({ ...GOOD, host: 'smtp.example.com', passwordSecretName: null });
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
    expect((await put(missing)).json().fields).toEqual({ host: 'Required.' });
    expect(await findEmailSettings(ctx.db)).toBeUndefined();
  });

  it('audits each save with the fields that changed and their new values (names, never secret values)', async () => {
    await put(GOOD);
    await put({ ...GOOD, port: 465, passwordSecretName: 'smtp-password-2' });
    const events = (await ctx.app.inject({ method: 'GET', url: '/api/audit?limit=2', headers: { cookie: admin } })).json().events;
    expect(events.map((e: { type: string }) => e.type)).toEqual(['settings_changed', 'settings_changed']);
    expect(events[0]).toMatchObject({ actor: { label: 'root' }, outcome: 'success', detail: { settings: 'email', changed: { port: 465, passwordSecretName: 'smtp-password-2' } } });
    expect(Object.keys(events[0].detail.changed)).toEqual(['port', 'passwordSecretName']);
    expect(Object.keys(events[1].detail.changed)).toEqual(['host', 'port', 'emailSecretName', 'passwordSecretName', 'sslEnabled']);
    const all = JSON.stringify(events);
    expect(all).not.toContain(SMTP_PASSWORD);
    expect(all).not.toContain(SENDER);
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
