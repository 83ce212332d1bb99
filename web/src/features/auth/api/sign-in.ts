import { api } from '../../../lib/api';
import type { User } from '../../../types/api';

export interface SignInInput {
  /** email or username */
  login: string;
  password: string;
}

/** 200 `{user}` and a session cookie; 401 `invalid_credentials`; 429 with Retry-After. */
export async function signIn(input: SignInInput): Promise<User> {
  const { user } = await api.post<{ user: User }>('/api/auth/login', input);
  return user;
}
