import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diagnoseEmail as diagnoseWith, type DiagnoseInput, type DiagnoseResult } from '../../src/mail/diagnose.js';
import { createTokenSource } from '../../src/mail/entra.js';
import { normalizeEmailSettings, saveEmailSettings, type EmailSettings } from '../../src/mail/settings.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import type { SecretStore } from '../../src/secrets/store.js';
import { FakeClock } from '../../src/clock.js';
import { createDb, migrateToLatest } from '../../src/db/index.js';
import { assertBuilt, runCli, tempDataDir } from '../helpers/cli.js';
import { closedPort } from '../secrets/azure-fakes.js';
import { GRAPH_ERRORS, makeClientCertificate, sendAs, startEntraFakes, type ClientCertificate, type FakeEntraId, type FakeGraph, type FakeXoauth2SmtpServer } from './ms365-fakes.js';
import { expectLoopbackOnly, RECIPIENT, SENDER, TENANT, TENANT_DOMAIN, testApps, testCaOrSkip, watchNetworkOfEachTest, watchNetworkOfFile } from './ms365-setup.js';
import { expectFailure, expectGeneratedHeaders, expectNothingSecret, expectSuccess, graphSettings, MAIL_SECRETS, MESSAGE_ID_DOMAIN, oauth2Settings, STAGES } from './transports-support.js';

// The staged email check (src/mail/diagnose.ts) for Microsoft 365, run for real: @azure/identity
// (MSAL inside), fetch and nodemailer against the fakes of ms365-fakes.ts on 127.0.0.1. Each
// failure Microsoft 365 is known for must come out as its error code, at its stage, with the
// advice of src/mail/advice.ts. Managed identity: transports-diagnose-mi.test.ts (MSAL statics).

const ca = await testCaOrSkip('the Microsoft 365 transport checks');

const SECRET_APP = '33333333-cccc-4ccc-8ccc-000000000001';
const CERT_APP = '33333333-cccc-4ccc-8ccc-000000000002';
const EXPIRED_APP = '33333333-cccc-4ccc-8ccc-000000000003';
/** Known to Entra ID, but given neither the mailbox in Graph nor in Exchange Online's SMTP. */
const UNPERMITTED_APP = '33333333-cccc-4ccc-8ccc-000000000004';
const UNKNOWN_APP = '33333333-cccc-4ccc-8ccc-0000000000ff';
const SECRET = 'Qw8Q~fake-client-secret-value-for-diagnose-0123';
const WRONG_SECRET = 'Qw8Q~not-the-registered-secret-value-9876543210';
/** A client secret's Secret ID, pasted where its Value belongs. */
const SECRET_ID = '5b1c3f2e-7a4d-4e8b-9c0d-1e2f3a4b5c6d';
const PASSWORD = 'Basic-auth-passw0rd-for-m365!';
const TIMEOUTS = { connect: 5_000, greeting: 5_000, socket: 15_000 };

