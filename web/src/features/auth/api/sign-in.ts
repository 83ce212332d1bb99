import { api } from '../../../lib/api';
import type { LoginBody, User } from '../../../types/api';

/** `login` is an email or a username. */
export type SignInInput = LoginBody;

/** 200 `{user}`, a session cookie and a device cookie; 401 `invalid_credentials`; 403 `sign_in_locked`; 429 and 503 with Retry-After. */
export async function signIn(input: SignInInput): Promise<User> {
  const { user } = await api.post<{ user: User }>('/api/auth/login', input);
  return user;
}
