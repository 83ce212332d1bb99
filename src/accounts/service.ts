import type { AppDeps } from '../deps.js';
import { normalizeUsername } from './identifiers.js';
import { invalidInput, notFound, unauthenticated, type DomainError } from '../errors.js';
import { cannotDeleteSelf, cannotDemoteSelf, cannotDisableSelf, lastAdmin, taken, weakPassword } from './errors.js';
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
  lockAdmins,
  lockCurrentPassword,
  recordLoginFailure,
  setPasswordHash,
  toUser,
  uniqueViolation,
  unlockUserRow,
  updateUser,
} from './users-repo.js';
import { createSession, revokeSessionByHash, revokeUserSessions, type SessionMeta, type SessionPolicy, type ValidSession } from './sessions.js';
import { findTrustedDevice, recordDeviceFailure, trustDevice } from './devices.js';
import { isSignInLocked, lockSignIn, unlockSignIn } from './sign-in-locks.js';

/**
 * Consecutive failed sign-ins from untrusted clients after which they cannot sign in to the
 * login at all until a reset or an admin's unlock. The owner's trusted browsers still can.
 */
export const MAX_CONSECUTIVE_LOGIN_FAILURES = 100;

/**
 * The key of a login's failure counter: what was typed, normalised, never whether an account has
 * it, so unknown accounts are throttled exactly like known ones.
 */
export function loginThrottleKey(login: string): string {
  return `login:${normalizeUsername(login)}`;
}

export type AccountDeps = Pick<AppDeps, 'db' | 'clock' | 'random' | 'hasher' | 'config'>;
export type SignInDeps = AccountDeps & Pick<AppDeps, 'limiter'>;

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

export type SignInResult =
  | { outcome: 'signed_in'; user: UserRow; session: { token: string; expiresAt: Date }; device: { token: string; expiresAt: Date } }
  /** lockedNow: this failure locked the account (answered like any failure; the next attempt sees the lock) */
  | { outcome: 'invalid_credentials'; lockedNow?: UserRow }
  /** the same for every login, known or not: too many failures from untrusted clients */
  | { outcome: 'locked' }
  | { outcome: 'wait'; seconds: number };

/**
 * Signs in. A trusted device of the named account (device cookie) is never slowed or locked by
 * failures that came from elsewhere; its own failures count against it alone. Any other client
 * gets the login's growing wait and, past MAX_CONSECUTIVE_LOGIN_FAILURES, the lock. Unknown,
 * disabled and password-less accounts cost one hash verification like a wrong password, so
 * neither the answer nor its timing tells them apart.
 */
