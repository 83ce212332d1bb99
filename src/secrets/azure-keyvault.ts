// Type-only imports vanish at compile time: a process on another provider never loads the Azure SDK.
import type { DefaultAzureCredentialOptions, TokenCredential } from '@azure/identity';
import type { SecretClientOptions } from '@azure/keyvault-secrets';
import {
  assertValidSecretName,
  SecretStoreUnavailableError,
  sortNames,
  type SecretStore,
} from './store.js';

export interface AzureKeyVaultSecretStoreOptions {
  /** https://<vault-name>.vault.azure.net */
  vaultUrl: string;
  /** Defaults to a DefaultAzureCredential built inside this factory, never earlier. */
  credential?: TokenCredential;
  /** For the default credential, e.g. `disableInstanceDiscovery` in a private cloud or a test. */
  credentialOptions?: DefaultAzureCredentialOptions;
  /** Merged over our retry defaults; `disableChallengeResourceVerification` is for fakes and private vault hosts. */
  clientOptions?: SecretClientOptions;
  /** Upper bound on one operation, retries and token included. Default 10 000. */
  operationTimeoutMs?: number;
}

const DEFAULT_OPERATION_TIMEOUT_MS = 10_000;

// The SDK default (3 retries from 1 s, up to 64 s apart) would hold a sign-in or a mail send for
// many seconds when the vault is down; fail fast and let the cache and the outbox retry later.
const DEFAULT_RETRY_OPTIONS = { maxRetries: 2, retryDelayInMs: 200, maxRetryDelayInMs: 2_000 };

const TLS_ERROR_CODES = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
]);

const CREDENTIAL_ERROR_NAMES = new Set([
  'AggregateAuthenticationError',
  'AuthenticationError',
  'AuthenticationRequiredError',
  'CredentialUnavailableError',
]);

type Operation = 'get' | 'set' | 'delete' | 'list';

/**
 * Secrets in Azure Key Vault through the official SDK. The SDK answers the vault's first 401
 * challenge by asking the credential for a token for the resource the vault names.
 */
export async function createAzureKeyVaultSecretStore(
  options: AzureKeyVaultSecretStoreOptions,
): Promise<SecretStore> {
  let vaultUrl: URL;
  try {
    vaultUrl = new URL(options.vaultUrl);
  } catch {
    throw new Error('AZURE_KEYVAULT_URL is not a URL');
  }
  // A bearer token must never travel in clear text.
  if (vaultUrl.protocol !== 'https:') throw new Error('AZURE_KEYVAULT_URL must be an https:// URL');
  const vaultHost = vaultUrl.host;
  const operationTimeoutMs = options.operationTimeoutMs ?? DEFAULT_OPERATION_TIMEOUT_MS;

  const keyVault = await import('@azure/keyvault-secrets');
  const credential = options.credential ?? (await defaultCredential(options.credentialOptions));
  const client = new keyVault.SecretClient(vaultUrl.href, credential, {
    ...options.clientOptions,
    retryOptions: { ...DEFAULT_RETRY_OPTIONS, ...options.clientOptions?.retryOptions },
  });

  async function run<T>(operation: Operation, work: (abortSignal: AbortSignal) => Promise<T>): Promise<T> {
    const abortSignal = AbortSignal.timeout(operationTimeoutMs);
    try {
      return await work(abortSignal);
    } catch (error) {
      throw toUnavailable(error, operation, vaultHost, operationTimeoutMs);
    }
  }

  return {
    kind: 'azure-keyvault',
    async get(name) {
      assertValidSecretName(name);
      return run('get', async (abortSignal) => {
        try {
          const secret = await client.getSecret(name, { abortSignal });
          return secret.value;
        } catch (error) {
          if (statusCodeOf(error) === 404) return undefined;
          throw error;
        }
      });
    },
    async set(name, value) {
      assertValidSecretName(name);
      await run('set', (abortSignal) => client.setSecret(name, value, { abortSignal }));
    },
    async delete(name) {
      assertValidSecretName(name);
      await run('delete', async (abortSignal) => {
        try {
          // The secret is unreadable once the DELETE returns; waiting for the soft-delete
          // to finish (pollUntilDone) would only add latency.
          await client.beginDeleteSecret(name, { abortSignal });
        } catch (error) {
          if (statusCodeOf(error) !== 404) throw error;
        }
      });
    },
    async list() {
      return run('list', async (abortSignal) => {
        const names: string[] = [];
        for await (const properties of client.listPropertiesOfSecrets({ abortSignal })) {
          names.push(properties.name);
        }
        return sortNames(names);
      });
    },
  };
}

