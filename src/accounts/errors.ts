import { DomainError } from '../errors.js';
import type { PolicyReason } from './policy.js';

// Every code the accounts feature raises (besides the common ones of src/errors.ts).
export const ACCOUNT_ERROR_CODES = [
  'invalid_credentials',
  'sign_in_locked',
  'invalid_current_password',
  'password_change_required',
  'weak_password',
  'email_taken',
  'username_taken',
  'last_admin',
  'cannot_delete_self',
  'cannot_demote_self',
  'cannot_disable_self',
] as const;
export type AccountErrorCode = (typeof ACCOUNT_ERROR_CODES)[number];

export class AccountError extends DomainError {
  declare readonly code: AccountErrorCode;
  constructor(code: AccountErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(code, message, details);
    this.name = 'AccountError';
  }
}

/** One answer for every login, known or not, once untrusted clients have failed too often. */
export const SIGN_IN_LOCKED_MESSAGE = 'Too many failed sign-ins — reset your password, or ask an admin.';

export const invalidCredentials = (): AccountError => new AccountError('invalid_credentials', 'The sign-in name or password is not correct.');
export const signInLocked = (): AccountError => new AccountError('sign_in_locked', SIGN_IN_LOCKED_MESSAGE);
export const invalidCurrentPassword = (): AccountError => new AccountError('invalid_current_password', 'The current password is not correct.');
export const passwordChangeRequired = (): AccountError => new AccountError('password_change_required', 'Change your password first.');
export const weakPassword = (reasons: PolicyReason[]): AccountError =>
  new AccountError('weak_password', reasons.map((r) => r.message).join(' '), { reasons });
export const taken = (column: 'email' | 'username'): AccountError =>
  column === 'email' ? new AccountError('email_taken', 'Another user has this email.') : new AccountError('username_taken', 'Another user has this username.');
export const lastAdmin = (): AccountError => new AccountError('last_admin', 'At least one enabled system admin must remain.');
export const cannotDeleteSelf = (): AccountError => new AccountError('cannot_delete_self', 'You cannot delete your own account. Another system admin can.');
export const cannotDemoteSelf = (): AccountError => new AccountError('cannot_demote_self', 'You cannot change your own role. Another system admin can.');
export const cannotDisableSelf = (): AccountError => new AccountError('cannot_disable_self', 'You cannot disable your own account. Another system admin can.');
