import { DomainError } from '../errors.js';

// Every code the recovery feature raises (besides the common ones of src/errors.ts and accounts' weak_password).
export const RECOVERY_ERROR_CODES = ['invalid_or_expired_token', 'password_mismatch', 'no_email', 'user_disabled'] as const;
export type RecoveryErrorCode = (typeof RECOVERY_ERROR_CODES)[number];

export class RecoveryError extends DomainError {
  declare readonly code: RecoveryErrorCode;
  constructor(code: RecoveryErrorCode, message: string) {
    super(code, message);
    this.name = 'RecoveryError';
  }
}

/** One answer for unknown, used, expired, superseded and malformed tokens. */
export const invalidToken = (): RecoveryError => new RecoveryError('invalid_or_expired_token', 'This link is invalid or has expired. Ask for a new one.');
export const passwordMismatch = (): RecoveryError => new RecoveryError('password_mismatch', 'The two passwords do not match.');
export const noEmail = (): RecoveryError => new RecoveryError('no_email', 'This user has no email address to send a link to.');
export const userDisabled = (): RecoveryError => new RecoveryError('user_disabled', 'This user is disabled: enable the account first.');
