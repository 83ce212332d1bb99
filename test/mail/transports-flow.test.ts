import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/clock.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { Db } from '../../src/db/index.js';
import { createMemoryRateLimiter } from '../../src/limits/rate-limiter.js';
import { createTokenSource } from '../../src/mail/entra.js';
import { findEmailSettings, type EmailSettings } from '../../src/mail/settings.js';
import { createConfiguredMailer } from '../../src/mail/transport.js';
import { createCachedSecretStore } from '../../src/secrets/cached.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import type { SecretStore } from '../../src/secrets/store.js';
import { addUser, makeTestApp, STRONG_PASSWORD, type TestContext } from '../helpers/app.js';
import { freePort } from '../helpers/cli.js';
import { bothDialects, postgresSuite, waitFor, type DialectDb } from '../helpers/pg.js';
import type { TestCa } from '../helpers/tls.js';
import { GRAPH_ERRORS, GRAPH_SCOPE, makeClientCertificate, OUTLOOK_SCOPE, startEntraFakes, type ClientCertificate, type FakeEntraApp, type FakeEntraId, type FakeGraph, type FakeXoauth2SmtpServer, type GraphMessage } from './ms365-fakes.js';
import { clientSecretApp, graphTransport, resetTokenOf, SENDER, smtpOauth2Transport, TENANT_DOMAIN, testCaOrSkip } from './ms365-setup.js';

// The forgot-password journey and the outbox through the Microsoft 365 transports, end to end:
// the app on an ephemeral port (real HTTP), the outbox worker running, the real mailer
// (createConfiguredMailer with a real token source, @azure/identity, fetch and nodemailer)
// talking to the local fakes of Entra ID, Microsoft Graph and Exchange Online's XOAUTH2 SMTP
// over TLS on 127.0.0.1. Settings are saved the way the Settings page saves them (PUT with the
// admin's password). On SQLite and PostgreSQL.
//
// The clock is the wall clock plus an offset the tests move forward: the outbox's backoff and
// Graph's Retry-After are decided in clock time, so a 40 s Retry-After can be seen to hold for a
// while and then be jumped over; the secret store's cache (SECRETS_CACHE_SECONDS) runs on it too.

const describeOnPostgres = await postgresSuite();
const ca = await testCaOrSkip('mail transport flow tests', 'fail');

const TENANT = '5b3c6f2e-1d4a-4c8b-9e7f-0a1b2c3d4e5f';
/** PUBLIC_URL's host, and so the Message-ID's domain; nothing ever resolves it. */
const PUBLIC_HOST = 'gatehouse.test';
const NEW_PASSWORD = 'a completely new passphrase';
const SECRETS_CACHE_SECONDS = 30;
/** Every access token the fake Entra ID issues starts so: none may be stored, shown or logged. */
const TOKEN_PREFIX = 'fake-entra-';

/** Wall-clock time plus an offset that only grows. */
class SteerableClock implements Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

interface RegisteredApp {
  clientId: string;
  secretName: string;
  secret: string;
}

interface Harness {
  ctx: TestContext;
  /** where the app listens */
  url: string;
  /** PUBLIC_URL: links in emails start with it */
  publicUrl: string;
  config: Config;
  db: Db;
  clock: SteerableClock;
  /** the backend behind the app's cached secret store: what a rotation in the vault changes */
  vault: SecretStore;
  /** what the app reads, cached for SECRETS_CACHE_SECONDS */
  secrets: SecretStore;
  entra: FakeEntraId;
  apps: Record<string, FakeEntraApp>;
  graph: FakeGraph;
  smtp: FakeXoauth2SmtpServer;
  clientCert: ClientCertificate;
  certApp: string;
  /** every secret value the test handed out: none may leak */
  secretValues: string[];
  admin: string;
  register(name: string): Promise<RegisteredApp>;
  close(): Promise<void>;
}

const newGuid = (): string => randomUUID();
/** Shaped like an Entra client secret value (`xxx8Q~…`). */
const newClientSecret = (): string => `${randomBytes(2).toString('hex')}8Q~${randomBytes(27).toString('base64url')}`;

