import type { AppDeps } from '../deps.js';
import { auditLabel as labelOf, recordAudit } from '../audit/audit.js';
import { findUserByEmail, findUserById, type UserRow } from '../accounts/users-repo.js';
import type { DeliveryHandler, DeliveryRow, Prepared } from '../mail/outbox.js';
import { emailBrand, passwordChangedEmail, resetPasswordEmail, setPasswordEmail } from '../mail/templates.js';
import type { MailSendError } from '../mail/transport.js';
import { deleteResetToken, mintResetToken, type TokenPurpose } from './tokens.js';

// The outbox worker's side of recovery (it runs in the delivery thread): what each kind of
// delivery becomes when it is sent.

/** The worker's handlers: they look the account up and, when sending, mint the token. */
export function recoveryHandlers(deps: Pick<AppDeps, 'db' | 'clock' | 'random' | 'config'>): Record<DeliveryRow['kind'], DeliveryHandler> {
  const audit = (type: 'reset_email_sent' | 'reset_email_failed' | 'email_given_up', user: UserRow, row: DeliveryRow, detail?: Record<string, unknown>): Promise<void> =>
    recordAudit(deps.db, deps.clock, {
      type,
      target: labelOf(user),
      ip: row.ip,
      outcome: type === 'reset_email_sent' ? 'success' : 'failure',
      detail: { kind: row.kind, attempt: row.attempts, ...detail },
    });
  // The last attempt failed: the email will never arrive, and an admin can see it (Audit page).
  const gaveUp = async (user: UserRow, row: DeliveryRow, err: MailSendError, outcome: { gaveUp: boolean }): Promise<void> => {
    if (outcome.gaveUp) await audit('email_given_up', user, row, { error: err.code, transient: err.transient });
  };

  const linkEmail = (purpose: TokenPurpose): DeliveryHandler => async (row) => {
    const user = row.user_id !== null ? await findUserById(deps.db, row.user_id) : await findUserByEmail(deps.db, row.lookup_email ?? '');
    // Unknown, disabled and email-less accounts get nothing; the request leaves no delivery behind.
    if (user === undefined || user.disabled === 1 || user.email === null) return { action: 'drop' };
    const nowMs = deps.clock.now().getTime();
    if (row.not_after !== null && nowMs >= row.not_after) return { action: 'expire' };
    const expiresAtMs = row.not_after ?? nowMs + deps.config.resetTokenTtlMinutes * 60_000;
    const token = await mintResetToken(deps.db, deps.random, { user, deliveryId: row.id, purpose, nowMs, expiresAtMs });
    const link = `${deps.config.publicUrl.href.replace(/\/$/, '')}/reset-password#token=${token}`;
    // Rounded: a link minted a few milliseconds after the request still says "1 hour", not "59 minutes".
    const validMinutes = Math.max(1, Math.round((expiresAtMs - nowMs) / 60_000));
    const render = purpose === 'set_password' ? setPasswordEmail : resetPasswordEmail;
    const prepared: Prepared = {
      action: 'send',
      userId: user.id,
      toAddress: user.email,
      message: render({ to: user.email, name: user.name, link, validMinutes, brand: emailBrand(deps.config) }),
      onSent: () => audit('reset_email_sent', user, row),
      onFailed: async (err, outcome) => {
        // The link never arrived: it must not stay usable. A retry mints a fresh one.
        await deleteResetToken(deps.db, token);
        await audit('reset_email_failed', user, row, { error: err.code });
        await gaveUp(user, row, err, outcome);
      },
    };
    return prepared;
  };

  return {
    reset: linkEmail('reset'),
    set_password: linkEmail('set_password'),
    async password_changed(row) {
      const user = row.user_id === null ? undefined : await findUserById(deps.db, row.user_id);
      if (user === undefined || user.email === null) return { action: 'drop' };
      return {
        action: 'send',
        userId: user.id,
        toAddress: user.email,
        message: passwordChangedEmail({ to: user.email, name: user.name, at: new Date(row.requested_at), brand: emailBrand(deps.config) }),
        onFailed: (err, outcome) => gaveUp(user, row, err, outcome),
      };
    },
  };
}
