import { DomainError } from '../errors.js';

// Every code the mail feature raises (besides the common ones of src/errors.ts). The email test's
// diagnosis codes (not_configured, secret_not_found, …) are values of its result, not errors.
export const MAIL_ERROR_CODES = ['reauthentication_required', 'delivery_target_locked', 'email_settings_not_saved'] as const;
export type MailErrorCode = (typeof MAIL_ERROR_CODES)[number];

export class MailError extends DomainError {
  declare readonly code: MailErrorCode;
  constructor(code: MailErrorCode, message: string) {
    super(code, message);
    this.name = 'MailError';
  }
}

export const REAUTHENTICATION_REQUIRED_MESSAGE = 'Enter your current password to change where mail is sent.';
export const reauthenticationRequired = (): MailError => new MailError('reauthentication_required', REAUTHENTICATION_REQUIRED_MESSAGE);

/** MAIL_DEV_INBOX=true, production or MAIL_DEV_INBOX=false fix where mail goes: the environment decides, not the page. */
export const deliveryTargetLocked = (message: string): MailError => new MailError('delivery_target_locked', message);
export const emailSettingsNotSaved = (): MailError =>
  new MailError('email_settings_not_saved', 'Save the “Forgot password” email settings first: mail cannot go to your mail server without them.');
