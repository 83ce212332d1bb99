import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AuthenticationRequiredError,
  ClientCertificateCredential,
  ClientSecretCredential,
  CredentialUnavailableError,
  type TokenCredential,
} from '@azure/identity';
import nodemailer from 'nodemailer';
import { closedPort } from '../secrets/azure-fakes.js';
import { ENTRA_ERRORS, GRAPH_ERRORS, GRAPH_SCOPE, makeClientCertificate, OUTLOOK_SCOPE, sendAs, startEntraFakes, type ClientCertificate, type FakeEntraId, type FakeGraph, type FakeXoauth2SmtpServer } from './ms365-fakes.js';
import { expectLoopbackOnly, RECIPIENT, SENDER, TENANT, TENANT_DOMAIN, testApps, testCaOrSkip, watchNetworkOfFile } from './ms365-setup.js';

// The real @azure/identity (MSAL inside) and real HTTP / SMTP clients against the local fakes.
// Managed identity lives in ms365-fakes-mi.test.ts: MSAL keeps its source and cache in statics.

const ca = await testCaOrSkip('Microsoft 365 fake tests');

const SECRET_APP = '11111111-aaaa-4aaa-8aaa-000000000001';
const CERT_APP = '11111111-aaaa-4aaa-8aaa-000000000002';
const EXPIRED_APP = '11111111-aaaa-4aaa-8aaa-000000000003';
const UNPERMITTED_APP = '11111111-aaaa-4aaa-8aaa-000000000004';
const SECRET = 'Zx8Q~fake-client-secret-value-0123456789';
const OTHER_MAILBOX = 'helpdesk@contoso.example';

async function failure(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  return error as Error & Record<string, unknown>;
}