export async function signIn(
  deps: SignInDeps,
  input: { login: string; password: string; deviceToken: string | undefined; session: { policy: SessionPolicy; meta: SessionMeta } },
): Promise<SignInResult> {
  const nowMs = deps.clock.now().getTime();
  const throttleKey = loginThrottleKey(input.login);
  const device = input.deviceToken === undefined ? undefined : await findTrustedDevice(deps.db, input.deviceToken, input.login, nowMs);
  if (device === undefined) {
    const state = await deps.limiter.failureState(throttleKey);
    if (state.failures >= MAX_CONSECUTIVE_LOGIN_FAILURES || (await isSignInLocked(deps.db, input.login))) return { outcome: 'locked' };
    if (state.waitSeconds > 0) return { outcome: 'wait', seconds: state.waitSeconds };
  }
  const row = await findUserByLogin(deps.db, input.login);
  if (device === undefined && row !== undefined && row.locked_at !== null) return { outcome: 'locked' };
  const matches = await deps.hasher.verify(row?.password_hash ?? (await getDummyHash(deps)), input.password);
  const passwordRight = row !== undefined && row.password_hash !== null && matches;
  // A disabled account is refused like a wrong password, and throttled like one: what was typed
  // is counted whatever the account, or the wait would tell them apart.
  if (!passwordRight || row.disabled === 1) {
    if (device !== undefined) {
      if (!passwordRight) await recordDeviceFailure(deps.db, device);
      return { outcome: 'invalid_credentials' };
    }
    if ((await deps.limiter.recordFailure(throttleKey)) >= MAX_CONSECUTIVE_LOGIN_FAILURES) await lockSignIn(deps.db, input.login, nowMs);
    // The account's own count holds guesses only: the right password is not one.
    const lockedNow = !passwordRight && row !== undefined && (await recordLoginFailure(deps.db, row.id, { lockAfter: MAX_CONSECUTIVE_LOGIN_FAILURES, nowMs }));
    return lockedNow ? { outcome: 'invalid_credentials', lockedNow: row } : { outcome: 'invalid_credentials' };
  }
  // A trusted browser's success leaves the strangers' count alone: it would hand them fresh tries.
  if (device === undefined) {
    await deps.limiter.clearFailures(throttleKey);
    await clearLoginFailures(deps.db, row.id);
  }
  // The session is written only if the password just verified is still the account's: a reset
  // or change that committed meanwhile revoked every session, and this one must not outlive it.
  const session = await deps.db.transaction().execute(async (trx) => {
    if (!(await lockCurrentPassword(trx, row))) return undefined;
    return createSession({ db: trx, clock: deps.clock, random: deps.random }, row.id, input.session.policy, input.session.meta);
  });
  if (session === undefined) return { outcome: 'invalid_credentials' };
  const trusted = await trustDevice(deps.db, deps.random, { token: input.deviceToken, userId: row.id, nowMs });
  return { outcome: 'signed_in', user: row, session, device: trusted };
}

/**
 * Sets a new password after verifyCurrentPassword passed, and replaces the session that asked
 * (session ids rotate on a password change). Every other session is revoked.
 */
export async function changePassword(
  deps: AccountDeps & Pick<AppDeps, 'limiter'>,
  session: ValidSession,
  newPassword: string,
  policy: SessionPolicy,
  meta: SessionMeta,
): Promise<{ token: string; expiresAt: Date }> {
  const user = session.user;
  assertPasswordAllowed(deps, newPassword, user);
  if (user.password_hash !== null && (await deps.hasher.verify(user.password_hash, newPassword))) {
    throw weakPassword([{ code: 'contains_context', message: 'Choose a password different from the current one.' }]);
  }
  const hash = await deps.hasher.hash(newPassword);
  const rotated = await deps.db.transaction().execute(async (trx) => {
    const nowMs = deps.clock.now().getTime();
    // The users row first, then the session, in the order a reset takes them (no deadlock). A
    // reset or another change that wrote while this request was hashing moved the version and
    // revoked this session: it won, and this change writes nothing.
    const written = await setPasswordHash(trx, user.id, hash, nowMs, { mustChange: false, expectedChangedAt: user.password_changed_at });
    if (!written || !(await revokeSessionByHash(trx, session.tokenHash))) throw unauthenticated();
    await revokeUserSessions(trx, user.id);
    return createSession({ db: trx, clock: deps.clock, random: deps.random }, user.id, policy, meta);
  });
  await forgetFailedSignIns(deps, user);
  return rotated;
}

/** An admin's unlock of an account locked by failed sign-ins. */
export async function unlockUser(deps: Pick<AppDeps, 'db' | 'clock' | 'limiter'>, id: string): Promise<User> {
  const row = await unlockUserRow(deps.db, id, deps.clock.now().getTime());
  if (row === undefined) throw notFound('No such user.');
  await forgetFailedSignIns(deps, row);
  return toUser(row);
}

/**
 * After a reset, a new password or an admin's unlock: the waits and locks of every spelling of
 * the account's login are lifted, so the new password works at once.
 */
