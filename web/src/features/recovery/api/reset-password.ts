import { api } from '../../../lib/api';
import type { ResetPasswordBody } from '../../../types/api';

export type ResetPasswordInput = ResetPasswordBody;

/** 204; 400 `invalid_or_expired_token`, then `password_mismatch`, then `weak_password` (reasons). */
export async function resetPassword(input: ResetPasswordInput): Promise<void> {
  await api.post<void>('/api/auth/reset-password', input);
}