async function startHarness(makeDb: () => Promise<DialectDb>, testCa: TestCa): Promise<Harness> {
  const { db, drop } = await makeDb();
  const apps: Record<string, FakeEntraApp> = {};
  const fakes = await startEntraFakes(testCa, {
    tenants: { [TENANT]: { domains: [TENANT_DOMAIN], apps } },
    graph: { mailboxes: [SENDER] },
    smtp: { smtp: { basicAuthDisabled: true, authMethods: ['LOGIN', 'XOAUTH2'] } },
  });
  const { entra, graph, smtp: { smtp } } = fakes;
  const clientCert = await makeClientCertificate();
  const certApp = newGuid();
  apps[certApp] = { certificatePem: clientCert.certificatePem };

  const clock = new SteerableClock();
  const vault = createMemorySecretStore({ 'mail-sender': SENDER, 'mail-cert': clientCert.combinedPem });
  const secrets = createCachedSecretStore(vault, { ttlSeconds: SECRETS_CACHE_SECONDS, clock });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const publicUrl = `http://${PUBLIC_HOST}:${port}`;
  const env = {
    PUBLIC_URL: publicUrl,
    AZURE_AUTHORITY_HOST: entra.url,
    GRAPH_BASE_URL: graph.url,
    SECRETS_CACHE_SECONDS: String(SECRETS_CACHE_SECONDS),
    LIMIT_RESET_PER_IP_PER_MINUTE: '0',
    LIMIT_FORGOT_PER_IP_PER_MINUTE: '0',
    LIMIT_FORGOT_PER_ADDRESS_PER_HOUR: '0',
    LIMIT_LOGIN_PER_IP_PER_MINUTE: '0',
  };
  // The same Config the app gets: the mailer is wired from it as src/mail/index.ts chooseMailer wires it.
  const config = loadConfig(env);
  expect(config.secrets.cacheSeconds).toBe(SECRETS_CACHE_SECONDS);
  const mailer = createConfiguredMailer(() => findEmailSettings(db), secrets, {
    secretNamePattern: config.mailSecretNamePattern,
    messageIdDomain: config.publicUrl.hostname,
    tokens: createTokenSource({ authorityHost: config.azureAuthorityHost }),
    graphBaseUrl: config.graphBaseUrl,
  });
  const ctx = await makeTestApp({ db, env, deps: { clock, secrets, limiter: createMemoryRateLimiter(clock) }, mailer });
  ctx.outbox.start();
  await ctx.app.listen({ host: '127.0.0.1', port });

  await addUser(ctx, { username: 'root', email: 'root@example.org', role: 'system-admin' });
  const login = await fetch(`${url}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: publicUrl },
    body: JSON.stringify({ login: 'root', password: STRONG_PASSWORD }),
  });
  expect(login.status, await login.clone().text()).toBe(200);
  const cookie = login.headers.getSetCookie().find((c) => /^(__Host-)?gatehouse_session=/.test(c));
  if (cookie === undefined) throw new Error('no session cookie');

  const secretValues: string[] = [];
  const h: Harness = {
    ctx,
    url,
    publicUrl,
    config,
    db,
    clock,
    vault,
    secrets,
    entra,
    apps,
    graph,
    smtp,
    clientCert,
    certApp,
    secretValues,
    admin: cookie.split(';')[0]!,
    async register(name) {
      const app = { clientId: newGuid(), secretName: `mail-${name}-secret`, secret: newClientSecret() };
      apps[app.clientId] = { secret: app.secret };
      secretValues.push(app.secret);
      await vault.set(app.secretName, app.secret);
      return app;
    },
    async close() {
      await ctx.close();
      mailer.close();
      await fakes.close();
      await drop();
    },
  };
  return h;
}

// ---------------------------------------------------------------------------------------------

function post(h: Harness, path: string, body: unknown, cookie?: string): Promise<Response> {
  return fetch(`${h.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: h.publicUrl, ...(cookie === undefined ? {} : { cookie }) },
    body: JSON.stringify(body),
  });
}

async function saveSettings(h: Harness, body: Partial<EmailSettings>): Promise<Record<string, unknown>> {
  const res = await fetch(`${h.url}/api/settings/email`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json', origin: h.publicUrl, cookie: h.admin },
    body: JSON.stringify({ ...body, currentPassword: STRONG_PASSWORD }),
  });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text) as Record<string, unknown>;
}

const graphSettings = (app: { clientId: string; secretName: string }): Partial<EmailSettings> =>
  graphTransport({ senderAddress: SENDER, ...clientSecretApp(TENANT, app.clientId, app.secretName) });