async function defaultCredential(
  credentialOptions: DefaultAzureCredentialOptions | undefined,
): Promise<TokenCredential> {
  const { DefaultAzureCredential } = await import('@azure/identity');
  return new DefaultAzureCredential(credentialOptions ?? {});
}

/**
 * Every failure becomes a SecretStoreUnavailableError built from status codes and error names only.
 * The SDK's own messages are not copied: a failed set() carries the request, value included.
 */
function toUnavailable(
  error: unknown,
  operation: Operation,
  vaultHost: string,
  operationTimeoutMs: number,
): SecretStoreUnavailableError {
  const prefix = `Azure Key Vault ${vaultHost}: ${operation} failed`;
  const name = error instanceof Error ? error.name : 'unknown error';
  const statusCode = statusCodeOf(error);
  const code = (error as { code?: unknown } | null)?.code;
  const codeText = typeof code === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(code) ? code : undefined;

  if (name === 'AbortError' || name === 'TimeoutError') {
    return new SecretStoreUnavailableError(`${prefix}: no answer within ${operationTimeoutMs} ms`);
  }
  if (CREDENTIAL_ERROR_NAMES.has(name)) {
    return new SecretStoreUnavailableError(
      `${prefix}: DefaultAzureCredential found no usable identity (${name}); ` +
        'use a managed identity or set AZURE_TENANT_ID, AZURE_CLIENT_ID and a secret or certificate',
    );
  }
  if (statusCode === 401) {
    return new SecretStoreUnavailableError(`${prefix}: the vault refused the token (HTTP 401)`);
  }
  if (statusCode === 403) {
    return new SecretStoreUnavailableError(
      `${prefix}: access denied (HTTP 403${codeText ? ` ${codeText}` : ''}); ` +
        "grant the identity 'Key Vault Secrets User', or 'Key Vault Secrets Officer' to write",
    );
  }
  if (statusCode === 409 && operation === 'set') {
    return new SecretStoreUnavailableError(
      `${prefix}: a deleted secret with this name awaits purge (HTTP 409); recover or purge it first`,
    );
  }
  if (statusCode !== undefined) {
    return new SecretStoreUnavailableError(
      `${prefix}: HTTP ${statusCode}${codeText ? ` ${codeText}` : ''}`,
    );
  }
  if (codeText && TLS_ERROR_CODES.has(codeText)) {
    return new SecretStoreUnavailableError(
      `${prefix}: its TLS certificate is not trusted (${codeText}); add a private CA with NODE_EXTRA_CA_CERTS`,
    );
  }
  if (codeText) {
    return new SecretStoreUnavailableError(`${prefix}: cannot reach the vault (${codeText})`);
  }
  if (error instanceof Error && /challenge/i.test(error.message)) {
    return new SecretStoreUnavailableError(
      `${prefix}: the vault's authentication challenge names another resource than ${vaultHost}`,
    );
  }
  return new SecretStoreUnavailableError(`${prefix} (${name})`);
}

function statusCodeOf(error: unknown): number | undefined {
  const statusCode = (error as { statusCode?: unknown } | null)?.statusCode;
  return typeof statusCode === 'number' ? statusCode : undefined;
}
