import type { Db } from '../db/index.js';
import { normalizeUsername } from './identifiers.js';

// Only this file touches the sign_in_locks table.

/**
 * A login untrusted clients failed too often is locked by what was typed, so an unknown login
 * stays locked exactly as long as a known one (NIST SP 800-63B §5.2.2: until a reset or an
 * admin acts), and neither tells whether an account has it.
 */
export function signInLockKey(login: string): string {
  return normalizeUsername(login);
}

export async function isSignInLocked(db: Db, login: string): Promise<boolean> {
  return (await db.selectFrom('sign_in_locks').select('login_key').where('login_key', '=', signInLockKey(login)).executeTakeFirst()) !== undefined;
}

export async function lockSignIn(db: Db, login: string, nowMs: number): Promise<void> {
  await db
    .insertInto('sign_in_locks')
    .values({ login_key: signInLockKey(login), locked_at: nowMs })
    .onConflict((oc) => oc.column('login_key').doNothing())
    .execute();
}

/** Lifts the locks of every spelling of an account (a reset, a new password, an admin's unlock, a new account). */
export async function unlockSignIn(db: Db, logins: readonly (string | null)[]): Promise<void> {
  const keys = logins.filter((l): l is string => l !== null).map(signInLockKey);
  if (keys.length > 0) await db.deleteFrom('sign_in_locks').where('login_key', 'in', keys).execute();
}
