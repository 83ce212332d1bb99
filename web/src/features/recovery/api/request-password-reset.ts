import { api } from '../../../lib/api';

/**
 * 202 with the same body for every well-formed address, known or not, so the page can only
 * ever say "if an account uses that address…". 400 `invalid_request` for a malformed address.
 */
export async function requestPasswordReset(email: string): Promise<void> {
  await api.post<unknown>('/api/auth/forgot-password', { email });
}
