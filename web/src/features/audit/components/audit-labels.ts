import type { AuditOutcome, AuditType } from '../api/get-audit-events';

/** Every event type, as the page names it; the type check demands one for each type the server records. */
export const AUDIT_TYPE_LABELS: Record<AuditType, string> = {
  login_succeeded: 'Sign-in succeeded',
  login_failed: 'Sign-in failed',
  password_changed: 'Password changed',
  password_check_failed: 'Wrong current password',
  account_locked: 'Sign-in locked',
  account_unlocked: 'Sign-in unlocked',
  signed_out_everywhere: 'Signed out everywhere',
  session_signed_out: 'Session signed out',
  signed_out_other_sessions: 'Other sessions signed out',
  user_created: 'User created',
  user_updated: 'User updated',
  user_deleted: 'User deleted',
  admin_bootstrapped: 'First admin created',
  reset_requested: 'Reset requested',
  reset_email_sent: 'Reset email sent',
  reset_email_failed: 'Reset email failed',
  email_given_up: 'Email given up',
  reset_completed: 'Password reset',
  reset_refused: 'Reset refused',
  admin_reset_sent: 'Reset link sent by an admin',
  settings_changed: 'Settings changed',
  email_test_sent: 'Test email sent',
};

export const AUDIT_OUTCOME_LABELS: Record<AuditOutcome, string> = { success: 'Success', failure: 'Failure' };

/** A type's label; older rows may hold a type no longer recorded ("logout"). */
export function auditTypeLabel(type: string): string {
  if (type === 'logout') return 'Signed out';
  return (AUDIT_TYPE_LABELS as Record<string, string | undefined>)[type] ?? type;
}