async function forgot(h: Harness, email: string): Promise<void> {
  const res = await post(h, '/api/auth/forgot-password', { email });
  expect(res.status).toBe(202);
}

const graphTo = (h: Harness, address: string): GraphMessage[] => h.graph.messages.filter((m) => m.to.some((t) => t.toLowerCase() === address.toLowerCase()));

function waitForGraph(h: Harness, address: string, n: number, timeoutMs = 20_000): Promise<GraphMessage[]> {
  return waitFor(`${n} Graph message(s) to ${address}`, () => {
    const list = graphTo(h, address);
    return list.length >= n ? list : undefined;
  }, timeoutMs);
}

/** A new app saved as the Graph settings, and two users `${name}1@` and `${name}2@example.org`: the first one's reset email sent, with one token. */
async function firstOfTwoSent(h: Harness, name: string): Promise<{ app: RegisteredApp; second: string }> {
  const app = await h.register(name);
  await saveSettings(h, graphSettings(app));
  const first = `${name}1@example.org`;
  const second = `${name}2@example.org`;
  await addUser(h.ctx, { email: first });
  await addUser(h.ctx, { email: second });
  await forgot(h, first);
  await waitForGraph(h, first, 1);
  await waitForRow(h, first, 'sent');
  expect(h.entra.tokenRequests(app.clientId, GRAPH_SCOPE)).toBe(1);
  return { app, second };
}

async function rowTo(h: Harness, address: string) {
  return h.db.selectFrom('mail_outbox').selectAll().where('to_address', '=', address).orderBy('requested_at', 'desc').executeTakeFirst();
}

function waitForRow(h: Harness, address: string, status: string) {
  return waitFor(`the delivery to ${address} to be ${status}`, async () => {
    const row = await rowTo(h, address);
    return row?.status === status ? row : undefined;
  });
}

