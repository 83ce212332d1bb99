import { api } from '../../../lib/api';
import type { ChangePasswordBody } from '../../../types/api';

export type ChangePasswordInput = ChangePasswordBody;

/**
 * 204 with a new session cookie (the session id rotates; every other session is signed out);
 * 400 `invalid_current_password` or `weak_password` with reasons; 401 `unauthenticated` once ten
 * wrong current passwords in a row ended the session; 429 and 503 with Retry-After.
 */
export async function changePassword(input: ChangePasswordInput): Promise<void> {
  await api.post<void>('/api/auth/change-password', input);
}
