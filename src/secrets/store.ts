export type SecretProviderKind = 'local' | 'env' | 'azure-keyvault' | 'memory';

/**
 * Where Gatehouse keeps the SMTP sender address, its password and the first-start admin password.
 * Names are case-insensitive in every adapter, as in Azure Key Vault, so a setting keeps working
 * when the provider changes.
 */
export interface SecretStore {
  readonly kind: SecretProviderKind;
  /** undefined when no secret has that name */
  get(name: string): Promise<string | undefined>;
  set(name: string, value: string): Promise<void>;
  /** Deleting a missing name is not an error. */
  delete(name: string): Promise<void>;
  /** Names only, sorted. */
  list(): Promise<string[]>;
}

/** Azure Key Vault's rule, used for every provider so a name that works locally works in the vault. */
export const SECRET_NAME_PATTERN = /^[A-Za-z0-9-]{1,127}$/;

export function isValidSecretName(name: string): boolean {
  return typeof name === 'string' && SECRET_NAME_PATTERN.test(name);
}

/** The message never echoes the name: people paste values into name fields. */
export class InvalidSecretNameError extends Error {
  constructor() {
    super('invalid secret name: use 1 to 127 letters, digits or dashes');
    this.name = 'InvalidSecretNameError';
  }
}

export class SecretStoreReadOnlyError extends Error {
  constructor(kind: SecretProviderKind) {
    super(`the ${kind} secret store is read-only`);
    this.name = 'SecretStoreReadOnlyError';
  }
}

/** The backend cannot be reached or refused us. The message is safe to show: no value, no token. */
export class SecretStoreUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretStoreUnavailableError';
  }
}

export function assertValidSecretName(name: string): void {
  if (!isValidSecretName(name)) throw new InvalidSecretNameError();
}

/** Code-unit order: the same on every machine, unlike localeCompare. */
export function sortNames(names: string[]): string[] {
  return [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}
