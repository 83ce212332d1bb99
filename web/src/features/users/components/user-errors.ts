import { ApiError, describeError } from '../../../lib/api';
import { splitFieldErrors } from '../../../lib/field-errors';
import type { FieldMessages } from '../../../lib/use-form';

export type UserFieldName = 'email' | 'username' | 'name' | 'role' | 'password' | 'disabled';
export type UserFieldErrors = FieldMessages<UserFieldName>;

/** The user form's fields, in the order the first refused one is focused. */
export const FIELD_ORDER: readonly UserFieldName[] = ['email', 'username', 'name', 'role', 'password', 'disabled'];

/** Where a server refusal belongs: on a field when it names one, else on the whole form. */
export function placeUserError(error: unknown): { fields: UserFieldErrors; message: string } {
  const code = error instanceof ApiError ? error.code : undefined;
  if (code === 'email_taken') return { fields: { email: 'Another user already has this email.' }, message: '' };
  if (code === 'username_taken') return { fields: { username: 'Another user already has this username.' }, message: '' };
  if (code === 'last_admin') {
    return { fields: {}, message: 'This is the last enabled system admin. Make another user a system admin first: at least one must remain.' };
  }
  if (code === 'cannot_delete_self' || code === 'cannot_demote_self' || code === 'cannot_disable_self') {
    return { fields: {}, message: describeError(error) };
  }
  return splitFieldErrors(error, FIELD_ORDER, { password: 'password' });
}

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
