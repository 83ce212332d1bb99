import { randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createAzureKeyVaultSecretStore,
  InvalidSecretNameError,
  SecretStoreUnavailableError,
  type SecretStore,
} from '../../src/secrets/index.js';
import { findTrustedTestCa, type TestCa } from '../helpers/tls.js';
import {
  closedPort,
  isolateAzureEnvironment,
  startFakeIdentityEndpoint,
  startFakeKeyVault,
  VAULT_RESOURCE,
  watchNetwork,
  type FakeIdentityEndpoint,
  type FakeKeyVault,
  type NetworkWatch,
} from './azure-fakes.js';

const ca = await findTrustedTestCa();
const SKIP_REASON =
  'the test CA is not trusted in this process: add test/global-setup.ts to globalSetup in vitest.config.ts (and install openssl)';
if (!ca && process.env.CI !== 'true') {
  console.warn(`\n!!! SKIPPING Azure Key Vault tests: ${SKIP_REASON}\n`);
}

describe('the Azure SDK stays unloaded until azure-keyvault is chosen', () => {
  it('has no runtime import of @azure/* at the top of any src/secrets file', async () => {
    const dir = fileURLToPath(new URL('../../src/secrets/', import.meta.url));
    const files = (await readdir(dir)).filter((file) => file.endsWith('.ts'));
    expect(files).toContain('azure-keyvault.ts');
    for (const file of files) {
      const source = await readFile(`${dir}${file}`, 'utf8');
      // `import type` is erased by the compiler; anything else would load the SDK at start-up.
      expect(source, file).not.toMatch(/^\s*import\s+(?!type\b)[^;]*from\s+['"]@azure\//m);
      expect(source, file).not.toMatch(/^\s*export\s+[^;]*from\s+['"]@azure\//m);
    }
  });
});

it('has a trusted test CA, which CI requires for the TLS tests', () => {
  if (ca === undefined && process.env.CI === 'true') throw new Error(SKIP_REASON);
  if (ca !== undefined) expect(ca.caCert).toContain('BEGIN CERTIFICATE');
});

async function failure(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Error);
  return error as Error;
}

describe.skipIf(!ca).sequential('azure-keyvault secret store (real SDK, local HTTPS fakes)', () => {
  const testCa = ca as TestCa;
  const identityHeader = randomBytes(16).toString('hex');
  const tenantId = '72f988bf-0000-4000-8000-000000000000';
  let restoreEnvironment = (): void => undefined;
  let identity: FakeIdentityEndpoint;
  let vault: FakeKeyVault;
  let network: NetworkWatch;
  const toClose: { close(): Promise<void> }[] = [];

  const makeStore = (vaultUrl: string): Promise<SecretStore> =>
    createAzureKeyVaultSecretStore({
      vaultUrl,
      // The fake lives at 127.0.0.1, not under *.vault.azure.net.
      clientOptions: { disableChallengeResourceVerification: true },
      credentialOptions: { disableInstanceDiscovery: true },
    });

  beforeAll(async () => {
    identity = await startFakeIdentityEndpoint({
      key: testCa.serverKey,
      cert: testCa.serverCert,
      identityHeader,
    });
    vault = await startFakeKeyVault({
      key: testCa.serverKey,
      cert: testCa.serverCert,
      authorityUrl: identity.url,
      tenantId,
      acceptToken: (token) => identity.issuedTokens.includes(token),
      pageSize: 2,
      forbiddenNames: ['locked-away'],
    });
    toClose.push(identity, vault);

    restoreEnvironment = isolateAzureEnvironment({ identity, identityHeader });
    network = watchNetwork();
  });

  afterAll(async () => {
    network?.stop();
    await Promise.all(toClose.map((server) => server.close()));
    restoreEnvironment();
  });

  it('answers the vault’s challenge with a managed-identity token, then round-trips secrets', async () => {
    const store = await makeStore(vault.url);
    expect(store.kind).toBe('azure-keyvault');

    expect(await store.get('smtp-password')).toBeUndefined();
    await store.set('smtp-password', 'hunter2-in-the-vault');
    expect(await store.get('SMTP-PASSWORD')).toBe('hunter2-in-the-vault');

    // The first request carries no credentials and earns the 401 challenge.
    const [probe, authenticated] = vault.requests;
    expect(probe).toMatchObject({ method: 'GET', authorization: undefined });
    expect(probe!.path).toMatch(/^\/secrets\/smtp-password\/?$/);
    expect(probe!.query['api-version']).toMatch(/^\d{4}-\d{2}-\d{2}/);
    // The retry carries the token our identity endpoint issued, for the resource the challenge named.
    expect(identity.issuedTokens.length).toBeGreaterThanOrEqual(1);
    expect(authenticated!.authorization).toBe(`Bearer ${identity.issuedTokens[0]}`);
    for (const request of identity.requests) {
      expect(request.identityHeader).toBe(identityHeader);
      expect(request.query).toMatchObject({ 'api-version': '2019-08-01', resource: VAULT_RESOURCE });
    }
    for (const request of vault.requests.slice(1)) {
      expect(identity.issuedTokens.map((token) => `Bearer ${token}`)).toContain(request.authorization);
    }
    const put = vault.requests.find((request) => request.method === 'PUT');
    expect(JSON.parse(put!.body)).toMatchObject({ value: 'hunter2-in-the-vault' });

    // Every byte went to our two fakes: no IMDS, no login.microsoftonline.com.
    expect(network.requests.length).toBe(vault.requests.length + identity.requests.length);
    for (const request of network.requests) {
      expect(request.host).toBe('127.0.0.1');
      expect([String(vault.port), String(identity.port)]).toContain(request.port);
    }
    expect(network.connections.length).toBeGreaterThan(0);
    expect(network.connections.filter((address) => address !== '127.0.0.1')).toEqual([]);
  });

  it('never sends a value before the vault has authenticated the caller', async () => {
    const before = vault.requests.length;
    const store = await makeStore(vault.url);
    await store.set('first-write', 'value-held-back-until-authenticated');
    const [probe, write] = vault.requests.slice(before);
    expect(probe).toMatchObject({ method: 'PUT', authorization: undefined, body: '' });
    expect(write!.method).toBe('PUT');
    expect(write!.authorization).toMatch(/^Bearer fake-mi-token-/);
    expect(write!.body).toContain('value-held-back-until-authenticated');
  });

  it('lists every name across pages, sorted, and deletes (a missing name too)', async () => {
    const store = await makeStore(vault.url);
    for (const name of ['zulu', 'Alpha', 'mike', 'bravo']) await store.set(name, `v-${name}`);
    const names = await store.list();
    expect(names).toEqual([...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    expect(names).toEqual(expect.arrayContaining(['Alpha', 'bravo', 'mike', 'zulu']));
    expect(names).toHaveLength(vault.secrets.size);
    // pageSize 2 on the fake: the SDK had to follow nextLink.
    expect(vault.requests.some((request) => request.query.$skiptoken !== undefined)).toBe(true);

    await store.delete('mike');
    await store.delete('never-existed');
    expect(await store.get('mike')).toBeUndefined();
    expect(await store.list()).not.toContain('mike');
  });

  it('explains that a deleted name awaits purge when it is set again', async () => {
    const store = await makeStore(vault.url);
    await store.set('recycled', 'one');
    await store.delete('recycled');
    const error = await failure(store.set('recycled', 'two-secret-value'));
    expect(error).toBeInstanceOf(SecretStoreUnavailableError);
    expect(error.message).toMatch(/awaits purge/);
    expect(error.message).not.toContain('two-secret-value');
  });

  it('reports access denied (403) with the role to grant, and no token', async () => {
    const store = await makeStore(vault.url);
    const error = await failure(store.get('locked-away'));
    expect(error).toBeInstanceOf(SecretStoreUnavailableError);
    expect(error.message).toMatch(/HTTP 403/);
    expect(error.message).toMatch(/Key Vault Secrets User/);
    for (const token of identity.issuedTokens) expect(error.message).not.toContain(token);
  });

  it('reports a vault that refuses the token as unavailable, without the token or the value', async () => {
    const refusing = await startFakeKeyVault({
      key: testCa.serverKey,
      cert: testCa.serverCert,
      authorityUrl: identity.url,
      tenantId,
      acceptToken: () => false,
    });
    toClose.push(refusing);
    const store = await makeStore(refusing.url);
    const error = await failure(store.set('smtp-password', 'never-in-a-message'));
    expect(error).toBeInstanceOf(SecretStoreUnavailableError);
    expect(error.message).toMatch(/refused the token \(HTTP 401\)/);
    expect(error.message).not.toContain('never-in-a-message');
    for (const token of identity.issuedTokens) expect(error.message).not.toContain(token);
    // It did try with a bearer token, not only the anonymous probe.
    expect(refusing.requests.some((request) => request.authorization?.startsWith('Bearer '))).toBe(true);
  });

  it('by default sends no token to a host the challenge’s resource does not cover', async () => {
    const lookalike = await startFakeKeyVault({
      key: testCa.serverKey,
      cert: testCa.serverCert,
      authorityUrl: identity.url,
      tenantId,
      acceptToken: (token) => identity.issuedTokens.includes(token),
    });
    toClose.push(lookalike);
    // No disableChallengeResourceVerification: 127.0.0.1 is not under vault.azure.net.
    const store = await createAzureKeyVaultSecretStore({ vaultUrl: lookalike.url });
    const error = await failure(store.get('smtp-password'));
    expect(error).toBeInstanceOf(SecretStoreUnavailableError);
    expect(error.message).toMatch(/challenge names another resource/);
    expect(lookalike.requests).toHaveLength(1);
    expect(lookalike.requests[0]!.authorization).toBeUndefined();
  });

  it('refuses a vault whose certificate is not from a trusted CA', async () => {
    const impostor = await startFakeKeyVault({
      key: testCa.untrustedKey,
      cert: testCa.untrustedCert,
      authorityUrl: identity.url,
      tenantId,
      acceptToken: (token) => identity.issuedTokens.includes(token),
    });
    toClose.push(impostor);
    const store = await makeStore(impostor.url);
    const error = await failure(store.get('smtp-password'));
    expect(error).toBeInstanceOf(SecretStoreUnavailableError);
    expect(error.message).toMatch(/TLS certificate is not trusted.*NODE_EXTRA_CA_CERTS/);
    // The handshake failed, so no request, let alone a token, reached the impostor.
    expect(impostor.requests).toHaveLength(0);
  });

  it('fails fast with SecretStoreUnavailableError when nothing listens at the vault address', async () => {
    const port = await closedPort();
    const store = await makeStore(`https://127.0.0.1:${port}`);
    const startedAt = performance.now();
    const error = await failure(store.get('smtp-password'));
    const elapsedMs = performance.now() - startedAt;
    expect(error).toBeInstanceOf(SecretStoreUnavailableError);
    expect(error.message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port}.*cannot reach the vault \\(ECONNREFUSED\\)`));
    // Two quick retries, not the SDK's default of three spread over about seven seconds.
    expect(elapsedMs).toBeLessThan(3_000);
  });

  it('rejects an invalid name before any request', async () => {
    const store = await makeStore(vault.url);
    const before = vault.requests.length;
    await expect(store.get('smtp_password')).rejects.toBeInstanceOf(InvalidSecretNameError);
    await expect(store.set('a'.repeat(128), 'x')).rejects.toBeInstanceOf(InvalidSecretNameError);
    expect(vault.requests.length).toBe(before);
  });

  it('refuses a vault URL that is not https', async () => {
    await expect(makeStore('http://127.0.0.1:1')).rejects.toThrow(/https/);
  });

  it('sent nothing anywhere but 127.0.0.1 during this whole file', () => {
    expect(network.requests.length).toBeGreaterThan(0);
    const elsewhere = network.requests.filter((request) => request.host !== '127.0.0.1');
    expect(elsewhere).toEqual([]);
    expect(network.connections.filter((address) => address !== '127.0.0.1')).toEqual([]);
  });
});
