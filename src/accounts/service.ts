import type { AppDeps } from '../deps.js';
import { dialectOf } from '../db/index.js';
import { normalizeUsername } from './identifiers.js';
import { HttpError, errors } from '../http/errors.js';
import { checkPassword, type PolicyReason } from './policy.js';
import {
  type Role,
  type User,
  type UserChanges,
  type UserRow,
  clearLoginFailures,
  countEnabledAdmins,
  deleteUser,
  findUserById,
  findUserByLogin,
  insertUser,
  recordLoginFailure,
  setPasswordHash,
  toUser,
  uniqueViolation,
  updateUser,
} from './users-repo.js';
import { revokeUserSessions } from './sessions.js';

/** NIST SP 800-63B: after this many consecutive failures the account signs in only after a reset. */
export const MAX_CONSECUTIVE_LOGIN_FAILURES = 100;

/**
 * The key of a login's failure counter: what was typed, normalised, never whether an account has
 * it, so unknown accounts are throttled exactly like known ones.
 */
export function loginThrottleKey(login: string): string {
  return `login:${normalizeUsername(login)}`;
}

export type AccountDeps = Pick<AppDeps, 'db' | 'clock' | 'random' | 'hasher' | 'config'>;

export function weakPassword(reasons: PolicyReason[]): HttpError {
  return new HttpError(400, 'weak_password', reasons.map((r) => r.message).join(' '), { reasons });
}

export function assertPasswordAllowed(deps: Pick<AppDeps, 'config'>, password: string, context: { email?: string | null; username?: string | null }): void {
  const reasons = checkPassword(password, deps.config.passwordMinLength, context);
  if (reasons.length > 0) throw weakPassword(reasons);
}

const dummyHashes = new WeakMap<AccountDeps['hasher'], Promise<string>>();
function getDummyHash(deps: AccountDeps): Promise<string> {
  let hash = dummyHashes.get(deps.hasher);
  if (hash === undefined) {
    hash = deps.hasher.hash(deps.random.bytes(24).toString('base64url'));
    dummyHashes.set(deps.hasher, hash);
  }
  return hash;
}

/**
 * The user whose password matches, or null. Unknown, disabled, password-less and locked accounts
 * all cost one hash verification, so neither the answer nor its timing tells them apart.
 */
export async function authenticate(deps: AccountDeps, login: string, password: string): Promise<UserRow | null> {
  const row = await findUserByLogin(deps.db, login);
  const hash = row?.password_hash ?? (await getDummyHash(deps));
  const matches = await deps.hasher.verify(hash, password);
  if (row === undefined) return null;
  if (!matches || row.password_hash === null) {
    await recordLoginFailure(deps.db, row.id);
    return null;
  }
  if (row.disabled === 1 || row.failed_login_count >= MAX_CONSECUTIVE_LOGIN_FAILURES) return null;
  await clearLoginFailures(deps.db, row.id);
  return row;
}

export async function changePassword(
  deps: AccountDeps,
  user: UserRow,
  currentPassword: string,
  newPassword: string,
  keepTokenHash: string,
): Promise<void> {
  if (user.password_hash === null || !(await deps.hasher.verify(user.password_hash, currentPassword))) {
    throw new HttpError(400, 'invalid_current_password', 'The current password is not correct.');
  }
  assertPasswordAllowed(deps, newPassword, user);
  if (await deps.hasher.verify(user.password_hash, newPassword)) {
    throw weakPassword([{ code: 'contains_context', message: 'Choose a password different from the current one.' }]);
  }
  const hash = await deps.hasher.hash(newPassword);
  await deps.db.transaction().execute(async (trx) => {
    await setPasswordHash(trx, user.id, hash, deps.clock.now().getTime(), { mustChange: false });
    await revokeUserSessions(trx, user.id, { exceptTokenHash: keepTokenHash });
  });
}

