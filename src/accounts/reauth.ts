import type { AppDeps } from '../deps.js';
import { auditLabel, recordAudit } from '../audit/audit.js';
import { rateLimited, unauthenticated } from '../errors.js';
import { invalidCurrentPassword } from './errors.js';
import { revokeSessionByHash, type ValidSession } from './sessions.js';

/** Wrong current passwords in a row that end the session: whoever holds it is guessing, not mistyping. */
export const MAX_CURRENT_PASSWORD_FAILURES = 10;

// Accounts with a check under way in this process.
const checking = new Set<string>();

export type ReauthDeps = Pick<AppDeps, 'db' | 'clock' | 'hasher' | 'limiter'>;

/**
 * Asks a signed-in user for their password again (change-password, where mail is sent). A
 * stolen session must not become a guessing oracle: the sign-in's growing wait applies, keyed by
 * the account; failures are audited; MAX_CURRENT_PASSWORD_FAILURES in a row end the session.
 * Throws 400 invalid_current_password, 429 rate_limited, 401 unauthenticated (session ended).
 */
export async function verifyCurrentPassword(deps: ReauthDeps, session: ValidSession, password: string, ip: string): Promise<void> {
  const user = session.user;
  // One check per account at a time: parallel guesses would all pass the wait before the first
  // failure is counted, and each would hold a place in the server-wide hash queue.
  if (checking.has(user.id)) throw rateLimited(1);
  checking.add(user.id);
  try {
    const key = `password:${user.id}`;
    const { waitSeconds } = await deps.limiter.failureState(key);
    if (waitSeconds > 0) throw rateLimited(waitSeconds);
    if (user.password_hash !== null && (await deps.hasher.verify(user.password_hash, password))) {
      await deps.limiter.clearFailures(key);
      return;
    }
    const failures = await deps.limiter.recordFailure(key);
    const sessionEnded = failures >= MAX_CURRENT_PASSWORD_FAILURES;
    if (sessionEnded) await revokeSessionByHash(deps.db, session.tokenHash);
    await recordAudit(deps.db, deps.clock, {
      type: 'password_check_failed',
      actor: auditLabel(user),
      ip,
      outcome: 'failure',
      detail: { failures, ...(sessionEnded ? { sessionEnded: true } : {}) },
    });
    if (sessionEnded) throw unauthenticated('Too many wrong passwords: you were signed out. Sign in again.');
    throw invalidCurrentPassword();
  } finally {
    checking.delete(user.id);
  }
}
