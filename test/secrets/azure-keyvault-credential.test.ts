import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createAzureKeyVaultSecretStore,
  SecretStoreUnavailableError,
} from '../../src/secrets/index.js';
import { findTrustedTestCa, type TestCa } from '../helpers/tls.js';
import {
  isolateAzureEnvironment,
  startFakeIdentityEndpoint,
  startFakeKeyVault,
  watchNetwork,
  type FakeIdentityEndpoint,
  type FakeKeyVault,
  type NetworkWatch,
} from './azure-fakes.js';

// A file of its own: MSAL caches the managed-identity source and tokens per process, so a
// credential that fails can only be seen in a process where none has succeeded.
const ca = await findTrustedTestCa();
if (!ca && process.env.CI !== 'true') {
  console.warn('\n!!! SKIPPING Azure credential tests: the test CA is not trusted (see azure-keyvault.test.ts)\n');
}

describe.skipIf(!ca)('azure-keyvault when no identity is available', () => {
  let identity: FakeIdentityEndpoint;
  let vault: FakeKeyVault;
  let network: NetworkWatch;
  let restoreEnvironment = (): void => undefined;

  beforeAll(async () => {
    const testCa = ca as TestCa;
    identity = await startFakeIdentityEndpoint({
      key: testCa.serverKey,
      cert: testCa.serverCert,
      identityHeader: 'the-header-app-service-would-inject',
    });
    vault = await startFakeKeyVault({
      key: testCa.serverKey,
      cert: testCa.serverCert,
      authorityUrl: identity.url,
      tenantId: 'tenant',
      acceptToken: () => true,
    });
    // A stale IDENTITY_HEADER: the identity endpoint refuses every request.
    restoreEnvironment = isolateAzureEnvironment({ identity, identityHeader: 'stale-header' });
    network = watchNetwork();
  });

  afterAll(async () => {
    network?.stop();
    restoreEnvironment();
    await Promise.all([identity?.close(), vault?.close()]);
  });

  it('reports SecretStoreUnavailableError naming DefaultAzureCredential, quickly, and sends the vault no token', async () => {
    const store = await createAzureKeyVaultSecretStore({
      vaultUrl: vault.url,
      clientOptions: { disableChallengeResourceVerification: true },
      credentialOptions: { disableInstanceDiscovery: true },
    });
    const startedAt = performance.now();
    const error = await store.get('smtp-password').then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    const elapsedMs = performance.now() - startedAt;

    expect(error).toBeInstanceOf(SecretStoreUnavailableError);
    expect(error!.message).toMatch(/DefaultAzureCredential found no usable identity/);
    expect(error!.message).not.toContain('stale-header');
    expect(elapsedMs).toBeLessThan(5_000);
    // The identity endpoint was asked (and refused); the vault only ever saw the anonymous probe.
    expect(identity.requests.length).toBeGreaterThanOrEqual(1);
    expect(identity.issuedTokens).toEqual([]);
    expect(vault.requests.map((request) => request.authorization)).toEqual([undefined]);
    expect(network.requests.map((request) => request.host)).toEqual(
      network.requests.map(() => '127.0.0.1'),
    );
  });
});
