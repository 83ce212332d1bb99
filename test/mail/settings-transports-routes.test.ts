import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { STRONG_PASSWORD, addUser, makeTestApp, signIn, type TestContext } from '../helpers/app.js';
import { findEmailSettings } from '../../src/mail/settings.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';

// The transport choice on PUT /api/settings/email: what each transport asks for, what it reads,
// and what needs the admin's password again.

const TENANT = '8f9e6c43-1d2b-4c5a-9e7f-0a1b2c3d4e5f';
const CLIENT = 'c0ffee00-1234-4abc-8def-0123456789ab';
const CLIENT_SECRET_VALUE = 'Qx8~client-secret-value-never-shown';
const GRAPH = {
  transport: 'graph',
  senderAddress: 'alerts@contoso.example',
  tenantId: TENANT,
  clientId: CLIENT,
  entraCredential: 'client-secret',
  clientSecretName: 'mail-client-secret',
};

let ctx: TestContext;
let admin: string;

beforeEach(async () => {
  ctx = await makeTestApp({ deps: { secrets: createMemorySecretStore({ 'mail-client-secret': CLIENT_SECRET_VALUE, 'smtp-from': 'alerts@contoso.example' }) } });
  await addUser(ctx, { username: 'root', role: 'system-admin' });
  admin = await signIn(ctx, 'root');
});
afterEach(async () => {
  await ctx.close();
});

const put = (payload: object, withPassword = true) =>
  ctx.app.inject({ method: 'PUT', url: '/api/settings/email', headers: { cookie: admin }, payload: withPassword ? { currentPassword: STRONG_PASSWORD, ...payload } : payload });

