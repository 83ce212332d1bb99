import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import { createAzureKeyVaultSecretStore } from './azure-keyvault.js';
import { createCachedSecretStore } from './cached.js';
import { createEnvSecretStore } from './env.js';
import { createLocalSecretStore } from './local.js';
import type { SecretStore } from './store.js';

export * from './store.js';
export { createAzureKeyVaultSecretStore, type AzureKeyVaultSecretStoreOptions } from './azure-keyvault.js';
export { createCachedSecretStore, type CachedSecretStoreOptions } from './cached.js';
export { createEnvSecretStore, envVariableForSecret } from './env.js';
export { createLocalSecretStore, type LocalSecretStoreOptions } from './local.js';
export { createMemorySecretStore } from './memory.js';

export interface CreateSecretStoreOptions {
  provider: 'local' | 'env' | 'azure-keyvault';
  dataDir: string;
  /** SECRETS_KEY, decoded: 32 bytes. */
  key?: Buffer;
  /** SECRETS_CACHE_SECONDS; 0 reads the backend every time. */
  cacheSeconds: number;
  azureVaultUrl?: string;
  env: Record<string, string | undefined>;
  clock: Clock;
}

/** The store the configuration names (SECRETS_PROVIDER and friends), behind the read cache. */
export function createConfiguredSecretStore(config: Config, env: Record<string, string | undefined>, clock: Clock): Promise<SecretStore> {
  return createSecretStore({
    provider: config.secrets.provider,
    dataDir: config.dataDir,
    key: config.secrets.key,
    cacheSeconds: config.secrets.cacheSeconds,
    azureVaultUrl: config.secrets.azureVaultUrl,
    env,
    clock,
  });
}

/** The configured adapter behind the read cache. Only the chosen provider's code is loaded. */
export async function createSecretStore(options: CreateSecretStoreOptions): Promise<SecretStore> {
  const inner = await createAdapter(options);
  return createCachedSecretStore(inner, { ttlSeconds: options.cacheSeconds, clock: options.clock });
}

async function createAdapter(options: CreateSecretStoreOptions): Promise<SecretStore> {
  switch (options.provider) {
    case 'local':
      return createLocalSecretStore({ dataDir: options.dataDir, key: options.key });
    case 'env':
      return createEnvSecretStore(options.env);
    case 'azure-keyvault':
      if (!options.azureVaultUrl) {
        throw new Error('AZURE_KEYVAULT_URL is required when SECRETS_PROVIDER=azure-keyvault');
      }
      return createAzureKeyVaultSecretStore({ vaultUrl: options.azureVaultUrl });
  }
}