async function deliveries(h: Harness): Promise<{ body: string; list: { to: string | null; status: string; attempts: number; lastError: string | null }[] }> {
  const res = await fetch(`${h.url}/api/mail/deliveries?limit=200`, { headers: { cookie: h.admin } });
  const body = await res.text();
  expect(res.status, body).toBe(200);
  return { body, list: (JSON.parse(body) as { deliveries: { to: string | null; status: string; attempts: number; lastError: string | null }[] }).deliveries };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Follows the link: the token resets the password, the new password signs in, the old one does not. */
async function resetWith(h: Harness, email: string, token: string): Promise<void> {
  expect((await post(h, '/api/auth/reset-password/verify', { token })).status).toBe(200);
  expect((await post(h, '/api/auth/reset-password', { token, password: NEW_PASSWORD, confirmPassword: NEW_PASSWORD })).status).toBe(204);
  expect((await post(h, '/api/auth/login', { login: email, password: NEW_PASSWORD })).status).toBe(200);
  expect((await post(h, '/api/auth/login', { login: email, password: STRONG_PASSWORD })).status).toBe(401);
}

const MESSAGE_ID = new RegExp(`^<[0-9a-f-]{36}@${PUBLIC_HOST.replace(/\./g, '\\.')}>$`);

/** What every Graph message of these tests must be: MIME from the sender mailbox, Auto-Submitted, our Message-ID. */
function expectGraphMail(m: GraphMessage, clientId: string, via: 'secret' | 'assertion'): void {
  expect(m.format).toBe('mime');
  expect(m.sender).toBe(SENDER);
  expect(m.from).toBe(SENDER);
  expect(m.autoSubmitted).toBe('auto-generated');
  expect(m.messageId).toMatch(MESSAGE_ID);
  expect(m.token.clientId).toBe(clientId);
  expect(m.token.via).toBe(via);
  expect(m.token.resource).toBe('https://graph.microsoft.com');
}

/** A small seeded PRNG (mulberry32): the burst's failures are random but replayable from the logged seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------

for (const [dialect, makeDb, suite] of bothDialects(describeOnPostgres, 'gatehouse-transports-flow-')) {
  (ca === undefined ? describe.skip : suite)(`forgot-password through Microsoft 365 transports on ${dialect}`, () => {
    let h: Harness;
    beforeAll(async () => {
      h = await startHarness(makeDb, ca!);
    });
    afterAll(async () => {
      await h?.close();
    });

    it('graph + client secret: the reset email arrives at Graph as MIME, its link resets the password, and "password changed" follows', async () => {
      const app = await h.register('journey');
      const saved = await saveSettings(h, graphSettings(app));
      expect(saved).toMatchObject({ transport: 'graph', configured: true, secretsResolve: { email: null, clientSecret: true } });
      const email = 'journey.graph@example.org';
      await addUser(h.ctx, { email, name: 'Graph Journey' });

      await forgot(h, email);
      const [mail] = await waitForGraph(h, email, 1);
      expectGraphMail(mail!, app.clientId, 'secret');
      expect(mail!.subject).toBe('Reset your password');
      expect(mail!.parsed?.from?.value[0]?.name).toBe('Gatehouse');
      const token = resetTokenOf(mail!.html, mail!.text, h.publicUrl);
      await resetWith(h, email, token);

      const [, changed] = await waitForGraph(h, email, 2);
      expectGraphMail(changed!, app.clientId, 'secret');
      expect(changed!.subject).toBe('Your password was changed');
      expect(String(changed!.html)).not.toContain('token=');
      expect(changed!.messageId).not.toBe(mail!.messageId);
      // Both sends, one token.
      expect(h.entra.tokenRequests(app.clientId, GRAPH_SCOPE)).toBe(1);
      expect(h.graph.requests.filter((r) => r.clientId === app.clientId).map((r) => r.status)).toEqual([202, 202]);
      console.log(`[${dialect}] graph + client secret: 2 emails delivered via Graph (MIME), 1 token request, Message-ID ${mail!.messageId}`);
    });

    it('smtp-oauth2 + client secret: the reset email goes over STARTTLS with AUTH XOAUTH2 and an Outlook token', async () => {
      const app = await h.register('smtp');
      await saveSettings(h, smtpOauth2Transport(h.smtp.port, { emailSecretName: 'mail-sender', ...clientSecretApp(TENANT_DOMAIN, app.clientId, app.secretName) }));
      const email = 'journey.smtp@example.org';
      await addUser(h.ctx, { email, name: 'SMTP Journey' });
      const before = h.smtp.messages.length;

      await forgot(h, email);
      const [mail] = (await h.smtp.waitForMessages(before + 1, 20_000)).slice(before);
      expect(mail!.user).toBe(SENDER);
      expect(mail!.envelopeFrom).toBe(SENDER);
      expect(mail!.envelopeTo).toEqual([email]);
      expect(mail!.token.clientId).toBe(app.clientId);
      expect(mail!.token.resource).toBe('https://outlook.office365.com');
      expect(mail!.parsed.subject).toBe('Reset your password');
      expect(mail!.parsed.headers.get('auto-submitted')).toBe('auto-generated');
      expect(mail!.parsed.messageId).toMatch(MESSAGE_ID);
      const token = resetTokenOf(typeof mail!.parsed.html === 'string' ? mail!.parsed.html : undefined, mail!.parsed.text, h.publicUrl);
      await resetWith(h, email, token);

      const [, changed] = (await h.smtp.waitForMessages(before + 2, 20_000)).slice(before);
      expect(changed!.parsed.subject).toBe('Your password was changed');
      expect(changed!.parsed.headers.get('auto-submitted')).toBe('auto-generated');
      // Only XOAUTH2 was tried, never a password; the token came from Entra once, for Outlook. The fake
      // (smtp-server without allowInsecureAuth) takes AUTH only after STARTTLS: an accepted AUTH is TLS.
      expect(h.smtp.authAttempts.length).toBeGreaterThanOrEqual(1);
      expect(h.smtp.authAttempts.every((a) => a.method === 'XOAUTH2' && a.accepted && a.username === SENDER && a.clientId === app.clientId)).toBe(true);
      expect(h.entra.tokenRequests(app.clientId, OUTLOOK_SCOPE)).toBe(1);
      expect(h.entra.tokenRequests(app.clientId, GRAPH_SCOPE)).toBe(0);
      console.log(`[${dialect}] smtp-oauth2: 2 emails over STARTTLS + XOAUTH2 (${h.smtp.authAttempts.length} AUTH, all XOAUTH2), 1 Outlook token request`);
    });

    it('graph + certificate: the app signs a client assertion with the certificate from the secret store', async () => {
      await saveSettings(h, {
        transport: 'graph',
        senderAddress: SENDER,
        tenantId: TENANT,
        clientId: h.certApp,
        entraCredential: 'certificate',
        certificateName: 'mail-cert',
      });
      const email = 'journey.cert@example.org';
      await addUser(h.ctx, { email, name: 'Cert Journey' });

      await forgot(h, email);
      const [mail] = await waitForGraph(h, email, 1);
      expectGraphMail(mail!, h.certApp, 'assertion');
      const token = resetTokenOf(mail!.html, mail!.text, h.publicUrl);
      await resetWith(h, email, token);
      const [, changed] = await waitForGraph(h, email, 2);
      expectGraphMail(changed!, h.certApp, 'assertion');
      expect(changed!.subject).toBe('Your password was changed');
      const tokenRequests = h.entra.requests.filter((r) => r.clientId === h.certApp);
      expect(tokenRequests).toHaveLength(1);
      expect(tokenRequests[0]!.status).toBe(200);
      expect(tokenRequests[0]!.form?.client_assertion).toBe('[redacted]');
      expect(tokenRequests[0]!.form?.client_secret).toBeUndefined();
      expect(tokenRequests[0]!.assertionHeader?.alg).toMatch(/^(RS256|PS256)$/);
      console.log(`[${dialect}] graph + certificate: 2 emails, 1 token request with a ${String(tokenRequests[0]!.assertionHeader?.alg)} client assertion`);
    });

    it('asks Entra ID for one Graph token for 10 reset emails', async () => {
      const app = await h.register('cache');
      await saveSettings(h, graphSettings(app));
      const emails = Array.from({ length: 10 }, (_, i) => `cache${i}@example.org`);
      for (const email of emails) await addUser(h.ctx, { email });
      await Promise.all(emails.map((email) => forgot(h, email)));
      for (const email of emails) await waitForGraph(h, email, 1);
      await Promise.all(emails.map((email) => waitForRow(h, email, 'sent')));
      for (const email of emails) expect(graphTo(h, email)).toHaveLength(1);
      expect(h.entra.tokenRequests(app.clientId, GRAPH_SCOPE)).toBe(1);
      expect(h.entra.issued.filter((t) => t.clientId === app.clientId)).toHaveLength(1);
      expect(new Set(emails.map((e) => graphTo(h, e)[0]!.token)).size).toBe(1);
      console.log(`[${dialect}] token caching: 10 reset emails via Graph, ${h.entra.tokenRequests(app.clientId, GRAPH_SCOPE)} token request`);
    });

    it('waits out Graph\'s 429 Retry-After in the outbox, then delivers once', async () => {
      const app = await h.register('throttle');
      await saveSettings(h, graphSettings(app));
      const email = 'throttled@example.org';
      await addUser(h.ctx, { email });
      const RETRY_AFTER = 40;
      h.graph.failNext(GRAPH_ERRORS.throttled(RETRY_AFTER));

      const askedAt = h.clock.now().getTime();
      await forgot(h, email);
      const row = await waitForRow(h, email, 'retrying');
      const readAt = h.clock.now().getTime();
      expect(row.attempts).toBe(1);
      expect(row.last_error).toMatch(/^rejected: Graph answered 429 ApplicationThrottled/);
      expect(row.next_attempt_at).toBeGreaterThanOrEqual(askedAt + RETRY_AFTER * 1000);
      expect(row.next_attempt_at).toBeLessThanOrEqual(readAt + RETRY_AFTER * 1000);
      const waited = row.next_attempt_at - row.updated_at;
      const listed = (await deliveries(h)).list.find((d) => d.to === email);
      expect(listed).toMatchObject({ status: 'retrying', attempts: 1 });
      expect(listed!.lastError).toMatch(/^rejected: Graph answered 429/);

      // Past the outbox's own backoff (1 s here) and a poll or two: Retry-After decides, nothing is sent.
      await sleep(2500);
      expect(await rowTo(h, email)).toMatchObject({ status: 'retrying', attempts: 1 });
      expect(h.graph.requests.filter((r) => r.clientId === app.clientId).map((r) => r.status)).toEqual([429]);

      h.clock.advance(RETRY_AFTER * 1000);
      const [mail] = await waitForGraph(h, email, 1);
      expectGraphMail(mail!, app.clientId, 'secret');
      await waitForRow(h, email, 'sent');
      await sleep(1500);
      expect(graphTo(h, email)).toHaveLength(1);
      expect(await rowTo(h, email)).toMatchObject({ status: 'sent', attempts: 2, last_error: null });
      expect(h.graph.requests.filter((r) => r.clientId === app.clientId).map((r) => r.status)).toEqual([429, 202]);
      // The link of the email that did arrive works (the first attempt's token was dropped).
      expect((await post(h, '/api/auth/reset-password/verify', { token: resetTokenOf(mail!.html, mail!.text, h.publicUrl) })).status).toBe(200);
      console.log(`[${dialect}] Graph 429 Retry-After ${RETRY_AFTER}: next_attempt_at ${waited} ms after the failure; still retrying 2.5 s later; delivered once after the clock passed it`);
    });

    it('takes a new token when Graph refuses one with 401, and delivers once', async () => {
      const app = await h.register('refused');
      await saveSettings(h, graphSettings(app));
      const email = 'refused-token@example.org';
      await addUser(h.ctx, { email });
      h.graph.failNext({ status: 401, code: 'InvalidAuthenticationToken', message: 'Lifetime validation failed, the token is expired.' });

      await forgot(h, email);
      const row = await waitForRow(h, email, 'retrying');
      expect(row.last_error).toMatch(/^auth_failed: Graph answered 401 InvalidAuthenticationToken/);
      h.clock.advance(1000);
      const [mail] = await waitForGraph(h, email, 1);
      await waitForRow(h, email, 'sent');
      await sleep(1500);
      expect(graphTo(h, email)).toHaveLength(1);
      const issued = h.entra.issued.filter((t) => t.clientId === app.clientId);
      const statuses = h.graph.requests.filter((r) => r.clientId === app.clientId).map((r) => r.status);
      console.log(
        `[${dialect}] Graph 401 once: ${h.entra.tokenRequests(app.clientId, GRAPH_SCOPE)} token request(s), ${issued.length} token(s) issued, ` +
          `Graph answered ${statuses.join(', ')}, the delivered message carried ${mail!.token === issued[0] ? 'the refused (first) token' : 'a new token'}`,
      );
      expect(statuses).toEqual([401, 202]);
      expect(await rowTo(h, email)).toMatchObject({ status: 'sent', attempts: 2 });
      expect(h.entra.tokenRequests(app.clientId, GRAPH_SCOPE), 'token requests to Entra ID: the retry must not present the token Graph refused').toBe(2);
      expect(issued).toHaveLength(2);
      expect(mail!.token).toBe(issued[1]);
    });

    it('does not present a token Graph refuses again: a revoked token is replaced and the email delivered', async () => {
      const { app, second } = await firstOfTwoSent(h, 'revoked');

      // Entra ID revokes the app's tokens (as after a password reset of the app or a CAE event):
      // Graph refuses the cached token with 401 InvalidAuthenticationToken, by itself, every time.
      h.entra.revokeAll();
      const from = h.graph.requests.length;
      await forgot(h, second);
      await waitForRow(h, second, 'retrying');
      // Backoffs of 1, 2 and 4 s: three more tries at most, each with the token the token source now asks for.
      let row = await rowTo(h, second);
      for (let i = 0; i < 8 && row?.status !== 'sent'; i += 1) {
        h.clock.advance(8000);
        await sleep(700);
        row = await rowTo(h, second);
      }
      const statuses = h.graph.requests.slice(from).map((r) => r.status);
      const requests = h.entra.tokenRequests(app.clientId, GRAPH_SCOPE);
      // Leaves nothing retrying behind for the tests that follow.
      if (row?.status !== 'sent') await h.db.updateTable('mail_outbox').set({ status: 'failed' }).where('to_address', '=', second).execute();
      console.log(
        `[${dialect}] revoked token: Graph answered ${statuses.join(', ')}; ${requests} token request(s) in all; the delivery is ${row?.status} after ${row?.attempts} attempt(s), last error ${row?.last_error}`,
      );
      expect(statuses[0]).toBe(401);
      expect(requests, 'a new token after the 401').toBe(2);
      expect(row).toMatchObject({ status: 'sent', attempts: 2 });
      expect(graphTo(h, second)).toHaveLength(1);
    });

    it('delivers 30 queued emails exactly once while Graph answers 503 and 429 at random', { timeout: 120_000 }, async () => {
      const app = await h.register('burst');
      await saveSettings(h, graphSettings(app));
      const emails = Array.from({ length: 30 }, (_, i) => `burst${String(i).padStart(2, '0')}@example.org`);
      for (const email of emails) await addUser(h.ctx, { email });

      // All 30 are queued before the worker (concurrency 10, its default) sees any.
      await h.ctx.outbox.stop();
      let queued: { status: string }[];
      try {
        await Promise.all(emails.map((email) => forgot(h, email)));
        queued = await h.db.selectFrom('mail_outbox').select(['status']).where('lookup_email', 'in', emails).execute();
      } catch (err) {
        h.ctx.outbox.start();
        throw err;
      }
      expect(queued).toHaveLength(30);
      expect(queued.every((r) => r.status === 'queued')).toBe(true);

      // Each sendMail that reaches the fake decides, at random, whether Graph refuses it: the failure
      // is queued on the fake in the same tick as the request is recorded, before its answer is chosen.
      const seed = Number(process.env.TRANSPORTS_FLOW_SEED ?? Date.now() % 1_000_000);
      const random = seeded(seed);
      const requests = h.graph.requests;
      const push = requests.push.bind(requests);
      let injected = 0;
      requests.push = (...items) => {
        if (injected < 40 && random() < 0.4) {
          injected += 1;
          h.graph.failNext(random() < 0.5 ? GRAPH_ERRORS.serviceUnavailable(1) : GRAPH_ERRORS.throttled(1));
        }
        return push(...items);
      };
      // Retries are due in seconds of clock time: the clock runs ten times faster meanwhile.
      const ticker = setInterval(() => h.clock.advance(1000), 100);
      const started = performance.now();
      try {
        h.ctx.outbox.start();
        await waitFor('every burst recipient to get an email', () => (emails.every((e) => graphTo(h, e).length >= 1) ? true : undefined), 90_000);
        await waitFor('every burst delivery to be sent', async () => {
          const rows = await h.db.selectFrom('mail_outbox').select(['status']).where('to_address', 'in', emails).execute();
          return rows.length === 30 && rows.every((r) => r.status === 'sent') ? rows : undefined;
        });
        await sleep(2000);
      } finally {
        h.ctx.outbox.start();
        clearInterval(ticker);
        delete (requests as { push?: unknown }).push;
      }
      const seconds = (performance.now() - started) / 1000;
      const counts = emails.map((e) => graphTo(h, e).length);
      expect(counts).toEqual(emails.map(() => 1));
      const rows = await h.db.selectFrom('mail_outbox').select(['status', 'attempts', 'to_address', 'lookup_email']).where((eb) => eb.or([eb('to_address', 'in', emails), eb('lookup_email', 'in', emails)])).execute();
      expect(rows).toHaveLength(30);
      expect(rows.filter((r) => r.status !== 'sent')).toEqual([]);
      const statuses = h.graph.requests.filter((r) => r.clientId === app.clientId).map((r) => r.status);
      const tally = { 202: statuses.filter((s) => s === 202).length, 429: statuses.filter((s) => s === 429).length, 503: statuses.filter((s) => s === 503).length };
      expect(tally[202]).toBe(30);
      expect(statuses).toHaveLength(30 + injected);
      expect(tally[429] + tally[503]).toBe(injected);
      const attempts = rows.map((r) => r.attempts);
      expect(attempts.reduce((a, b) => a + b, 0)).toBe(30 + injected);
      console.log(
        `[${dialect}] burst (seed ${seed}): 30 deliveries, concurrency 10, Graph answered 202×${tally[202]}, 429×${tally[429]}, 503×${tally[503]}; ` +
          `each recipient got exactly 1; max attempts ${Math.max(...attempts)}; ${h.entra.tokenRequests(app.clientId, GRAPH_SCOPE)} token request(s); ${seconds.toFixed(1)} s`,
      );
    });

    it('fails the delivery on Graph 403 ErrorAccessDenied without retrying', async () => {
      const app = await h.register('denied');
      await saveSettings(h, graphSettings(app));
      const email = 'denied@example.org';
      await addUser(h.ctx, { email });
      h.graph.failNext(GRAPH_ERRORS.accessDenied());

      await forgot(h, email);
      const row = await waitForRow(h, email, 'failed');
      expect(row.attempts).toBe(1);
      expect(row.last_error).toMatch(/^permission_denied: Graph answered 403 ErrorAccessDenied/);
      const listed = (await deliveries(h)).list.find((d) => d.to === email);
      expect(listed).toMatchObject({ status: 'failed', attempts: 1 });
      expect(listed!.lastError).toMatch(/^permission_denied:/);
      // Well past any backoff: still one request, no email (a retry would have gone through).
      h.clock.advance(120_000);
      await sleep(2500);
      expect(await rowTo(h, email)).toMatchObject({ status: 'failed', attempts: 1 });
      expect(h.graph.requests.filter((r) => r.clientId === app.clientId).map((r) => r.status)).toEqual([403]);
      expect(graphTo(h, email)).toHaveLength(0);
      const audit = await h.db.selectFrom('audit_events').select(['type', 'detail']).where('type', '=', 'reset_email_failed').execute();
      expect(audit.some((a) => String(a.detail).includes('permission_denied'))).toBe(true);
      console.log(`[${dialect}] Graph 403: delivery failed after 1 attempt (${row.last_error}), not retried`);
    });

    it('picks up a rotated client secret once the secret cache has expired', async () => {
      const { app, second } = await firstOfTwoSent(h, 'rotate');

      // Rotation in the vault: a new value under the same name, and the old one removed from the app.
      const rotated = newClientSecret();
      h.secretValues.push(rotated);
      await h.vault.set(app.secretName, rotated);
      h.apps[app.clientId] = { secret: rotated };
      // The running server still holds the old value until SECRETS_CACHE_SECONDS have passed.
      expect(await h.secrets.get(app.secretName)).toBe(app.secret);
      h.clock.advance((SECRETS_CACHE_SECONDS + 1) * 1000);
      expect(await h.secrets.get(app.secretName)).toBe(rotated);

      await forgot(h, second);
      const [mail] = await waitForGraph(h, second, 1);
      await waitForRow(h, second, 'sent');
      expectGraphMail(mail!, app.clientId, 'secret');
      const issued = h.entra.issued.filter((t) => t.clientId === app.clientId);
      expect(h.entra.tokenRequests(app.clientId, GRAPH_SCOPE)).toBe(2);
      expect(issued).toHaveLength(2);
      expect(mail!.token).toBe(issued[1]);
      // Every token request of this app succeeded: the second one could only have used the new secret.
      expect(h.entra.requests.filter((r) => r.clientId === app.clientId).map((r) => r.status)).toEqual([200, 200]);
      console.log(`[${dialect}] rotation: after ${SECRETS_CACHE_SECONDS + 1} s of clock, the next send took a token with the new secret (2 token requests, both 200) and delivered`);
    });

    it('keeps every token and secret value out of mail_outbox, audit_events, the deliveries API and the logs', async () => {
      const outbox = await h.db.selectFrom('mail_outbox').selectAll().execute();
      const audit = await h.db.selectFrom('audit_events').selectAll().execute();
      const settings = await h.db.selectFrom('settings').selectAll().execute();
      const api = (await deliveries(h)).body;
      const logs = h.ctx.logs.join('');
      expect(outbox.length).toBeGreaterThanOrEqual(50);
      expect(audit.some((a) => a.type === 'reset_email_failed')).toBe(true);
      expect(logs.length).toBeGreaterThan(0);
      const places = { mail_outbox: JSON.stringify(outbox), audit_events: JSON.stringify(audit), settings: JSON.stringify(settings), deliveries: api, logs };
      const keyLine = h.clientCert.privateKeyPem.split('\n').find((l) => l.length > 40 && !l.startsWith('-----'))!;
      expect(h.secretValues.length).toBeGreaterThanOrEqual(8);
      for (const [place, text] of Object.entries(places)) {
        expect(text, place).not.toContain(TOKEN_PREFIX);
        expect(text, place).not.toMatch(/Bearer\s+\S/);
        expect(text, place).not.toContain('PRIVATE KEY');
        expect(text, place).not.toContain(keyLine);
        for (const secret of h.secretValues) expect(text.includes(secret), `${place} holds a client secret`).toBe(false);
      }
      console.log(`[${dialect}] leak check: ${outbox.length} outbox rows, ${audit.length} audit rows, ${h.ctx.logs.length} log lines, ${h.secretValues.length} client secrets: no token or secret found`);
    });
  });
}