describe('PUT /api/settings/email with the transport choice', () => {
  it('saves Microsoft Graph with a client secret: no host needed, the client secret reported as resolving, never shown', async () => {
    const res = await put(GRAPH);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ ...GRAPH, emailSecretName: null, passwordSecretName: null, certificateName: null, configured: true });
    expect(res.json().secretsResolve).toEqual({ email: null, password: null, clientSecret: true, certificate: null });
    expect(res.body).not.toContain(CLIENT_SECRET_VALUE);
    expect(await findEmailSettings(ctx.db)).toMatchObject({ transport: 'graph', clientSecretName: 'mail-client-secret', senderAddress: 'alerts@contoso.example' });
  });

  it('saves managed identity with no tenant and no client id (system-assigned), and a user-assigned client id', async () => {
    const managed = { transport: 'graph', senderAddress: 'alerts@contoso.example', entraCredential: 'managed-identity' };
    const res = await put(managed);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ tenantId: null, clientId: null, clientSecretName: null, secretsResolve: { email: null, password: null, clientSecret: null, certificate: null } });
    expect((await put({ ...managed, clientId: CLIENT })).statusCode).toBe(200);
    expect(await findEmailSettings(ctx.db)).toMatchObject({ entraCredential: 'managed-identity', clientId: CLIENT });
  });

  it('asks each transport for its own fields, one message per field', async () => {
    const cases: [object, string[]][] = [
      [{ transport: 'graph' }, ['emailSecretName', 'entraCredential', 'tenantId', 'clientId']],
      [{ ...GRAPH, tenantId: 'not a tenant' }, ['tenantId']],
      [{ ...GRAPH, clientId: 'app-one' }, ['clientId']],
      [{ ...GRAPH, clientSecretName: null }, ['clientSecretName']],
      [{ ...GRAPH, clientSecretName: 'billing-db-password' }, ['clientSecretName']],
      [{ ...GRAPH, entraCredential: 'certificate', clientSecretName: null }, ['certificateName']],
      [{ ...GRAPH, entraCredential: 'certificate', certificateName: 'tls_cert' }, ['certificateName']],
      [{ ...GRAPH, senderAddress: 'not an address' }, ['senderAddress']],
      [{ ...GRAPH, emailSecretName: 'smtp-from' }, ['emailSecretName']],
      [{ ...GRAPH, transport: 'smtp-oauth2', host: '', port: 587 }, ['host']],
      [{ ...GRAPH, transport: 'smtp-oauth2', host: 'smtp.office365.com', sslEnabled: false }, ['sslEnabled']],
      [{ host: 'smtp.example.com', emailSecretName: 'smtp-from', sslEnabled: false, tlsMode: 'implicit' }, ['tlsMode']],
      [{ host: 'smtp.example.com', emailSecretName: 'smtp-from', tlsMode: 'sometimes' }, ['tlsMode']],
      [{ ...GRAPH, transport: 'exchange' }, ['transport']],
    ];
    for (const [body, fields] of cases) {
      const res = await put(body);
      expect(res.statusCode, JSON.stringify(body)).toBe(400);
      expect(res.json().error).toBe('invalid_request');
      expect(Object.keys(res.json().fields).sort(), JSON.stringify(body)).toEqual([...fields].sort());
    }
    expect(await findEmailSettings(ctx.db)).toBeUndefined();
  });

  it('takes implicit TLS on any port and STARTTLS on 465 when the TLS mode says so', async () => {
    expect((await put({ host: 'mail.example.com', port: 2465, emailSecretName: 'smtp-from', tlsMode: 'implicit' })).json()).toMatchObject({ port: 2465, tlsMode: 'implicit', sslEnabled: true });
    expect((await put({ host: 'mail.example.com', port: 465, emailSecretName: 'smtp-from', tlsMode: 'starttls' })).json()).toMatchObject({ port: 465, tlsMode: 'starttls' });
  });

  it('asks for the password again when the transport, the app, its credential or the sender change; not for the TLS mode', async () => {
    expect((await put(GRAPH)).statusCode).toBe(200);
    const changes = [
      { transport: 'smtp-oauth2', host: 'smtp.office365.com', port: 587 },
      { tenantId: 'contoso.onmicrosoft.com' },
      { clientId: 'c0ffee00-1234-4abc-8def-0123456789ac' },
      { entraCredential: 'managed-identity', clientSecretName: null },
      { clientSecretName: 'mail-client-secret-2' },
      { senderAddress: 'other@contoso.example' },
    ];
    for (const change of changes) {
      const res = await put({ ...GRAPH, ...change }, false);
      expect(res.statusCode, JSON.stringify(change)).toBe(400);
      expect(res.json().error).toBe('reauthentication_required');
    }
    expect((await findEmailSettings(ctx.db))?.transport).toBe('graph');
    expect((await put({ ...GRAPH, tlsMode: 'starttls' }, false)).statusCode).toBe(200);
  });

  it('audits a transport change with the names that changed, never the client secret', async () => {
    await put(GRAPH);
    await put({ ...GRAPH, entraCredential: 'certificate', clientSecretName: null, certificateName: 'mail-cert' });
    const events = (await ctx.app.inject({ method: 'GET', url: '/api/audit?limit=2', headers: { cookie: admin } })).json().events;
    expect(events[0].detail.changed).toEqual({ entraCredential: 'certificate', clientSecretName: null, certificateName: 'mail-cert' });
    expect(events[1].detail.changed).toMatchObject({ transport: 'graph', tenantId: TENANT, clientId: CLIENT, clientSecretName: 'mail-client-secret' });
    expect(JSON.stringify(events)).not.toContain(CLIENT_SECRET_VALUE);
  });

  it('is in the OpenAPI document: transports, TLS modes and Entra ID credentials as enums', async () => {
    const doc = (await ctx.app.inject({ method: 'GET', url: '/api/openapi.json' })).json();
    const text = JSON.stringify(doc);
    for (const word of ['smtp-oauth2', 'graph', 'implicit', 'managed-identity', 'clientSecretName', 'certificateName', 'senderAddress']) expect(text).toContain(word);
  });
});