describe.skipIf(!ca).sequential('Microsoft 365 fakes with the real @azure/identity', () => {
  const network = watchNetworkOfFile();
  let entra: FakeEntraId;
  let graph: FakeGraph;
  let smtp: FakeXoauth2SmtpServer;
  let basicOff: FakeXoauth2SmtpServer;
  let closeFakes: (() => Promise<void>) | undefined;
  let clientCert: ClientCertificate;

  const options = (): { authorityHost: string; disableInstanceDiscovery: true } => ({
    authorityHost: entra.url,
    disableInstanceDiscovery: true,
  });
  const secretCredential = (tenant = TENANT, clientId = SECRET_APP, secret = SECRET): TokenCredential =>
    new ClientSecretCredential(tenant, clientId, secret, options());
  const token = async (credential: TokenCredential, scope: string): Promise<string> =>
    (await credential.getToken(scope))!.token;

  const sendMail = (mailbox: string, accessToken: string | undefined, body: string, contentType: string): Promise<Response> =>
    fetch(`${graph.url}/v1.0/users/${encodeURIComponent(mailbox)}/sendMail`, {
      method: 'POST',
      headers: {
        'content-type': contentType,
        'client-request-id': randomUUID(),
        ...(accessToken === undefined ? {} : { authorization: `Bearer ${accessToken}` }),
      },
      body,
    });
  const jsonMail = (overrides: Record<string, unknown> = {}): string =>
    JSON.stringify({
      message: {
        subject: 'Reset your Gatehouse password',
        body: { contentType: 'Text', content: 'Your code is 123456.' },
        toRecipients: [{ emailAddress: { address: RECIPIENT } }],
        ...overrides,
      },
      saveToSentItems: false,
    });
  const mimeMail = async (): Promise<string> => {
    const composer = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
    const info = await composer.sendMail({
      from: { name: 'Gatehouse', address: SENDER },
      to: RECIPIENT,
      subject: 'Reset your Gatehouse password',
      text: 'Your code is 123456.',
      html: '<p>Your code is <b>123456</b>.</p>',
      messageId: '<reset-1@gatehouse.test>',
      headers: { 'Auto-Submitted': 'auto-generated' },
    });
    return (info.message as Buffer).toString('base64');
  };

  beforeAll(async () => {
    clientCert = await makeClientCertificate();
    const apps = testApps({ secretApp: SECRET_APP, certApp: CERT_APP, expiredApp: EXPIRED_APP, unpermittedApp: UNPERMITTED_APP }, SECRET, clientCert.certificatePem);
    const permissions = sendAs(SENDER, SECRET_APP, CERT_APP);
    ({ entra, graph, smtp: { smtp, basicOff }, close: closeFakes } = await startEntraFakes(ca!, {
      tenants: { [TENANT]: { domains: [TENANT_DOMAIN], apps } },
      graph: { mailboxes: [SENDER, OTHER_MAILBOX], permissions: [...permissions, ...sendAs(OTHER_MAILBOX, SECRET_APP)] },
      smtp: { smtp: { permissions }, basicOff: { basicAuthDisabled: true } },
    }));
  });

  afterAll(async () => {
    await closeFakes?.();
  });

  describe('Entra ID', () => {
    it('ClientSecretCredential: MSAL reads the tenant OpenID configuration, then posts client_credentials; nothing else', async () => {
      entra.requests.length = 0;
      const credential = secretCredential();
      const accessToken = await credential.getToken(GRAPH_SCOPE);

      expect(accessToken?.token).toMatch(/^fake-entra-/);
      expect(accessToken!.expiresOnTimestamp).toBeGreaterThan(Date.now() + 3_500_000);
      expect(entra.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
        `GET /${TENANT}/v2.0/.well-known/openid-configuration 200`,
        `POST /${TENANT}/oauth2/v2.0/token 200`,
      ]);
      const form = entra.requests[1]!.form!;
      expect(form).toMatchObject({
        grant_type: 'client_credentials',
        client_id: SECRET_APP,
        scope: GRAPH_SCOPE,
        client_secret: '[redacted]',
      });
      expect(entra.issued.at(-1)).toMatchObject({ tenantId: TENANT, clientId: SECRET_APP, scope: GRAPH_SCOPE, via: 'secret' });
      // The token is good for Graph only.
      expect(entra.validate(accessToken!.token, 'https://graph.microsoft.com')?.clientId).toBe(SECRET_APP);
      expect(entra.validate(accessToken!.token, GRAPH_SCOPE)).toBeDefined();
      expect(entra.validate(accessToken!.token, 'https://outlook.office365.com')).toBeUndefined();
      expect(entra.validate('fake-entra-unknown', 'https://graph.microsoft.com')).toBeUndefined();
      // The requests log never holds the secret.
      expect(JSON.stringify(entra.requests)).not.toContain(SECRET);
    });

    it('answers errors with the body and status Entra ID sends (read directly, without the SDK)', async () => {
      const response = await fetch(`${entra.url}/${TENANT}/oauth2/v2.0/token?client-request-id=0b9c7a3e-0000-4000-8000-000000000001`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: SECRET_APP, client_secret: 'wrong', scope: GRAPH_SCOPE }),
      });
      expect(response.status).toBe(401);
      const body = (await response.json()) as Record<string, unknown>;
      expect(Object.keys(body)).toEqual(['error', 'error_description', 'error_codes', 'timestamp', 'trace_id', 'correlation_id', 'error_uri']);
      expect(body).toMatchObject({
        error: 'invalid_client',
        error_codes: [7000215],
        correlation_id: '0b9c7a3e-0000-4000-8000-000000000001',
        error_uri: 'https://login.microsoftonline.com/error?code=7000215',
      });
      expect(body.timestamp).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/);
      expect(body.error_description).toBe(
        `AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${SECRET_APP}'.` +
          `\r\nTrace ID: ${String(body.trace_id)}\r\nCorrelation ID: 0b9c7a3e-0000-4000-8000-000000000001\r\nTimestamp: ${String(body.timestamp)}`,
      );

      const unknownTenant = await fetch(`${entra.url}/contoso.invalid/v2.0/.well-known/openid-configuration`);
      expect(unknownTenant.status).toBe(400);
      expect(await unknownTenant.json()).toMatchObject({ error: 'invalid_tenant', error_codes: [90002] });
      const byDomain = await fetch(`${entra.url}/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration`);
      expect(await byDomain.json()).toMatchObject({ issuer: `${entra.url}/${TENANT}/v2.0`, token_endpoint: `${entra.url}/${TENANT}/oauth2/v2.0/token` });
    });

    it('caches per credential object and scope: a second getToken does not ask again, a new credential does', async () => {
      const credential = secretCredential(TENANT, UNPERMITTED_APP);
      const first = await token(credential, GRAPH_SCOPE);
      const second = await token(credential, GRAPH_SCOPE);
      expect(second).toBe(first);
      expect(entra.tokenRequests(UNPERMITTED_APP, GRAPH_SCOPE)).toBe(1);

      await token(credential, OUTLOOK_SCOPE);
      await token(credential, OUTLOOK_SCOPE);
      expect(entra.tokenRequests(UNPERMITTED_APP, OUTLOOK_SCOPE)).toBe(1);

      const again = await token(secretCredential(TENANT, UNPERMITTED_APP), GRAPH_SCOPE);
      expect(again).not.toBe(first);
      expect(entra.tokenRequests(UNPERMITTED_APP, GRAPH_SCOPE)).toBe(2);
    });

    it('does not cache a token that expires within 5 minutes (MSAL refreshes it on every getToken)', async () => {
      entra.expiresIn = 299;
      try {
        const shortLived = secretCredential(TENANT, UNPERMITTED_APP);
        // A scope no other test asks for, so the count is this test's alone.
        const scope = 'https://short-lived.example/.default';
        await token(shortLived, scope);
        await token(shortLived, scope);
        expect(entra.tokenRequests(UNPERMITTED_APP, scope)).toBe(2);
      } finally {
        entra.expiresIn = 3600;
      }
    });

    it('ClientCertificateCredential (PEM cert + key) signs a PS256 assertion with x5t#S256 that the fake verifies', async () => {
      entra.requests.length = 0;
      const credential = new ClientCertificateCredential(TENANT, CERT_APP, { certificate: clientCert.combinedPem }, options());
      const accessToken = await token(credential, GRAPH_SCOPE);

      expect(entra.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual([
        `GET /${TENANT}/v2.0/.well-known/openid-configuration 200`,
        `POST /${TENANT}/oauth2/v2.0/token 200`,
      ]);
      const request = entra.requests[1]!;
      expect(request.form).toMatchObject({
        client_assertion: '[redacted]',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      });
      expect(request.assertionHeader).toEqual({
        alg: 'PS256',
        typ: 'JWT',
        'x5t#S256': Buffer.from(clientCert.thumbprintSha256, 'hex').toString('base64url'),
      });
      expect(entra.validate(accessToken, GRAPH_SCOPE)).toMatchObject({ clientId: CERT_APP, via: 'assertion' });

      const response = await sendMail(SENDER, accessToken, jsonMail(), 'application/json');
      expect(response.status).toBe(202);
      expect(graph.messages.at(-1)?.token.clientId).toBe(CERT_APP);
    });

    it('ClientCertificateCredential with sendCertificateChain adds x5c, and a certificate file path works too', async () => {
      entra.requests.length = 0;
      await token(
        new ClientCertificateCredential(TENANT, CERT_APP, { certificate: clientCert.combinedPem }, { ...options(), sendCertificateChain: true }),
        GRAPH_SCOPE,
      );
      const header = entra.requests.find((r) => r.assertionHeader)?.assertionHeader;
      expect(header?.x5c).toEqual([clientCert.certificatePem.replace(/-----[^-]+-----|\s/g, '')]);
    });

    describe('failures surface from getToken', () => {
      it('AADSTS7000215 wrong secret: AuthenticationRequiredError, the AADSTS text in the message, no status or code fields', async () => {
        const error = await failure(secretCredential(TENANT, SECRET_APP, 'not-the-secret').getToken(GRAPH_SCOPE));
        expect(error).toBeInstanceOf(AuthenticationRequiredError);
        expect(error.name).toBe('AuthenticationRequiredError');
        expect(error.message).toMatch(/^invalid_client: Error\(s\): 7000215 - Timestamp: \S+ \S+Z - Description: AADSTS7000215: Invalid client secret provided\./);
        expect(error.message).toContain("for a secret added to app '11111111-aaaa-4aaa-8aaa-000000000001'.");
        expect(error.message).not.toContain('not-the-secret');
        expect(error.statusCode).toBeUndefined();
        expect(error.errorResponse).toBeUndefined();
        expect(error.cause).toBeUndefined();
        expect(entra.requests.at(-1)).toMatchObject({ status: 401, errorCode: 7000215 });
      });

      it('AADSTS7000222 expired secret', async () => {
        const error = await failure(secretCredential(TENANT, EXPIRED_APP).getToken(GRAPH_SCOPE));
        expect(error.name).toBe('AuthenticationRequiredError');
        expect(error.message).toMatch(/^invalid_client: Error\(s\): 7000222 - .* - Description: AADSTS7000222: The provided client secret keys for app '11111111-aaaa-4aaa-8aaa-000000000003' are expired\./s);
        expect(entra.requests.at(-1)).toMatchObject({ status: 401, errorCode: 7000222 });
      });

      it('AADSTS700016 app not in the tenant', async () => {
        const error = await failure(secretCredential(TENANT, '99999999-aaaa-4aaa-8aaa-000000000009').getToken(GRAPH_SCOPE));
        expect(error.name).toBe('AuthenticationRequiredError');
        expect(error.message).toMatch(/^unauthorized_client: Error\(s\): 700016 - .* - Description: AADSTS700016: Application with identifier '99999999-aaaa-4aaa-8aaa-000000000009' was not found in the directory 'contoso.onmicrosoft.com'\./s);
        expect(entra.requests.at(-1)).toMatchObject({ status: 400, errorCode: 700016 });
      });

      it('AADSTS90002 unknown tenant: answered on the OpenID configuration GET, so MSAL reports endpoints_resolution_error and the AADSTS code is lost', async () => {
        entra.requests.length = 0;
        const unknownTenant = '00000000-dead-4bee-8000-000000000000';
        const error = await failure(secretCredential(unknownTenant).getToken(GRAPH_SCOPE));
        expect(error).toBeInstanceOf(CredentialUnavailableError);
        expect(error.name).toBe('CredentialUnavailableError');
        expect(error.message).toBe('endpoints_resolution_error: See https://aka.ms/msal.js.errors#endpoints_resolution_error for details');
        expect(entra.requests.map((r) => `${r.method} ${r.path} ${r.status} ${r.errorCode}`)).toEqual([
          `GET /${unknownTenant}/v2.0/.well-known/openid-configuration 400 90002`,
        ]);

        const certificateError = await failure(
          new ClientCertificateCredential(unknownTenant, CERT_APP, { certificate: clientCert.combinedPem }, options()).getToken(GRAPH_SCOPE),
        );
        expect(certificateError.name).toBe('CredentialUnavailableError');
      });

      it('an authority host that does not answer gives the same endpoints_resolution_error (after retries)', async () => {
        const port = await closedPort();
        const credential = new ClientSecretCredential(TENANT, SECRET_APP, SECRET, {
          authorityHost: `https://127.0.0.1:${port}`,
          disableInstanceDiscovery: true,
          retryOptions: { maxRetries: 0 },
        });
        const error = await failure(credential.getToken(GRAPH_SCOPE));
        expect(error.name).toBe('CredentialUnavailableError');
        expect(error.message).toBe('endpoints_resolution_error: See https://aka.ms/msal.js.errors#endpoints_resolution_error for details');
      });

      it('AADSTS700027 assertion signed by a certificate the app does not have', async () => {
        const error = await failure(
          new ClientCertificateCredential(TENANT, SECRET_APP, { certificate: clientCert.combinedPem }, options()).getToken(GRAPH_SCOPE),
        );
        expect(error.name).toBe('AuthenticationRequiredError');
        expect(error.message).toMatch(/^invalid_client: Error\(s\): 700027 - .* - Description: AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application\./s);
        expect(error.message).toContain(clientCert.thumbprintSha256);
        expect(entra.requests.at(-1)).toMatchObject({ status: 401, errorCode: 700027 });
      });

      it('AADSTS1002012: a scope without /.default', async () => {
        const error = await failure(secretCredential().getToken('https://graph.microsoft.com/Mail.Send'));
        expect(error.message).toMatch(/^invalid_scope: Error\(s\): 1002012 - /);
      });

      it('a 503 from the token endpoint is retried by the SDK (4 attempts in all), then reported like any other', async () => {
        const before = entra.tokenRequests(SECRET_APP, GRAPH_SCOPE);
        entra.failNextToken(ENTRA_ERRORS.temporarilyUnavailable());
        await expect(token(secretCredential(), GRAPH_SCOPE)).resolves.toMatch(/^fake-entra-/);
        expect(entra.tokenRequests(SECRET_APP, GRAPH_SCOPE) - before).toBe(2);

        const unavailable = ENTRA_ERRORS.temporarilyUnavailable();
        entra.failNextToken(unavailable, unavailable, unavailable, unavailable);
        const error = await failure(
          new ClientSecretCredential(TENANT, SECRET_APP, SECRET, { ...options(), retryOptions: { maxRetries: 3, retryDelayInMs: 10, maxRetryDelayInMs: 20 } }).getToken(GRAPH_SCOPE),
        );
        expect(error.name).toBe('AuthenticationRequiredError');
        expect(error.message).toMatch(/^temporarily_unavailable: Error\(s\): 50196 - /);
        expect(entra.tokenRequests(SECRET_APP, GRAPH_SCOPE) - before).toBe(6);
      });
    });
  });

  describe('Graph sendMail', () => {
    let graphToken: string;
    let outlookToken: string;

    beforeAll(async () => {
      const credential = secretCredential();
      graphToken = await token(credential, GRAPH_SCOPE);
      outlookToken = await token(credential, OUTLOOK_SCOPE);
    });

    it('accepts the JSON form with 202 and an empty body, and records it', async () => {
      const before = graph.messages.length;
      const response = await sendMail(SENDER, graphToken, jsonMail(), 'application/json');
      expect(response.status).toBe(202);
      expect(await response.text()).toBe('');
      expect(response.headers.get('request-id')).toMatch(/^[0-9a-f-]{36}$/);
      expect(graph.messages.length).toBe(before + 1);
      expect(graph.messages.at(-1)).toMatchObject({
        sender: SENDER,
        format: 'json',
        to: [RECIPIENT],
        subject: 'Reset your Gatehouse password',
        text: 'Your code is 123456.',
        html: undefined,
        saveToSentItems: false,
        token: { clientId: SECRET_APP, via: 'secret' },
      });
    });

    it('accepts the MIME form (text/plain, base64 of the RFC 5322 message) and keeps its headers', async () => {
      const response = await sendMail(SENDER, graphToken, await mimeMail(), 'text/plain');
      expect(response.status).toBe(202);
      const message = graph.messages.at(-1)!;
      expect(message).toMatchObject({
        sender: SENDER,
        format: 'mime',
        from: SENDER,
        to: [RECIPIENT],
        subject: 'Reset your Gatehouse password',
        text: 'Your code is 123456.',
        html: '<p>Your code is <b>123456</b>.</p>',
        messageId: '<reset-1@gatehouse.test>',
        autoSubmitted: 'auto-generated',
      });
      expect(message.headers['auto-submitted']).toBe('auto-generated');
      expect(message.raw!.indexOf('text/plain')).toBeLessThan(message.raw!.indexOf('text/html'));
    });

    it('refuses JSON internetMessageHeaders that are not X- headers, as Graph does (Auto-Submitted needs the MIME form)', async () => {
      const response = await sendMail(
        SENDER,
        graphToken,
        jsonMail({ internetMessageHeaders: [{ name: 'Auto-Submitted', value: 'auto-generated' }] }),
        'application/json',
      );
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('InvalidInternetMessageHeader');

      const ok = await sendMail(SENDER, graphToken, jsonMail({ internetMessageHeaders: [{ name: 'X-Gatehouse', value: 'reset' }] }), 'application/json');
      expect(ok.status).toBe(202);
      expect(graph.messages.at(-1)?.headers).toEqual({ 'x-gatehouse': 'reset' });
    });

    it('answers 401 InvalidAuthenticationToken without a token, with an unknown one and with one for Exchange', async () => {
      const cases: [string | undefined, string][] = [
        [undefined, 'Access token is empty.'],
        ['fake-entra-made-up', 'Access token validation failure. Invalid audience.'],
        [outlookToken, 'Access token validation failure. Invalid audience.'],
      ];
      for (const [accessToken, message] of cases) {
        const response = await sendMail(SENDER, accessToken, jsonMail(), 'application/json');
        expect(response.status).toBe(401);
        const body = (await response.json()) as { error: { code: string; message: string; innerError: Record<string, string> } };
        expect(body.error.code).toBe('InvalidAuthenticationToken');
        expect(body.error.message).toBe(message);
        expect(Object.keys(body.error.innerError)).toEqual(['date', 'request-id', 'client-request-id']);
      }
    });

    it('answers 404 ErrorInvalidUser for an unknown mailbox and 403 ErrorAccessDenied for an app without permission on it', async () => {
      const unknown = await sendMail('nobody@contoso.example', graphToken, jsonMail(), 'application/json');
      expect(unknown.status).toBe(404);
      expect(await unknown.json()).toMatchObject({
        error: { code: 'ErrorInvalidUser', message: "The requested user 'nobody@contoso.example' is invalid." },
      });

      const unpermittedToken = await token(secretCredential(TENANT, UNPERMITTED_APP), GRAPH_SCOPE);
      const denied = await sendMail(SENDER, unpermittedToken, jsonMail(), 'application/json');
      expect(denied.status).toBe(403);
      expect(await denied.json()).toMatchObject({
        error: { code: 'ErrorAccessDenied', message: 'Access is denied. Check credentials and try again.' },
      });
    });

    it('validates the body: bad base64, no recipients, bad JSON', async () => {
      const badBase64 = await sendMail(SENDER, graphToken, 'this is not base64!', 'text/plain');
      expect(badBase64.status).toBe(400);
      expect(await badBase64.json()).toMatchObject({ error: { code: 'ErrorMimeContentInvalidBase64String' } });

      const noRecipients = await sendMail(SENDER, graphToken, jsonMail({ toRecipients: [] }), 'application/json');
      expect(noRecipients.status).toBe(400);
      expect(await noRecipients.json()).toMatchObject({ error: { code: 'ErrorInvalidRecipients' } });

      const badJson = await sendMail(SENDER, graphToken, '{"message":', 'application/json');
      expect(badJson.status).toBe(400);
      expect(await badJson.json()).toMatchObject({ error: { code: 'BadRequest' } });
    });

    it('plays scripted failures in order, each with the real code, message and headers', async () => {
      graph.failNext(
        GRAPH_ERRORS.invalidRecipients(),
        GRAPH_ERRORS.accessDenied(),
        GRAPH_ERRORS.mailboxNotEnabled(),
        GRAPH_ERRORS.throttled(7),
      );
      const expected: [number, string, string][] = [
        [400, 'ErrorInvalidRecipients', "At least one recipient isn't valid., A message can't be sent because it contains no recipients."],
        [403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.'],
        [404, 'MailboxNotEnabledForRESTAPI', 'The mailbox is either inactive, soft-deleted, or is hosted on-premise.'],
        [429, 'ApplicationThrottled', 'Application is over its MailboxConcurrency limit.'],
      ];
      for (const [status, code, message] of expected) {
        const response = await sendMail(SENDER, graphToken, jsonMail(), 'application/json');
        expect(response.status).toBe(status);
        const body = (await response.json()) as { error: { code: string; message: string; innerError: Record<string, string> } };
        expect(body.error).toMatchObject({ code, message });
        expect(body.error.innerError.date).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
        if (status === 429) expect(response.headers.get('retry-after')).toBe('7');
      }
      expect((await sendMail(SENDER, graphToken, jsonMail(), 'application/json')).status).toBe(202);
    });

    it('fails one mailbox until cleared', async () => {
      graph.failMailbox(OTHER_MAILBOX, GRAPH_ERRORS.mailboxNotEnabled());
      expect((await sendMail(OTHER_MAILBOX, graphToken, jsonMail(), 'application/json')).status).toBe(404);
      expect((await sendMail(OTHER_MAILBOX.toUpperCase(), graphToken, jsonMail(), 'application/json')).status).toBe(404);
      expect((await sendMail(SENDER, graphToken, jsonMail(), 'application/json')).status).toBe(202);
      graph.failMailbox(OTHER_MAILBOX, undefined);
      expect((await sendMail(OTHER_MAILBOX, graphToken, jsonMail(), 'application/json')).status).toBe(202);
      expect(graph.messages.at(-1)?.sender).toBe(OTHER_MAILBOX);
    });

    it('records requests without tokens', () => {
      expect(graph.requests.length).toBeGreaterThan(0);
      const log = JSON.stringify(graph.requests);
      expect(log).not.toContain(graphToken);
      expect(log).not.toContain(outlookToken);
    });
  });

  describe('SMTP with XOAUTH2', () => {
    const transport = (server: FakeXoauth2SmtpServer, auth: object) =>
      nodemailer.createTransport({
        host: '127.0.0.1',
        port: server.port,
        secure: false,
        requireTLS: true,
        auth,
        connectionTimeout: 5_000,
        greetingTimeout: 5_000,
        socketTimeout: 5_000,
      } as Parameters<typeof nodemailer.createTransport>[0]);
    const message = {
      from: { name: 'Gatehouse', address: SENDER },
      to: RECIPIENT,
      subject: 'Reset your Gatehouse password',
      text: 'Your code is 123456.',
      html: '<p>Your code is <b>123456</b>.</p>',
      headers: { 'Auto-Submitted': 'auto-generated' },
    };

    it('accepts nodemailer with type OAuth2 and an Exchange token over STARTTLS, and records the raw message', async () => {
      const accessToken = await token(secretCredential(), OUTLOOK_SCOPE);
      const info = await transport(smtp, { type: 'OAuth2', user: SENDER, accessToken }).sendMail(message);
      expect(info.response).toMatch(/^250 /);
      expect(smtp.authAttempts.at(-1)).toEqual({
        method: 'XOAUTH2',
        username: SENDER,
        accepted: true,
        reply: '235 2.7.0 Authentication successful',
        clientId: SECRET_APP,
      });
      const delivered = smtp.messages.at(-1)!;
      expect(delivered).toMatchObject({ user: SENDER, envelopeFrom: SENDER, envelopeTo: [RECIPIENT], token: { via: 'secret', resource: 'https://outlook.office365.com' } });
      expect(delivered.parsed.subject).toBe('Reset your Gatehouse password');
      expect(delivered.parsed.headers.get('auto-submitted')).toBe('auto-generated');
      expect(delivered.raw.indexOf('text/plain')).toBeLessThan(delivered.raw.indexOf('text/html'));
      expect(JSON.stringify(smtp.authAttempts)).not.toContain(accessToken);
    });

    it('accepts a certificate-credential token too', async () => {
      const accessToken = await token(
        new ClientCertificateCredential(TENANT, CERT_APP, { certificate: clientCert.combinedPem }, options()),
        OUTLOOK_SCOPE,
      );
      await transport(smtp, { type: 'OAuth2', user: SENDER, accessToken }).sendMail(message);
      expect(smtp.messages.at(-1)?.token).toMatchObject({ clientId: CERT_APP, via: 'assertion' });
    });

    it('refuses a Graph token, and an app not allowed on the mailbox, with 535 5.7.3 Authentication unsuccessful', async () => {
      const graphToken = await token(secretCredential(), GRAPH_SCOPE);
      const wrongScope = await failure(transport(smtp, { type: 'OAuth2', user: SENDER, accessToken: graphToken }).sendMail(message));
      expect(wrongScope).toMatchObject({ code: 'EAUTH', responseCode: 535, command: 'AUTH XOAUTH2' });
      expect(wrongScope.message).toContain('535 5.7.3 Authentication unsuccessful');

      const unpermitted = await token(secretCredential(TENANT, UNPERMITTED_APP), OUTLOOK_SCOPE);
      const denied = await failure(transport(smtp, { type: 'OAuth2', user: SENDER, accessToken: unpermitted }).sendMail(message));
      expect(denied).toMatchObject({ code: 'EAUTH', responseCode: 535 });
      expect(smtp.authAttempts.at(-1)).toMatchObject({ accepted: false, clientId: UNPERMITTED_APP, reply: '535 5.7.3 Authentication unsuccessful' });
    });

    it('refuses a password with 535 5.7.3, or 550 5.7.30 when basic authentication is disabled', async () => {
      const refused = await failure(transport(smtp, { user: SENDER, pass: 'password' }).sendMail(message));
      expect(refused).toMatchObject({ code: 'EAUTH', responseCode: 535 });
      expect(refused.message).toContain('5.7.3 Authentication unsuccessful');

      const login = await failure(transport(smtp, { user: SENDER, pass: 'password', method: 'LOGIN' }).sendMail(message));
      expect(login).toMatchObject({ code: 'EAUTH', responseCode: 535, command: 'AUTH LOGIN' });

      const disabled = await failure(transport(basicOff, { user: SENDER, pass: 'password' }).sendMail(message));
      expect(disabled).toMatchObject({ code: 'EAUTH', responseCode: 550 });
      expect(disabled.message).toContain('550 5.7.30 Basic authentication is not supported for Client Submission.');
    });

    it('refuses a message from another address than the mailbox signed in (554 5.2.252 SendAsDenied)', async () => {
      const accessToken = await token(secretCredential(), OUTLOOK_SCOPE);
      const error = await failure(
        transport(smtp, { type: 'OAuth2', user: SENDER, accessToken }).sendMail({ ...message, from: OTHER_MAILBOX }),
      );
      expect(error).toMatchObject({ code: 'EMESSAGE', responseCode: 554 });
      expect(error.message).toContain('5.2.252 SendAsDenied');
    });
  });

  it('talked to nothing but 127.0.0.1', () => {
    expectLoopbackOnly(network, 1, { ipv4Only: true });
  });
});
