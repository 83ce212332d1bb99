import {
  assertValidSecretName,
  SecretStoreReadOnlyError,
  sortNames,
  type SecretStore,
} from './store.js';

export const ENV_SECRET_PREFIX = 'GATEHOUSE_SECRET_';

/** `smtp-password` → `GATEHOUSE_SECRET_SMTP_PASSWORD`: upper-cased, every non-alphanumeric → `_`. */
export function envVariableForSecret(name: string): string {
  return ENV_SECRET_PREFIX + name.toUpperCase().replace(/[^A-Z0-9]/g, '_');
}

/**
 * Read-only secrets from the environment (containers, systemd credentials, CI).
 * An empty variable counts as unset: `KEY=` in a .env file is a placeholder, not a password.
 * list() returns the variable suffixes exactly as found (`SMTP_PASSWORD`), because the way back
 * to a secret name is ambiguous (`smtp-password` and `SMTP-PASSWORD` share one variable).
 */
export function createEnvSecretStore(env: Record<string, string | undefined>): SecretStore {
  return {
    kind: 'env',
    async get(name) {
      assertValidSecretName(name);
      const value = env[envVariableForSecret(name)];
      return value === undefined || value === '' ? undefined : value;
    },
    async set(name) {
      assertValidSecretName(name);
      throw new SecretStoreReadOnlyError('env');
    },
    async delete(name) {
      assertValidSecretName(name);
      throw new SecretStoreReadOnlyError('env');
    },
    async list() {
      const names: string[] = [];
      for (const [variable, value] of Object.entries(env)) {
        if (!variable.startsWith(ENV_SECRET_PREFIX) || value === undefined || value === '') continue;
        const suffix = variable.slice(ENV_SECRET_PREFIX.length);
        if (suffix !== '') names.push(suffix);
      }
      return sortNames(names);
    },
  };
}