describe.skipIf(!ca).sequential('the staged email check against Microsoft 365 fakes', () => {
  const everything = watchNetworkOfFile();
  const network = watchNetworkOfEachTest();
  let closeFakes: (() => Promise<void>) | undefined;
  let entra: FakeEntraId;
  let graph: FakeGraph;
  let smtp: FakeXoauth2SmtpServer;
  let noXoauth2: FakeXoauth2SmtpServer;
  let basicOff: FakeXoauth2SmtpServer;
  let cert: ClientCertificate;
  let otherCert: ClientCertificate;

  /** The sender address, the app's client secret, its certificate and a password, under mail names. */
  const store = (overrides: Record<string, string | undefined> = {}): SecretStore => {
    const values: Record<string, string | undefined> = {
      'smtp-from': SENDER,
      'mail-client-secret': SECRET,
      'mail-cert': cert.combinedPem,
      'smtp-password': PASSWORD,
      ...overrides,
    };
    return createMemorySecretStore(Object.fromEntries(Object.entries(values).filter((e): e is [string, string] => e[1] !== undefined)));
  };
  /** Every value a result must never show. */
  const secretValues = (): string[] => [SECRET, WRONG_SECRET, SECRET_ID, PASSWORD, cert.privateKeyPem.trim(), otherCert.privateKeyPem.trim()];

  const diagnose = async (settings: EmailSettings, input: Partial<DiagnoseInput> = {}): Promise<DiagnoseResult> => {
    const result = await diagnoseWith({
      settings,
      secrets: store(),
      secretNamePattern: MAIL_SECRETS,
      to: RECIPIENT,
      authorityHost: entra.url,
      graphBaseUrl: graph.url,
      messageIdDomain: MESSAGE_ID_DOMAIN,
      timeoutsMs: TIMEOUTS,
      ...input,
    });
    expectNothingSecret(result, secretValues());
    return result;
  };

  beforeAll(async () => {
    [cert, otherCert] = await Promise.all([makeClientCertificate('/CN=gatehouse-mail'), makeClientCertificate('/CN=not-registered')]);
    const apps = testApps({ secretApp: SECRET_APP, certApp: CERT_APP, expiredApp: EXPIRED_APP, unpermittedApp: UNPERMITTED_APP }, SECRET, cert.certificatePem);
    const permissions = sendAs(SENDER, SECRET_APP, CERT_APP);
    ({ entra, graph, smtp: { smtp, noXoauth2, basicOff }, close: closeFakes } = await startEntraFakes(ca!, {
      tenants: { [TENANT]: { domains: [TENANT_DOMAIN], apps } },
      graph: { mailboxes: [SENDER], permissions },
      smtp: { smtp: { permissions }, noXoauth2: { permissions, authMethods: ['LOGIN', 'PLAIN'] }, basicOff: { basicAuthDisabled: true } },
    }));
  });

  afterAll(async () => {
    await closeFakes?.();
  });

  describe('success', () => {
    it('graph with a client secret: token, then sendMail as MIME with Auto-Submitted and our Message-ID, text before HTML', async () => {
      const before = graph.messages.length;
      const result = await diagnose(graphSettings({ clientId: SECRET_APP }));
      expectSuccess(result, 'graph');
      expect(result.stages.find((s) => s.name === 'token')!.detail).toBe(`a token for https://graph.microsoft.com/.default from ${entra.url}`);
      expect(result.stages.find((s) => s.name === 'send')!.detail).toMatch(/^accepted for alice@example\.org \(202 Accepted/);

      expect(graph.messages.length - before).toBe(1);
      const message = graph.messages.at(-1)!;
      expect(message).toMatchObject({ sender: SENDER, format: 'mime', from: SENDER, to: [RECIPIENT], token: { clientId: SECRET_APP, via: 'secret' } });
      expectGeneratedHeaders(message);
      const raw = message.raw!;
      expect(raw.indexOf('Content-Type: text/plain')).toBeGreaterThan(-1);
      expect(raw.indexOf('Content-Type: text/plain')).toBeLessThan(raw.indexOf('Content-Type: text/html'));
      expect(entra.tokenRequests(SECRET_APP, 'https://graph.microsoft.com/.default')).toBeGreaterThan(0);
      expectLoopbackOnly(network, 2);
    });

    it('graph with a client secret and the tenant named by its domain', async () => {
      const before = graph.messages.length;
      expectSuccess(await diagnose(graphSettings({ clientId: SECRET_APP, tenantId: TENANT_DOMAIN })), 'graph');
      expect(graph.messages.length - before).toBe(1);
    });

    it('graph with a certificate (the app registered with its public part): a signed client assertion, no secret', async () => {
      const before = graph.messages.length;
      entra.requests.length = 0;
      const result = await diagnose(graphSettings({ clientId: CERT_APP, entraCredential: 'certificate', clientSecretName: null, certificateName: 'mail-cert' }), {
        secrets: store({ 'mail-client-secret': undefined }),
      });
      expectSuccess(result, 'graph');
      expect(result.stages.find((s) => s.name === 'secrets')!.detail).toBe(`sender ${SENDER}; certificate and key from "mail-cert"`);
      const tokenRequest = entra.requests.find((r) => r.path.endsWith('/oauth2/v2.0/token'))!;
      expect(tokenRequest).toMatchObject({ status: 200, clientId: CERT_APP, form: { client_assertion: '[redacted]' } });
      expect(tokenRequest.form!.client_secret).toBeUndefined();

      expect(graph.messages.length - before).toBe(1);
      const message = graph.messages.at(-1)!;
      expect(message).toMatchObject({ sender: SENDER, to: [RECIPIENT], token: { clientId: CERT_APP, via: 'assertion' } });
      expectGeneratedHeaders(message);
      expectNothingSecret(result, [cert.combinedPem.trim(), cert.certificatePem.trim()]);
    });

    it('smtp-oauth2 with a client secret: an Exchange token, STARTTLS, AUTH XOAUTH2, one message with the text part first', async () => {
      const before = smtp.messages.length;
      const attempts = smtp.authAttempts.length;
      const result = await diagnose(oauth2Settings(smtp.port, { clientId: SECRET_APP }));
      expectSuccess(result, 'smtp-oauth2');
      expect(result.stages.find((s) => s.name === 'token')!.detail).toBe(`a token for https://outlook.office365.com/.default from ${entra.url}`);
      expect(result.stages.find((s) => s.name === 'tls')!.detail).toMatch(/^STARTTLS, /);
      expect(result.stages.find((s) => s.name === 'auth')!.detail).toBe(`signed in as ${SENDER} with an Entra ID token (XOAUTH2)`);

      // The auth step and the message each sign in on their own connection, with the token only.
      const signIns = smtp.authAttempts.slice(attempts);
      expect(signIns.length).toBeGreaterThan(0);
      expect(new Set(signIns.map((a) => `${a.method} ${a.username} ${a.accepted} ${a.clientId}`))).toEqual(new Set([`XOAUTH2 ${SENDER} true ${SECRET_APP}`]));
      expect(smtp.messages.length - before).toBe(1);
      const delivery = smtp.messages.at(-1)!;
      expect(delivery).toMatchObject({ user: SENDER, envelopeFrom: SENDER, envelopeTo: [RECIPIENT], token: { clientId: SECRET_APP, resource: 'https://outlook.office365.com' } });
      expectGeneratedHeaders({ autoSubmitted: delivery.parsed.headers.get('auto-submitted') as string | undefined, messageId: delivery.parsed.messageId });
      // The text part comes first: before any HTML part (here the message is text only).
      const textAt = delivery.raw.search(/^Content-Type: text\/plain/im);
      const htmlAt = delivery.raw.search(/^Content-Type: text\/html/im);
      expect(textAt).toBeGreaterThan(-1);
      expect(htmlAt === -1 || textAt < htmlAt).toBe(true);
      expect(delivery.parsed.text).toMatch(/^This is a test message from Gatehouse\./);
    });
  });

  describe('Entra ID refuses the token', () => {
    it('AADSTS7000215 (a wrong secret, e.g. the Secret ID) → auth_failed at token', async () => {
      const result = await diagnose(graphSettings({ clientId: SECRET_APP }), { secrets: store({ 'mail-client-secret': SECRET_ID }) });
      expectFailure(result, 'graph', {
        error: 'auth_failed',
        stage: 'token',
        message: /^AADSTS7000215: Invalid client secret provided\./,
        hint: /Value — not its Secret ID.*"mail-client-secret"/,
      });
    });

    it('AADSTS7000215 through smtp-oauth2 too', async () => {
      const result = await diagnose(oauth2Settings(smtp.port, { clientId: SECRET_APP }), { secrets: store({ 'mail-client-secret': WRONG_SECRET }) });
      expectFailure(result, 'smtp-oauth2', { error: 'auth_failed', stage: 'token', message: /^AADSTS7000215:/, hint: /Value — not its Secret ID/ });
    });

    it('AADSTS7000222 (every secret of the app has expired) → auth_failed at token', async () => {
      const result = await diagnose(graphSettings({ clientId: EXPIRED_APP }));
      expectFailure(result, 'graph', {
        error: 'auth_failed',
        stage: 'token',
        message: /^AADSTS7000222: The provided client secret keys for app '33333333-cccc-4ccc-8ccc-000000000003' are expired\./,
        hint: /^The client secret has expired \(AADSTS7000222\)\. Add a new one .*"mail-client-secret"/,
      });
    });

    it('AADSTS700016 (no such app in the tenant) → auth_failed at token', async () => {
      const result = await diagnose(graphSettings({ clientId: UNKNOWN_APP }));
      expectFailure(result, 'graph', {
        error: 'auth_failed',
        stage: 'token',
        message: /^AADSTS700016: Application with identifier '33333333-cccc-4ccc-8ccc-0000000000ff' was not found/,
        hint: new RegExp(`^No application with client id ${UNKNOWN_APP} exists in tenant ${TENANT} \\(AADSTS700016\\)`),
      });
    });

    it('AADSTS90002 (no such tenant) → auth_failed at token, told apart from an outage', async () => {
      const result = await diagnose(graphSettings({ clientId: SECRET_APP, tenantId: 'fabrikam.onmicrosoft.com' }));
      expectFailure(result, 'graph', {
        error: 'auth_failed',
        stage: 'token',
        message: /^AADSTS90002: Tenant 'fabrikam\.onmicrosoft\.com' not found\./,
        hint: /^Tenant fabrikam\.onmicrosoft\.com was not found \(AADSTS90002\)/,
      });
    });

    it('AADSTS700027 (a certificate the app does not have) → auth_failed at token with the certificate hint', async () => {
      const result = await diagnose(graphSettings({ clientId: CERT_APP, entraCredential: 'certificate', clientSecretName: null, certificateName: 'mail-cert' }), {
        secrets: store({ 'mail-cert': otherCert.combinedPem }),
      });
      expectFailure(result, 'graph', {
        error: 'auth_failed',
        stage: 'token',
        message: /^AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application\./,
        hint: /^Entra ID refused the client certificate: upload its public part .* in "mail-cert"\.$/,
      });
    });
  });

  describe('the secrets step', () => {
    it('a certificate secret that is not PEM (e.g. a PKCS#12 in base64) → secret_not_found at secrets, nothing asked of Entra ID', async () => {
      const pfxLike = Buffer.from('not a pem file: 0\x82\x0a\x01 PKCS#12 bytes').toString('base64');
      const requests = entra.requests.length;
      const result = await diagnose(graphSettings({ clientId: CERT_APP, entraCredential: 'certificate', clientSecretName: null, certificateName: 'mail-cert' }), {
        secrets: store({ 'mail-cert': pfxLike }),
      });
      expectFailure(result, 'graph', {
        error: 'secret_not_found',
        stage: 'secrets',
        message: /^The secret "mail-cert" does not hold a certificate and its private key in PEM\.$/,
        hint: /content type PEM \(application\/x-pem-file\).*under "mail-cert"/,
      });
      expect(JSON.stringify(result)).not.toContain(pfxLike);
      expect(entra.requests.length).toBe(requests);
    });

    it('a certificate without its private key → secret_not_found at secrets', async () => {
      const result = await diagnose(graphSettings({ clientId: CERT_APP, entraCredential: 'certificate', clientSecretName: null, certificateName: 'mail-cert' }), {
        secrets: store({ 'mail-cert': cert.certificatePem }),
      });
      expectFailure(result, 'graph', { error: 'secret_not_found', stage: 'secrets', message: /does not hold a certificate and its private key in PEM/, hint: /content type PEM/ });
    });

    it('the client secret missing from the store → secret_not_found at secrets', async () => {
      const requests = entra.requests.length;
      const result = await diagnose(graphSettings({ clientId: SECRET_APP }), { secrets: store({ 'mail-client-secret': undefined }) });
      expectFailure(result, 'graph', {
        error: 'secret_not_found',
        stage: 'secrets',
        message: /^The secret "mail-client-secret" \(the app's client secret\) was not found in the memory secret store\.$/,
        hint: /^Add the secret "mail-client-secret" to the secret store, or correct the name on the Settings page\.$/,
      });
      expect(entra.requests.length).toBe(requests);
    });
  });

  describe('Entra ID unreachable', () => {
    it('AZURE_AUTHORITY_HOST on a closed port → connect_failed at token, within ~20 s', async () => {
      const authorityHost = `https://127.0.0.1:${await closedPort()}`;
      const started = Date.now();
      const result = await diagnose(graphSettings({ clientId: SECRET_APP }), { authorityHost });
      const elapsed = Date.now() - started;
      expectFailure(result, 'graph', {
        error: 'connect_failed',
        stage: 'token',
        message: /127\.0\.0\.1:\d+.*(could not be reached|ECONNREFUSED)|ECONNREFUSED|network|fetch failed/i,
        hint: new RegExp(`^Entra ID \\(${authorityHost.replace(/[.:/]/g, '\\$&')}\\) could not be reached`),
      });
      expect(elapsed).toBeLessThan(20_000);
    }, 30_000);
  });

  describe('Microsoft Graph refuses the message', () => {
    it('403 ErrorAccessDenied (the app may not send as the mailbox) → permission_denied at send', async () => {
      const result = await diagnose(graphSettings({ clientId: UNPERMITTED_APP }));
      expectFailure(result, 'graph', {
        error: 'permission_denied',
        stage: 'send',
        message: /^Graph answered 403 ErrorAccessDenied: Access is denied\. Check credentials and try again\.\.?$/,
        hint: /^The app may not send as gatehouse@contoso\.example\. Give it Mail\.Send for this mailbox: with Exchange RBAC for Applications .*application access policy/,
      });
      expect(graph.requests.at(-1)).toMatchObject({ status: 403, errorCode: 'ErrorAccessDenied', clientId: UNPERMITTED_APP });
    });

    it('404 ErrorInvalidUser (no such mailbox) → rejected at send', async () => {
      const result = await diagnose(graphSettings({ clientId: SECRET_APP, emailSecretName: null, senderAddress: 'nobody@contoso.example' }));
      expectFailure(result, 'graph', {
        error: 'rejected',
        stage: 'send',
        message: /^Graph answered 404 ErrorInvalidUser: The requested user 'nobody@contoso\.example' is invalid\./,
        hint: /^nobody@contoso\.example is not an Exchange Online mailbox of this tenant/,
      });
    });

    it('404 MailboxNotEnabledForRESTAPI (inactive or on-premises mailbox) → rejected at send', async () => {
      graph.failNext(GRAPH_ERRORS.mailboxNotEnabled());
      const result = await diagnose(graphSettings({ clientId: SECRET_APP }));
      expectFailure(result, 'graph', {
        error: 'rejected',
        stage: 'send',
        message: /^Graph answered 404 MailboxNotEnabledForRESTAPI: The mailbox is either inactive, soft-deleted, or is hosted on-premise\./,
        hint: /^gatehouse@contoso\.example is not an Exchange Online mailbox of this tenant .*hosted on-premises/,
      });
    });

    it('400 (a message Graph will not take) → rejected at send', async () => {
      graph.failNext(GRAPH_ERRORS.invalidRecipients());
      const result = await diagnose(graphSettings({ clientId: SECRET_APP }));
      expectFailure(result, 'graph', {
        error: 'rejected',
        stage: 'send',
        message: /^Graph answered 400 ErrorInvalidRecipients: /,
        hint: /^Microsoft Graph refused the message as sent\. Check the recipient address/,
      });
    });

    it('401 InvalidAuthenticationToken (a token Graph no longer takes: revoked after it was cached) → auth_failed at send', async () => {
      const tokens = createTokenSource({ authorityHost: entra.url });
      expectSuccess(await diagnose(graphSettings({ clientId: SECRET_APP }), { tokens }), 'graph');
      entra.revokeAll();
      const result = await diagnose(graphSettings({ clientId: SECRET_APP }), { tokens });
      expectFailure(result, 'graph', {
        error: 'auth_failed',
        stage: 'send',
        message: /^Graph answered 401 InvalidAuthenticationToken: Access token validation failure\./,
        hint: /^Microsoft Graph refused the token: it must be an application \(app-only\) token .*Mail\.Send .*\(not a delegated one\)/,
      });
      expect(graph.requests.at(-1)).toMatchObject({ status: 401, errorCode: 'InvalidAuthenticationToken' });
    });

    it('401 InvalidAuthenticationToken as Graph sends it for an expired token → auth_failed at send', async () => {
      graph.failNext({ status: 401, code: 'InvalidAuthenticationToken', message: 'Lifetime validation failed, the token is expired.' });
      const result = await diagnose(graphSettings({ clientId: SECRET_APP }));
      expectFailure(result, 'graph', { error: 'auth_failed', stage: 'send', message: /^Graph answered 401 InvalidAuthenticationToken: Lifetime validation failed/, hint: /Mail\.Send/ });
    });

    it("quotes Graph's own sentence once, without doubling its full stop", async () => {
      graph.failNext(GRAPH_ERRORS.accessDenied());
      const result = await diagnose(graphSettings({ clientId: SECRET_APP }));
      const failure = expectFailure(result, 'graph', { error: 'permission_denied', stage: 'send', message: /^Graph answered 403 ErrorAccessDenied: /, hint: /Mail\.Send/ });
      expect(failure.message).toBe('Graph answered 403 ErrorAccessDenied: Access is denied. Check credentials and try again.');
    });

    it('429 with Retry-After: 7 → rejected at send, the hint says when to try again', async () => {
      graph.failNext(GRAPH_ERRORS.throttled(7));
      const result = await diagnose(graphSettings({ clientId: SECRET_APP }));
      expectFailure(result, 'graph', {
        error: 'rejected',
        stage: 'send',
        message: /^Graph answered 429 ApplicationThrottled: /,
        hint: /^Microsoft Graph is throttling this app for now: .*Try the test again in 7 s\.$/,
      });
    });
  });

  describe('Exchange Online SMTP refuses the sign-in', () => {
    it('a token the server refuses (the app not given the mailbox) → auth_failed at auth, SMTP.SendAsApp', async () => {
      const attempts = smtp.authAttempts.length;
      const result = await diagnose(oauth2Settings(smtp.port, { clientId: UNPERMITTED_APP }));
      expectFailure(result, 'smtp-oauth2', {
        error: 'auth_failed',
        stage: 'auth',
        message: /^The server refused the token: "535 5\.7\.3 Authentication unsuccessful/,
        hint: /^Exchange Online refused the app's token\. The app needs the Office 365 Exchange Online application permission SMTP\.SendAsApp/,
      });
      expect(smtp.authAttempts.slice(attempts).map((a) => `${a.method} ${a.accepted} ${a.clientId}`)).toEqual([`XOAUTH2 false ${UNPERMITTED_APP}`]);
    });

    it('a server that does not offer XOAUTH2 → auth_failed at auth, no token sent', async () => {
      const result = await diagnose(oauth2Settings(noXoauth2.port, { clientId: SECRET_APP }));
      expectFailure(result, 'smtp-oauth2', {
        error: 'auth_failed',
        stage: 'auth',
        message: new RegExp(`^127\\.0\\.0\\.1:${noXoauth2.port} offers AUTH LOGIN PLAIN but not XOAUTH2\\.$`),
        hint: /^This server does not take OAuth2 tokens \(XOAUTH2\)\. SMTP with OAuth2 is for Microsoft 365/,
      });
      expect(noXoauth2.authAttempts).toEqual([]);
    });

    it('smtp with a password where basic authentication is off: 550 5.7.30 → auth_failed at auth, use OAuth2 or Graph', async () => {
      const result = await diagnose(
        normalizeEmailSettings({ transport: 'smtp', host: '127.0.0.1', port: basicOff.port, sslEnabled: true, tlsMode: 'starttls', emailSecretName: 'smtp-from', passwordSecretName: 'smtp-password' }),
      );
      expectFailure(result, 'smtp', {
        error: 'auth_failed',
        stage: 'auth',
        message: /550 5\.7\.30 Basic authentication is not supported for Client Submission\./,
        hint: /^Microsoft 365 no longer takes SMTP with a password \(basic authentication\) for this tenant: use SMTP with OAuth2 or Microsoft Graph/,
      });
      expect(basicOff.authAttempts.at(-1)).toMatchObject({ username: SENDER, accepted: false, reply: '550 5.7.30 Basic authentication is not supported for Client Submission.' });
    });
  });

  it('talked to nothing but 127.0.0.1, over HTTPS to the fakes', () => {
    expectLoopbackOnly(everything, 10);
    const ports = new Set(everything.requests.map((r) => r.port));
    expect(ports.has(String(entra.port))).toBe(true);
    expect(ports.has(String(graph.port))).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// The built CLI: `gatehouse mail test` with saved graph settings and the local secret store.

describe.skipIf(!ca).sequential('gatehouse mail test with Microsoft Graph (the built CLI)', () => {
  const APP = '33333333-cccc-4ccc-8ccc-0000000000c1';
  let closeFakes: (() => Promise<void>) | undefined;
  let entra: FakeEntraId;
  let graph: FakeGraph;
  let dataDir: string;

  const mailTest = () =>
    runCli(['mail', 'test', '--to', 'x@example.com'], {
      env: {
        DATA_DIR: dataDir,
        NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS ?? '',
        AZURE_AUTHORITY_HOST: entra.url,
        GRAPH_BASE_URL: graph.url,
        PUBLIC_URL: `https://${MESSAGE_ID_DOMAIN}`,
      },
    });

  beforeAll(async () => {
    assertBuilt();
    ({ entra, graph, close: closeFakes } = await startEntraFakes(ca!, { tenants: { [TENANT]: { apps: { [APP]: { secret: SECRET } } } }, graph: { mailboxes: [SENDER], permissions: sendAs(SENDER, APP) } }));
    dataDir = tempDataDir();
    // The secrets go in the way an operator puts them there.
    for (const [name, value] of Object.entries({ 'smtp-from': SENDER, 'mail-client-secret': SECRET })) {
      const res = await runCli(['secrets', 'set', name], { env: { DATA_DIR: dataDir }, input: `${value}\n` });
      expect(res.code, res.stderr).toBe(0);
    }
    // There is no settings command: the row is written as the Settings page would.
    const db = createDb({ kind: 'sqlite', file: path.join(dataDir, 'gatehouse.sqlite') });
    await migrateToLatest(db);
    await saveEmailSettings(db, new FakeClock(), graphSettings({ clientId: APP }), null);
    await db.destroy();
  });

  afterAll(async () => {
    await closeFakes?.();
    if (dataDir !== undefined) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('passes: one line per stage, ✓ token and ✓ send, exit 0, one message delivered', async () => {
    const res = await mailTest();
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stderr).toBe('');
    const lines = res.stdout.trimEnd().split('\n');
    expect(lines.map((l) => /^([✓✗–]) (\S+) {2}/.exec(l)?.slice(1, 3).join(' '))).toEqual(STAGES.graph.map((name) => `✓ ${name}`));
    expect(lines).toContainEqual(expect.stringMatching(/^✓ token {2}a token for https:\/\/graph\.microsoft\.com\/\.default from https:\/\/127\.0\.0\.1:\d+$/));
    expect(lines).toContainEqual(expect.stringMatching(/^✓ send {2}accepted for x@example\.com /));
    expect(res.stdout).not.toContain(SECRET);
    expect(res.stdout).not.toMatch(/fake-entra-/);

    expect(graph.messages).toHaveLength(1);
    expect(graph.messages[0]).toMatchObject({ sender: SENDER, to: ['x@example.com'], token: { clientId: APP } });
    expectGeneratedHeaders(graph.messages[0]!);
  });

  it('fails when Graph answers 403: exit 1, one line on stderr with permission_denied', async () => {
    graph.failNext(GRAPH_ERRORS.accessDenied());
    const res = await mailTest();
    expect(res.code, res.stdout + res.stderr).toBe(1);
    const errLines = res.stderr.trimEnd().split('\n');
    expect(errLines).toHaveLength(1);
    expect(errLines[0]).toMatch(/^gatehouse: permission_denied: Graph answered 403 ErrorAccessDenied: .+ — The app may not send as gatehouse@contoso\.example\. .*Mail\.Send/);
    expect(res.stdout).toMatch(/^✗ send {2}Graph answered 403/m);
    expect(res.stdout + res.stderr).not.toContain(SECRET);
    expect(graph.messages).toHaveLength(1);
  });
});
