import { ApiError, describeError } from '../../../lib/api';

export type UserFieldName = 'email' | 'username' | 'name' | 'role' | 'password' | 'disabled';
export type UserFieldErrors = Partial<Record<UserFieldName, string | string[]>>;

const FIELD_NAMES: readonly UserFieldName[] = ['email', 'username', 'name', 'role', 'password', 'disabled'];

/** Where a server refusal belongs: on a field when it names one, else on the whole form. */
export function placeUserError(error: unknown): { fields: UserFieldErrors; message: string } {
  if (!(error instanceof ApiError)) return { fields: {}, message: describeError(error) };
  switch (error.code) {
    case 'email_taken':
      return { fields: { email: 'Another user already has this email.' }, message: '' };
    case 'username_taken':
      return { fields: { username: 'Another user already has this username.' }, message: '' };
    case 'weak_password':
      return { fields: { password: error.reasons.length > 0 ? error.reasons.map((r) => r.message) : error.message }, message: '' };
    case 'last_admin':
      return {
        fields: {},
        message: 'This is the last enabled system admin. Make another user a system admin first: at least one must remain.',
      };
    case 'invalid_request': {
      const fields: UserFieldErrors = {};
      const other: string[] = [];
      for (const [key, value] of Object.entries(error.fields)) {
        if ((FIELD_NAMES as readonly string[]).includes(key)) fields[key as UserFieldName] = value;
        else other.push(value);
      }
      const message = Object.keys(fields).length === 0 || other.length > 0 ? [error.message, ...other].join(' ') : '';
      return { fields, message };
    }
    default:
      return { fields: {}, message: describeError(error) };
  }
}

export const FIELD_ORDER = FIELD_NAMES;

/** Why "Send reset link" was refused, naming the user and what to do. */
export function sendResetErrorMessage(error: unknown, user: { name: string }): string {
  if (error instanceof ApiError && error.code === 'no_email') {
    return `No reset link was sent: ${user.name} has no email address. Edit the user to add one, then send the link.`;
  }
  if (error instanceof ApiError && error.code === 'user_disabled') {
    return `No reset link was sent: ${user.name} is disabled. Enable the account first, then send the link.`;
  }
  if (error instanceof ApiError && error.status === 404) return `No reset link was sent: ${user.name} no longer exists.`;
  return describeError(error);
}

/** Why "Unlock" did not work, naming the user. */
export function unlockErrorMessage(error: unknown, user: { name: string }): string {
  if (error instanceof ApiError && error.status === 404) return `${user.name} was not unlocked: the user no longer exists.`;
  return describeError(error);
}