export interface NewUser {
  email: string | null;
  username: string | null;
  name: string;
  role: Role;
  password: string | null;
}

export async function createUser(deps: AccountDeps, input: NewUser, options: { mustChangePassword?: boolean } = {}): Promise<User> {
  if (input.email === null && input.username === null) {
    throw errors.invalidRequest('Give an email, a username or both.', { email: 'Give an email or a username.' });
  }
  if (input.password !== null) assertPasswordAllowed(deps, input.password, input);
  const passwordHash = input.password === null ? null : await deps.hasher.hash(input.password);
  try {
    const row = await insertUser(deps.db, {
      id: deps.random.uuid(),
      email: input.email,
      username: input.username,
      name: input.name,
      role: input.role,
      passwordHash,
      mustChangePassword: options.mustChangePassword ?? false,
      nowMs: deps.clock.now().getTime(),
    });
    return toUser(row);
  } catch (err) {
    throw takenError(err) ?? err;
  }
}

function takenError(err: unknown): HttpError | undefined {
  const column = uniqueViolation(err);
  if (column === 'email') return errors.conflict('email_taken', 'Another user has this email.');
  if (column === 'username') return errors.conflict('username_taken', 'Another user has this username.');
  return undefined;
}

const lastAdmin = (): HttpError => errors.conflict('last_admin', 'At least one enabled system admin must remain.');

/**
 * Applies an admin's edit. The last-admin rule is checked inside the transaction that writes,
 * so two admins demoting each other at once cannot both succeed (SQLite serialises writers;
 * PostgreSQL takes row locks on the admins first).
 */
export async function editUser(deps: AccountDeps, id: string, changes: UserChanges): Promise<User> {
  try {
    return await deps.db.transaction().execute(async (trx) => {
      await lockAdmins(trx);
      const before = await findUserById(trx, id);
      if (before === undefined) throw errors.notFound('No such user.');
      const losesAdmin =
        before.role === 'system-admin' && before.disabled === 0 && (changes.role === 'user' || changes.disabled === true);
      if (losesAdmin && (await countEnabledAdmins(trx, { excludingId: id })) === 0) throw lastAdmin();
      const emailAfter = changes.email !== undefined ? changes.email : before.email;
      if (emailAfter === null && before.username === null) {
        throw errors.invalidRequest('A user needs an email or a username.', { email: 'Required: this user has no username.' });
      }
      const after = await updateUser(trx, id, changes, deps.clock.now().getTime());
      if (changes.disabled === true) await revokeUserSessions(trx, id);
      return toUser(after!);
    });
  } catch (err) {
    throw takenError(err) ?? err;
  }
}

export async function removeUser(deps: AccountDeps, id: string): Promise<UserRow> {
  return deps.db.transaction().execute(async (trx) => {
    await lockAdmins(trx);
    const before = await findUserById(trx, id);
    if (before === undefined) throw errors.notFound('No such user.');
    if (before.role === 'system-admin' && before.disabled === 0 && (await countEnabledAdmins(trx, { excludingId: id })) === 0) {
      throw lastAdmin();
    }
    await deleteUser(trx, id);
    return before;
  });
}

async function lockAdmins(trx: AccountDeps['db']): Promise<void> {
  if (dialectOf(trx) !== 'postgres') return;
  await trx.selectFrom('users').select('id').where('role', '=', 'system-admin').forUpdate().execute();
}

/** Sets a password without knowing the old one (CLI break-glass, first admin); revokes every session. */
export async function setPassword(deps: AccountDeps, user: UserRow, password: string, options: { mustChange: boolean }): Promise<void> {
  assertPasswordAllowed(deps, password, user);
  const hash = await deps.hasher.hash(password);
  await deps.db.transaction().execute(async (trx) => {
    await setPasswordHash(trx, user.id, hash, deps.clock.now().getTime(), options);
    await revokeUserSessions(trx, user.id);
  });
}
