import { parseEmail, parseUsername } from './identifiers.js';
import type { NewUser } from './service.js';

export interface NewUserInput {
  email?: string | null;
  username?: string | null;
  name: string;
  role: string;
  password?: string | null;
}

export type NewUserResult = { ok: true; user: NewUser } | { ok: false; fields: Record<string, string>; message: string };

const MAX_NAME_LENGTH = 200;
const MAX_PASSWORD_LENGTH = 1024;

/**
 * The one reading of a new user, for POST /api/users and `gatehouse users create` alike. A blank
 * email, username or password counts as not given. Field errors come first and together; then a
 * user with neither a password nor an email (nobody could ever sign in as them); then one with
 * neither an email nor a username. The password policy is createUser's to judge.
 */
export function parseNewUser(input: NewUserInput): NewUserResult {
  const fields: Record<string, string> = {};
  const email = blank(input.email) ? null : parseEmail(input.email!);
  if (!blank(input.email) && email === null) fields.email = 'Enter one email address, like name@example.com.';
  const username = blank(input.username) ? null : parseUsername(input.username!);
  if (!blank(input.username) && username === null) fields.username = 'Use 1 to 64 letters, digits, dots, dashes or underscores.';
  const name = input.name.trim();
  if (name.length === 0) fields.name = 'Required.';
  else if (name.length > MAX_NAME_LENGTH) fields.name = `Use at most ${MAX_NAME_LENGTH} characters.`;
  const role = input.role === 'system-admin' || input.role === 'user' ? input.role : null;
  if (role === null) fields.role = 'Use system-admin or user.';
  const password = blank(input.password) ? null : input.password!;
  // The route's schema bounds the name and the password too: the CLI keeps to the same ones.
  if (password !== null && password.length > MAX_PASSWORD_LENGTH) fields.password = `Use at most ${MAX_PASSWORD_LENGTH} characters.`;
  if (Object.keys(fields).length > 0 || role === null) return { ok: false, fields, message: 'Some fields are not valid.' };
  if (password === null && email === null) {
    return { ok: false, fields: { password: 'Required when there is no email.' }, message: 'Give a password, or an email to send a set-password link to.' };
  }
  if (email === null && username === null) return { ok: false, fields: { email: 'Give an email or a username.' }, message: 'Give an email, a username or both.' };
  return { ok: true, user: { email, username, name, role, password } };
}

function blank(value: string | null | undefined): boolean {
  return value === undefined || value === null || value.trim() === '';
}