export async function forgetFailedSignIns(deps: Pick<AppDeps, 'db' | 'limiter'>, user: Pick<UserRow, 'email_normalized' | 'username_normalized'>): Promise<void> {
  const logins = [user.email_normalized, user.username_normalized];
  for (const login of logins) if (login !== null) await deps.limiter.clearFailures(loginThrottleKey(login));
  await unlockSignIn(deps.db, logins);
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
    throw invalidInput('Give an email, a username or both.', { email: 'Give an email or a username.' });
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
    // A new account starts with no lock, whatever strangers typed before it existed.
    await unlockSignIn(deps.db, [row.email_normalized, row.username_normalized]);
    return toUser(row);
  } catch (err) {
    throw takenError(err) ?? err;
  }
}

function takenError(err: unknown): DomainError | undefined {
  const column = uniqueViolation(err);
  return column === undefined ? undefined : taken(column);
}


/**
 * Applies an admin's edit; `actorId`, the admin making it, may not demote or disable themselves
 * (cannot_demote_self, cannot_disable_self). The last-admin rule is checked inside the transaction that writes,
 * so two admins demoting each other at once cannot both succeed (SQLite serialises writers;
 * PostgreSQL takes row locks on the admins first).
 */
export async function editUser(deps: AccountDeps, id: string, changes: UserChanges, options: { actorId?: string } = {}): Promise<User> {
  try {
    return await deps.db.transaction().execute(async (trx) => {
      await lockAdmins(trx);
      const before = await findUserById(trx, id);
      if (before === undefined) throw notFound('No such user.');
      // An admin never takes their own rights away: another admin must (checked before last_admin).
      if (options.actorId === id) {
        if (changes.role !== undefined && changes.role !== before.role) throw cannotDemoteSelf();
        if (changes.disabled === true && before.disabled === 0) throw cannotDisableSelf();
      }
      const losesAdmin =
        before.role === 'system-admin' && before.disabled === 0 && (changes.role === 'user' || changes.disabled === true);
      if (losesAdmin && (await countEnabledAdmins(trx, { excludingId: id })) === 0) throw lastAdmin();
      const emailAfter = changes.email !== undefined ? changes.email : before.email;
      if (emailAfter === null && before.username === null) {
        throw invalidInput('A user needs an email or a username.', { email: 'Required: this user has no username.' });
      }
      const after = await updateUser(trx, id, changes, deps.clock.now().getTime());
      // A role change rotates the account's sessions: none keeps the privileges it was issued with.
      if (changes.disabled === true || (changes.role !== undefined && changes.role !== before.role)) await revokeUserSessions(trx, id);
      return toUser(after!);
    });
  } catch (err) {
    throw takenError(err) ?? err;
  }
}

/** Deletes an account; `actorId`, the admin deleting, may not delete themselves (cannot_delete_self). */
export async function removeUser(deps: AccountDeps, id: string, options: { actorId?: string } = {}): Promise<UserRow> {
  return deps.db.transaction().execute(async (trx) => {
    await lockAdmins(trx);
    const before = await findUserById(trx, id);
    if (before === undefined) throw notFound('No such user.');
    if (options.actorId === id) throw cannotDeleteSelf();
    if (before.role === 'system-admin' && before.disabled === 0 && (await countEnabledAdmins(trx, { excludingId: id })) === 0) {
      throw lastAdmin();
    }
    await deleteUser(trx, id);
    return before;
  });
}

/** Sets a password without knowing the old one (CLI break-glass, first admin); revokes every session. */
export async function setPassword(deps: AccountDeps & Pick<AppDeps, 'limiter'>, user: UserRow, password: string, options: { mustChange: boolean }): Promise<void> {
  assertPasswordAllowed(deps, password, user);
  const hash = await deps.hasher.hash(password);
  await deps.db.transaction().execute(async (trx) => {
    await setPasswordHash(trx, user.id, hash, deps.clock.now().getTime(), options);
    await revokeUserSessions(trx, user.id);
  });
  await forgetFailedSignIns(deps, user);
}
