import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CredentialUnavailableError, ManagedIdentityCredential } from '@azure/identity';
import nodemailer from 'nodemailer';
import { GRAPH_SCOPE, OUTLOOK_SCOPE, sendAs, type FakeGraph, type FakeManagedIdentity, type FakeXoauth2SmtpServer } from './ms365-fakes.js';
import { expectLoopbackOnly, SENDER, setUpManagedIdentity, testCaOrSkip, watchNetworkOfFile } from './ms365-setup.js';

// A file of its own: MSAL keeps the managed-identity source (endpoint and header, read from the
// environment once) and its token cache in statics for the life of the process.

const ca = await testCaOrSkip('managed-identity fake tests');

const SYSTEM_CLIENT_ID = '22222222-bbbb-4bbb-8bbb-000000000001';
const USER_ASSIGNED_CLIENT_ID = '22222222-bbbb-4bbb-8bbb-000000000002';
const identityHeader = randomBytes(16).toString('hex');

describe.skipIf(!ca).sequential('ManagedIdentityCredential (App Service) against the fakes', () => {
  const network = watchNetworkOfFile();
  let identity: FakeManagedIdentity;
  let graph: FakeGraph;
  let smtp: FakeXoauth2SmtpServer;
  let tearDown: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ({ identity, graph, smtp: { smtp }, close: tearDown } = await setUpManagedIdentity(ca!, {
      identity: { identityHeader, clientId: SYSTEM_CLIENT_ID, userAssignedClientIds: [USER_ASSIGNED_CLIENT_ID] },
      smtp: { smtp: { permissions: sendAs(SENDER, SYSTEM_CLIENT_ID) } },
    }));
  });

  afterAll(async () => {
    await tearDown?.();
  });

  it('gets a Graph token from IDENTITY_ENDPOINT (one GET, resource without /.default) that Graph accepts', async () => {
    const credential = new ManagedIdentityCredential();
    const accessToken = await credential.getToken(GRAPH_SCOPE);

    expect(accessToken?.token).toMatch(/^fake-mi-/);
    expect(identity.requests).toEqual([
      {
        method: 'GET',
        path: '/msi/token',
        query: { 'api-version': '2019-08-01', resource: 'https://graph.microsoft.com' },
        identityHeaderOk: true,
        status: 200,
      },
    ]);
    expect(identity.validate(accessToken!.token, GRAPH_SCOPE)).toMatchObject({
      clientId: SYSTEM_CLIENT_ID,
      via: 'managed-identity',
      resource: 'https://graph.microsoft.com',
    });
    expect(identity.validate(accessToken!.token, OUTLOOK_SCOPE)).toBeUndefined();

    const response = await fetch(`${graph.url}/v1.0/users/${SENDER}/sendMail`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken!.token}` },
      body: JSON.stringify({
        message: {
          subject: 'Hello',
          body: { contentType: 'HTML', content: '<p>Hello</p>' },
          toRecipients: [{ emailAddress: { address: 'alice@example.org' } }],
        },
      }),
    });
    expect(response.status).toBe(202);
    expect(graph.messages.at(-1)).toMatchObject({ sender: SENDER, html: '<p>Hello</p>', token: { via: 'managed-identity' } });
  });

  it('caches tokens per resource across credential objects (the cache is static)', async () => {
    await new ManagedIdentityCredential().getToken(GRAPH_SCOPE);
    await new ManagedIdentityCredential().getToken(GRAPH_SCOPE);
    expect(identity.tokenRequests('https://graph.microsoft.com')).toBe(1);
  });

  it('gets an Exchange token that the XOAUTH2 server accepts, and Graph refuses', async () => {
    const accessToken = (await new ManagedIdentityCredential().getToken(OUTLOOK_SCOPE))!.token;
    expect(identity.requests.at(-1)?.query.resource).toBe('https://outlook.office365.com');

    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: smtp.port,
      secure: false,
      requireTLS: true,
      auth: { type: 'OAuth2', user: SENDER, accessToken },
    });
    await transport.sendMail({ from: SENDER, to: 'alice@example.org', subject: 'Hi', text: 'Hi' });
    expect(smtp.messages.at(-1)?.token).toMatchObject({ clientId: SYSTEM_CLIENT_ID, resource: 'https://outlook.office365.com' });

    const response = await fetch(`${graph.url}/v1.0/users/${SENDER}/sendMail`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${accessToken}` },
      body: '{}',
    });
    expect(response.status).toBe(401);
  });

  it('asks for a user-assigned identity by client_id; one not attached fails with CredentialUnavailableError', async () => {
    const accessToken = await new ManagedIdentityCredential({ clientId: USER_ASSIGNED_CLIENT_ID }).getToken(GRAPH_SCOPE);
    expect(identity.requests.at(-1)?.query).toEqual({
      'api-version': '2019-08-01',
      resource: 'https://graph.microsoft.com',
      client_id: USER_ASSIGNED_CLIENT_ID,
    });
    expect(identity.validate(accessToken!.token, GRAPH_SCOPE)?.clientId).toBe(USER_ASSIGNED_CLIENT_ID);

    const error = await new ManagedIdentityCredential({ clientId: '22222222-bbbb-4bbb-8bbb-00000000dead' })
      .getToken(GRAPH_SCOPE)
      .then(() => undefined, (e: unknown) => e as Error & { cause?: Error & Record<string, unknown> });
    expect(error).toBeInstanceOf(CredentialUnavailableError);
    expect(error!.message).toMatch(/^ManagedIdentityCredential: Authentication failed\. Message : .*Unable to load the proper Managed Identity\./);
    expect(error!.cause?.name).toBe('ServerError');
    expect(identity.requests.at(-1)?.status).toBe(400);
  });

  it('keeps the header it read first: when App Service rotates it, the next new resource fails', async () => {
    identity.identityHeader = randomBytes(16).toString('hex');
    const error = await new ManagedIdentityCredential()
      .getToken('https://short-lived.example/.default')
      .then(() => undefined, (e: unknown) => e as Error & { cause?: Error & Record<string, unknown> });
    expect(identity.requests.at(-1)).toMatchObject({ identityHeaderOk: false, status: 401 });
    expect(error).toBeInstanceOf(CredentialUnavailableError);
    expect(error!.message).toMatch(/^ManagedIdentityCredential: Authentication failed\. Message : /);
    // Cached tokens are still served.
    await expect(new ManagedIdentityCredential().getToken(GRAPH_SCOPE)).resolves.toBeTruthy();
    identity.identityHeader = identityHeader;
  });

  it('talked to nothing but 127.0.0.1', () => {
    expectLoopbackOnly(network, 1, { ipv4Only: true });
  });
});
