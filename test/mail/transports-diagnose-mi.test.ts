import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { diagnoseEmail, type DiagnoseResult } from '../../src/mail/diagnose.js';
import type { EmailSettings } from '../../src/mail/settings.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { sendAs, type FakeGraph, type FakeManagedIdentity, type FakeXoauth2SmtpServer } from './ms365-fakes.js';
import { expectLoopbackOnly, RECIPIENT, SENDER, setUpManagedIdentity, testCaOrSkip, watchNetworkOfEachTest, watchNetworkOfFile } from './ms365-setup.js';
import { expectFailure, expectGeneratedHeaders, expectNothingSecret, expectSuccess, graphSettings, MAIL_SECRETS, MESSAGE_ID_DOMAIN, oauth2Settings } from './transports-support.js';

// The staged email check with managed identity (App Service's IDENTITY_ENDPOINT / IDENTITY_HEADER,
// served by the fake). A file of its own: MSAL reads the managed-identity source from the
// environment once and keeps it, and its token cache, in statics for the life of the process.

const ca = await testCaOrSkip('the managed-identity transport checks');

const SYSTEM_CLIENT_ID = '44444444-dddd-4ddd-8ddd-000000000001';
const USER_ASSIGNED_CLIENT_ID = '44444444-dddd-4ddd-8ddd-000000000002';
const NOT_ATTACHED_CLIENT_ID = '44444444-dddd-4ddd-8ddd-00000000dead';
const TIMEOUTS = { connect: 5_000, greeting: 5_000, socket: 15_000 };
const identityHeader = randomBytes(16).toString('hex');

const managed = (overrides: Partial<EmailSettings> = {}): Partial<EmailSettings> => ({
  entraCredential: 'managed-identity',
  tenantId: null,
  clientId: null,
  clientSecretName: null,
  ...overrides,
});

describe.skipIf(!ca).sequential('the staged email check with a managed identity', () => {
  const everything = watchNetworkOfFile();
  const network = watchNetworkOfEachTest();
  let identity: FakeManagedIdentity;
  let graph: FakeGraph;
  let smtp: FakeXoauth2SmtpServer;
  let authorityHost: string;
  let tearDown: (() => Promise<void>) | undefined;

  const diagnose = async (settings: EmailSettings): Promise<DiagnoseResult> => {
    const result = await diagnoseEmail({
      settings,
      secrets: createMemorySecretStore({ 'smtp-from': SENDER }),
      secretNamePattern: MAIL_SECRETS,
      to: RECIPIENT,
      // Managed identity never asks it; should anything try, it finds a closed port on 127.0.0.1.
      authorityHost,
      graphBaseUrl: graph.url,
      messageIdDomain: MESSAGE_ID_DOMAIN,
      timeoutsMs: TIMEOUTS,
    });
    expectNothingSecret(result, [identityHeader]);
    return result;
  };

  beforeAll(async () => {
    const permissions = sendAs(SENDER, SYSTEM_CLIENT_ID, USER_ASSIGNED_CLIENT_ID);
    // App Service's variables pointing at the fake, before MSAL first reads them.
    ({ identity, graph, smtp: { smtp }, authorityHost, close: tearDown } = await setUpManagedIdentity(ca!, {
      identity: { identityHeader, clientId: SYSTEM_CLIENT_ID, userAssignedClientIds: [USER_ASSIGNED_CLIENT_ID] },
      graph: { mailboxes: [SENDER], permissions },
      smtp: { smtp: { permissions } },
    }));
  });

  afterAll(async () => {
    await tearDown?.();
  });

  it('graph with the system-assigned identity: a token from IDENTITY_ENDPOINT, one message as MIME', async () => {
    const before = graph.messages.length;
    const result = await diagnose(graphSettings(managed()));
    expectSuccess(result, 'graph');
    expect(result.stages.find((s) => s.name === 'secrets')!.detail).toBe(`sender ${SENDER}; managed identity: no secret`);
    expect(result.stages.find((s) => s.name === 'token')!.detail).toBe('a token for https://graph.microsoft.com/.default from the managed identity');
    expect(identity.requests.at(-1)).toMatchObject({ path: '/msi/token', identityHeaderOk: true, status: 200, query: { resource: 'https://graph.microsoft.com' } });
    expect(identity.requests.at(-1)!.query.client_id).toBeUndefined();

    expect(graph.messages.length - before).toBe(1);
    const message = graph.messages.at(-1)!;
    expect(message).toMatchObject({ sender: SENDER, format: 'mime', to: [RECIPIENT], token: { clientId: SYSTEM_CLIENT_ID, via: 'managed-identity' } });
    expectGeneratedHeaders(message);
    expectLoopbackOnly(network, 1);
  });

  it('graph with a user-assigned identity named by its client id', async () => {
    const before = graph.messages.length;
    expectSuccess(await diagnose(graphSettings(managed({ clientId: USER_ASSIGNED_CLIENT_ID }))), 'graph');
    expect(identity.requests.at(-1)!.query.client_id).toBe(USER_ASSIGNED_CLIENT_ID);
    expect(graph.messages.length - before).toBe(1);
    expect(graph.messages.at(-1)!.token).toMatchObject({ clientId: USER_ASSIGNED_CLIENT_ID, via: 'managed-identity' });
  });

  it('smtp-oauth2 with the system-assigned identity: an Exchange token, AUTH XOAUTH2, one message', async () => {
    const before = smtp.messages.length;
    const result = await diagnose(oauth2Settings(smtp.port, managed()));
    expectSuccess(result, 'smtp-oauth2');
    expect(smtp.messages.length - before).toBe(1);
    const delivery = smtp.messages.at(-1)!;
    expect(delivery).toMatchObject({ user: SENDER, token: { clientId: SYSTEM_CLIENT_ID, resource: 'https://outlook.office365.com', via: 'managed-identity' } });
    expectGeneratedHeaders({ autoSubmitted: delivery.parsed.headers.get('auto-submitted') as string | undefined, messageId: delivery.parsed.messageId });
  });

  it('a user-assigned client id that is not attached → auth_failed at token with the managed-identity hint', async () => {
    const sent = graph.requests.length;
    const result = await diagnose(graphSettings(managed({ clientId: NOT_ATTACHED_CLIENT_ID })));
    expectFailure(result, 'graph', {
      error: 'auth_failed',
      stage: 'token',
      message: /Unable to load the proper Managed Identity/,
      hint: /^No managed identity answered\. On Azure App Service, Container Apps or a VM, turn on the system-assigned identity \(or attach a user-assigned one and enter its client id\)/,
    });
    expect(identity.requests.at(-1)).toMatchObject({ status: 400, query: { client_id: NOT_ATTACHED_CLIENT_ID } });
    expect(graph.requests.length).toBe(sent);
  });

  it("says in one line what the identity endpoint said, without MSAL's correlation and trace ids", async () => {
    const result = await diagnose(graphSettings(managed({ clientId: NOT_ATTACHED_CLIENT_ID })));
    const failure = expectFailure(result, 'graph', { error: 'auth_failed', stage: 'token', message: /Unable to load the proper Managed Identity/, hint: /^No managed identity answered\./ });
    expect(failure.message).toBe('the managed identity endpoint said: Unable to load the proper Managed Identity.');
  });

  it('talked to nothing but 127.0.0.1, never to the authority host', () => {
    expectLoopbackOnly(everything, 3);
    expect(everything.requests.filter((r) => r.port === new URL(authorityHost).port)).toEqual([]);
  });
});
