import type { AppDeps } from '../deps.js';
import { checkPassword } from './policy.js';
import { countUsers } from './users-repo.js';
import { createUser } from './service.js';
import { SecretStoreReadOnlyError } from '../secrets/store.js';
import { auditLabel, recordAudit } from '../audit/audit.js';

export const TEMP_ADMIN_SECRET = 'tempAdminPassword';

export type BootstrapResult = { created: false } | { created: true; password: string; storedInSecrets: boolean };

/**
 * First start (a database with no users): create `admin` with a generated temporary password that
 * must be changed at first sign-in, and keep it in the secret store as tempAdminPassword.
 */
export async function ensureFirstAdmin(deps: Pick<AppDeps, 'db' | 'clock' | 'random' | 'hasher' | 'config' | 'secrets' | 'logger'>): Promise<BootstrapResult> {
  if ((await countUsers(deps.db)) > 0) return { created: false };
  // At least 24 characters (144 random bits), and longer when the policy asks for more.
  const bytes = Math.ceil((Math.max(24, deps.config.passwordMinLength) * 3) / 4);
  let password: string;
  do {
    password = deps.random.bytes(bytes).toString('base64url');
  } while (checkPassword(password, deps.config.passwordMinLength, { username: 'admin' }).length > 0);
  try {
    const admin = await createUser(deps, { email: null, username: 'admin', name: 'Administrator', role: 'system-admin', password }, { mustChangePassword: true });
    await recordAudit(deps.db, deps.clock, { type: 'admin_bootstrapped', target: auditLabel(admin), outcome: 'success' });
  } catch (err) {
    // Another instance starting at the same moment created it first.
    if ((err as { code?: string }).code === 'username_taken' || (await countUsers(deps.db)) > 0) return { created: false };
    throw err;
  }
  let storedInSecrets = true;
  try {
    await deps.secrets.set(TEMP_ADMIN_SECRET, password);
  } catch (err) {
    if (!(err instanceof SecretStoreReadOnlyError)) throw err;
    storedInSecrets = false;
  }
  return { created: true, password, storedInSecrets };
}

/**
 * Deletes tempAdminPassword once the forced first change succeeded: a password that no longer
 * works must not stay in the store for anyone who can read it. A read-only store (env, Key Vault)
 * is left to its own tools.
 */
export async function forgetTempAdminPassword(deps: Pick<AppDeps, 'secrets' | 'logger'>): Promise<void> {
  try {
    await deps.secrets.delete(TEMP_ADMIN_SECRET);
  } catch (err) {
    if (!(err instanceof SecretStoreReadOnlyError)) deps.logger.warn({ err: { message: (err as Error).message } }, 'could not delete tempAdminPassword from the secret store');
  }
}
