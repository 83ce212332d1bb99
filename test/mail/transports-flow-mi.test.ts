import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import { createDb, type Db } from '../../src/db/index.js';
import { createMemoryRateLimiter } from '../../src/limits/rate-limiter.js';
import { createTokenSource } from '../../src/mail/entra.js';
import { findEmailSettings, type EmailSettings } from '../../src/mail/settings.js';
import { createConfiguredMailer } from '../../src/mail/transport.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { addUser, makeTestApp, STRONG_PASSWORD, type TestContext } from '../helpers/app.js';
import { freePort } from '../helpers/cli.js';
import { waitFor } from '../helpers/pg.js';
import { sendAs, type FakeGraph, type FakeManagedIdentity, type FakeXoauth2SmtpServer, type GraphMessage } from './ms365-fakes.js';
import { expectLoopbackOnly, graphTransport, resetTokenOf, SENDER, setUpManagedIdentity, smtpOauth2Transport, testCaOrSkip, watchNetworkOfFile } from './ms365-setup.js';

// The forgot-password journey with managed identity (App Service's IDENTITY_ENDPOINT), through
// Graph (system-assigned identity) and SMTP with OAuth2 (a user-assigned identity), with the real
// mailer and the app on an ephemeral port. A file of its own, on SQLite only: MSAL keeps the
// managed-identity source (read from the environment once) and its token cache in process statics.

const ca = await testCaOrSkip('managed-identity mail flow tests', 'fail');

const SYSTEM_CLIENT_ID = '33333333-cccc-4ccc-8ccc-000000000001';
const USER_ASSIGNED_CLIENT_ID = '33333333-cccc-4ccc-8ccc-000000000002';
const PUBLIC_HOST = 'gatehouse.test';
const NEW_PASSWORD = 'a completely new passphrase';
const MESSAGE_ID = /^<[0-9a-f-]{36}@gatehouse\.test>$/;
const identityHeader = randomBytes(16).toString('hex');

