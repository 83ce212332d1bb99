import { api } from '../../../lib/api';
import type { User } from '../../../types/api';

export interface SignInInput {
  /** email or username */
  login: string;
  password: string;
}

/** 200 `{user}`, a session cookie and a device cookie; 401 `invalid_credentials`; 403 `sign_in_locked`; 429 and 503 with Retry-After. */
export async function signIn(input: SignInInput): Promise<User> {
  const { user } = await api.post<{ user: User }>('/api/auth/login', input);
  return user;
}
