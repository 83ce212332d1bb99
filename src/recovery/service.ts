import type { AppDeps } from '../deps.js';
import { auditLabel as labelOf, auditRow, recordAudit } from '../audit/audit.js';
import { groupCommitOf, type NewRow } from '../db/group-commit.js';
import { invalidInput, rateLimited } from '../errors.js';
import { weakPassword } from '../accounts/errors.js';
import { invalidToken, noEmail, passwordMismatch, userDisabled } from './errors.js';
import { rateLimitKeyOfIp } from '../limits/client-ip.js';
import { maskEmail, normalizeEmail, parseEmail } from '../accounts/identifiers.js';
import { checkPassword } from '../accounts/policy.js';
import { forgetFailedSignIns } from '../accounts/service.js';
import { revokeUserSessions } from '../accounts/sessions.js';
import { setPasswordHash, type UserRow } from '../accounts/users-repo.js';
import { enqueueDelivery, newDeliveryRow } from '../mail/outbox.js';
import { consumeResetToken, findLiveToken, type TokenPurpose } from './tokens.js';

/** A new user has longer than a forgetful one to act on the link. */
export const SET_PASSWORD_LINK_MINUTES = 24 * 60;

export type RecoveryDeps = Pick<AppDeps, 'db' | 'clock' | 'random' | 'config' | 'limiter' | 'hasher' | 'logger' | 'outbox'>;


/**
 * Forgot-password: validate, rate-limit, enqueue. Nothing here depends on whether the address
 * has an account — the worker looks it up later — so the answer and its timing cannot tell.
 */
export async function requestPasswordReset(deps: RecoveryDeps, typed: string, ip: string): Promise<void> {
  const email = parseEmail(typed);
  if (email === null) throw invalidInput('Enter one email address, like name@example.com.', { email: 'Enter one email address.' });
  const key = normalizeEmail(email);
  const nowMs = deps.clock.now().getTime();
  const [byIp, byAddress] = await Promise.all([
    deps.limiter.hit(`forgot:ip:${rateLimitKeyOfIp(ip)}`, deps.config.limits.forgotPerIpPerMinute, 60),
    deps.limiter.hit(`forgot:address:${key}`, deps.config.limits.forgotPerAddressPerHour, 3600),
  ]);
  const throttled = !byIp.allowed || !byAddress.allowed;
  const audit: NewRow = {
    table: 'audit_events',
    values: auditRow(deps.clock, {
      type: 'reset_requested',
      ip,
      outcome: throttled ? 'failure' : 'success',
      detail: { email: maskEmail(email), ...(throttled ? { throttled: true } : {}) },
    }),
  };
  // Over a limit the answer stays the same 202; simply nothing is sent.
  if (throttled) return groupCommitOf(deps.db).insert([audit]);
  // Written with other requests' rows, one commit for many; answered once they are durable.
  const delivery = newDeliveryRow(deps.random, {
    kind: 'reset',
    userId: null,
    lookupEmail: key,
    toAddress: null,
    nowMs,
    notAfterMs: nowMs + deps.config.resetTokenTtlMinutes * 60_000,
    ip,
  });
  await groupCommitOf(deps.db).insert([audit, { table: 'mail_outbox', values: delivery }]);
  deps.outbox.wake();
}

/** An admin's "Send reset link", or the set-password email of a user created without a password. */
export async function sendResetLink(deps: RecoveryDeps, user: UserRow, purpose: TokenPurpose, actorId: string | null): Promise<void> {
  if (user.disabled === 1) throw userDisabled();
  if (user.email === null) throw noEmail();
  const nowMs = deps.clock.now().getTime();
  const minutes = purpose === 'set_password' ? SET_PASSWORD_LINK_MINUTES : deps.config.resetTokenTtlMinutes;
  await enqueueDelivery(deps.db, deps.random, {
    kind: purpose === 'set_password' ? 'set_password' : 'reset',
    userId: user.id,
    toAddress: user.email,
    nowMs,
    notAfterMs: nowMs + minutes * 60_000,
    actorId,
  });
  deps.outbox.wake();
}

export async function verifyResetToken(deps: RecoveryDeps, token: string, ip: string): Promise<{ expiresAt: string }> {
  await limitResetAttempts(deps, ip);
  const live = await findLiveToken(deps.db, token, deps.clock.now().getTime());
  if (live === null) throw invalidToken();
  return { expiresAt: new Date(live.expiresAtMs).toISOString() };
}

async function limitResetAttempts(deps: RecoveryDeps, ip: string): Promise<void> {
  const r = await deps.limiter.hit(`reset:ip:${rateLimitKeyOfIp(ip)}`, deps.config.limits.resetPerIpPerMinute, 60);
  if (!r.allowed) throw rateLimited(r.retryAfterSeconds);
}

/**
 * Completes a reset. Refusals (mismatch, weak password) leave the token usable. The token is
 * consumed before the password changes, in the transaction that changes it and revokes every
 * session (an account has one token at most): of racing requests exactly one wins.
 */
export async function completeReset(deps: RecoveryDeps, input: { token: string; password: string; confirmPassword: string }, ip: string): Promise<void> {
  await limitResetAttempts(deps, ip);
  const refuse = async (reason: string, user?: UserRow): Promise<void> => {
    await recordAudit(deps.db, deps.clock, { type: 'reset_refused', target: user && labelOf(user), ip, outcome: 'failure', detail: { reason } });
  };
  const live = await findLiveToken(deps.db, input.token, deps.clock.now().getTime());
  if (live === null) {
    await refuse('invalid_or_expired_token');
    throw invalidToken();
  }
  if (input.password !== input.confirmPassword) {
    await refuse('password_mismatch', live.user);
    throw passwordMismatch();
  }
  const reasons = checkPassword(input.password, deps.config.passwordMinLength, live.user);
  if (reasons.length > 0) {
    await refuse('weak_password', live.user);
    throw weakPassword(reasons);
  }
  // Hashing takes tens of milliseconds: done before the transaction so no write lock waits on it.
  const hash = await deps.hasher.hash(input.password);
  const user = await deps.db.transaction().execute(async (trx) => {
    const nowMs = deps.clock.now().getTime();
    const owner = await consumeResetToken(trx, live.tokenHash, nowMs);
    if (owner === null) return null;
    // Written only if the password is still the one the token was bound to: a change that
    // raced in wins, and this reset reports an invalid link.
    if (!(await setPasswordHash(trx, owner.id, hash, nowMs, { mustChange: false, expectedChangedAt: owner.password_changed_at }))) return null;
    await revokeUserSessions(trx, owner.id);
    if (owner.email !== null) {
      await enqueueDelivery(trx, deps.random, { kind: 'password_changed', userId: owner.id, toAddress: owner.email, nowMs, notAfterMs: null, ip });
    }
    return owner;
  });
  if (user === null) {
    await refuse('invalid_or_expired_token', live.user);
    throw invalidToken();
  }
  deps.outbox.wake();
  // The new password works at once: the sign-in waits and locks of both spellings of this login are lifted.
  await forgetFailedSignIns(deps, user);
  await recordAudit(deps.db, deps.clock, { type: 'reset_completed', target: labelOf(user), ip, outcome: 'success', detail: { purpose: live.purpose } });
}