describe.skipIf(ca === undefined).sequential('forgot-password with managed identity (App Service) on SQLite', () => {
  const network = watchNetworkOfFile();
  let identity: FakeManagedIdentity;
  let graph: FakeGraph;
  let smtp: FakeXoauth2SmtpServer;
  let tearDown: (() => Promise<void>) | undefined;
  let ctx: TestContext;
  let db: Db;
  let drop: () => Promise<void>;
  let closeMailer: () => void;
  let url: string;
  let publicUrl: string;
  let admin: string;

  beforeAll(async () => {
    // App Service's variables pointing at the fake, before anything builds a credential.
    let nowhere: string;
    ({ identity, graph, smtp: { smtp }, authorityHost: nowhere, close: tearDown } = await setUpManagedIdentity(ca!, {
      identity: { identityHeader, clientId: SYSTEM_CLIENT_ID, userAssignedClientIds: [USER_ASSIGNED_CLIENT_ID] },
      graph: { mailboxes: [SENDER], permissions: sendAs(SENDER, SYSTEM_CLIENT_ID) },
      smtp: { smtp: { basicAuthDisabled: true, permissions: sendAs(SENDER, USER_ASSIGNED_CLIENT_ID) } },
    }));

    // A file, as in production (WAL, busy timeout), not :memory:.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-transports-flow-mi-'));
    db = createDb({ kind: 'sqlite', file: path.join(dir, 'gatehouse.sqlite') });
    drop = async () => fs.rmSync(dir, { recursive: true, force: true });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    publicUrl = `http://${PUBLIC_HOST}:${port}`;
    const env = {
      PUBLIC_URL: publicUrl,
      AZURE_AUTHORITY_HOST: nowhere,
      GRAPH_BASE_URL: graph.url,
      LIMIT_RESET_PER_IP_PER_MINUTE: '0',
      LIMIT_FORGOT_PER_IP_PER_MINUTE: '0',
      LIMIT_FORGOT_PER_ADDRESS_PER_HOUR: '0',
      LIMIT_LOGIN_PER_IP_PER_MINUTE: '0',
    };
    const config = loadConfig(env);
    const secrets = createMemorySecretStore({ 'mail-sender': SENDER });
    const mailer = createConfiguredMailer(() => findEmailSettings(db), secrets, {
      secretNamePattern: config.mailSecretNamePattern,
      messageIdDomain: config.publicUrl.hostname,
      tokens: createTokenSource({ authorityHost: config.azureAuthorityHost }),
      graphBaseUrl: config.graphBaseUrl,
    });
    closeMailer = () => mailer.close();
    ctx = await makeTestApp({ db, env, deps: { clock: systemClock, secrets, limiter: createMemoryRateLimiter(systemClock) }, mailer });
    ctx.outbox.start();
    await ctx.app.listen({ host: '127.0.0.1', port });
    await addUser(ctx, { username: 'root', role: 'system-admin' });
    const login = await post('/api/auth/login', { login: 'root', password: STRONG_PASSWORD });
    expect(login.status).toBe(200);
    admin = login.headers.getSetCookie().find((c) => c.startsWith('gatehouse_session='))!.split(';')[0]!;
  });

  afterAll(async () => {
    await ctx?.close();
    closeMailer?.();
    await tearDown?.();
    await drop?.();
  });

  function post(route: string, body: unknown): Promise<Response> {
    return fetch(`${url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json', origin: publicUrl }, body: JSON.stringify(body) });
  }

  async function saveSettings(body: Partial<EmailSettings>): Promise<Record<string, unknown>> {
    const res = await fetch(`${url}/api/settings/email`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', origin: publicUrl, cookie: admin },
      body: JSON.stringify({ ...body, currentPassword: STRONG_PASSWORD }),
    });
    const text = await res.text();
    expect(res.status, text).toBe(200);
    return JSON.parse(text) as Record<string, unknown>;
  }

  const resetToken = (html: string | undefined, text: string | undefined): string => resetTokenOf(html, text, publicUrl);

  async function resetWith(email: string, token: string): Promise<void> {
    expect((await post('/api/auth/reset-password', { token, password: NEW_PASSWORD, confirmPassword: NEW_PASSWORD })).status).toBe(204);
    expect((await post('/api/auth/login', { login: email, password: NEW_PASSWORD })).status).toBe(200);
  }

  const graphTo = (address: string): GraphMessage[] => graph.messages.filter((m) => m.to.includes(address));
  const waitForGraph = (address: string, n: number): Promise<GraphMessage[]> =>
    waitFor(`${n} Graph message(s) to ${address}`, () => (graphTo(address).length >= n ? graphTo(address) : undefined));

  it('graph + system-assigned managed identity: reset email, reset, "password changed", one token from IDENTITY_ENDPOINT', async () => {
    const state = await saveSettings(graphTransport({ senderAddress: SENDER, entraCredential: 'managed-identity' }));
    expect(state).toMatchObject({ transport: 'graph', tenantId: null, clientId: null, entraCredential: 'managed-identity', secretsResolve: { clientSecret: null, certificate: null } });
    const email = 'mi.graph@example.org';
    await addUser(ctx, { email });
    expect((await post('/api/auth/forgot-password', { email })).status).toBe(202);
    const [mail] = await waitForGraph(email, 1);
    expect(mail).toMatchObject({ format: 'mime', sender: SENDER, from: SENDER, autoSubmitted: 'auto-generated', subject: 'Reset your password' });
    expect(mail!.messageId).toMatch(MESSAGE_ID);
    expect(mail!.token).toMatchObject({ clientId: SYSTEM_CLIENT_ID, via: 'managed-identity', resource: 'https://graph.microsoft.com' });
    await resetWith(email, resetToken(mail!.html, mail!.text));
    const [, changed] = await waitForGraph(email, 2);
    expect(changed).toMatchObject({ subject: 'Your password was changed', autoSubmitted: 'auto-generated' });
    expect(identity.tokenRequests('https://graph.microsoft.com')).toBe(1);
    expect(identity.requests.every((r) => r.identityHeaderOk && r.query.client_id === undefined)).toBe(true);
    console.log(`[SQLite] graph + managed identity: 2 emails via Graph, ${identity.tokenRequests('https://graph.microsoft.com')} token request to IDENTITY_ENDPOINT`);
  });

  it('smtp-oauth2 + user-assigned managed identity: the reset email goes over STARTTLS with XOAUTH2', async () => {
    await saveSettings(smtpOauth2Transport(smtp.port, { emailSecretName: 'mail-sender', clientId: USER_ASSIGNED_CLIENT_ID, entraCredential: 'managed-identity' }));
    const email = 'mi.smtp@example.org';
    await addUser(ctx, { email });
    expect((await post('/api/auth/forgot-password', { email })).status).toBe(202);
    const [mail] = await smtp.waitForMessages(1, 20_000);
    expect(mail!.user).toBe(SENDER);
    expect(mail!.envelopeTo).toEqual([email]);
    expect(mail!.token).toMatchObject({ clientId: USER_ASSIGNED_CLIENT_ID, via: 'managed-identity', resource: 'https://outlook.office365.com' });
    expect(mail!.parsed.headers.get('auto-submitted')).toBe('auto-generated');
    expect(mail!.parsed.messageId).toMatch(MESSAGE_ID);
    await resetWith(email, resetToken(typeof mail!.parsed.html === 'string' ? mail!.parsed.html : undefined, mail!.parsed.text));
    const [, changed] = await smtp.waitForMessages(2, 20_000);
    expect(changed!.parsed.subject).toBe('Your password was changed');
    expect(smtp.authAttempts.every((a) => a.method === 'XOAUTH2' && a.accepted)).toBe(true);
    const asked = identity.requests.filter((r) => r.query.client_id === USER_ASSIGNED_CLIENT_ID);
    expect(asked.map((r) => [r.query.resource, r.status])).toEqual([['https://outlook.office365.com', 200]]);
    console.log(`[SQLite] smtp-oauth2 + user-assigned managed identity: 2 emails over XOAUTH2, ${asked.length} token request for the user-assigned identity`);
  });

  it('stores, shows and logs no token or identity header, and talked to nothing but 127.0.0.1', async () => {
    // The last email has arrived; its row is marked sent once the worker writes its outcomes.
    const outbox = await waitFor('4 deliveries marked sent', async () => {
      const rows = await db.selectFrom('mail_outbox').selectAll().execute();
      return rows.filter((r) => r.status === 'sent').length === 4 ? rows : undefined;
    });
    const audit = await db.selectFrom('audit_events').selectAll().execute();
    const api = await (await fetch(`${url}/api/mail/deliveries?limit=200`, { headers: { cookie: admin } })).text();
    const places = { mail_outbox: JSON.stringify(outbox), audit_events: JSON.stringify(audit), deliveries: api, logs: ctx.logs.join('') };
    expect(outbox.filter((r) => r.status === 'sent')).toHaveLength(4);
    for (const [place, text] of Object.entries(places)) {
      expect(text, place).not.toContain('fake-mi-');
      expect(text, place).not.toContain(identityHeader);
      expect(text, place).not.toMatch(/Bearer\s+\S/);
    }
    expectLoopbackOnly(network, 1, { ipv4Only: true });
  });
});
