import { api } from '../../../lib/api';
import type { ResetTokenStatus } from '../../../types/api';

/** 200 `{valid: true, expiresAt}`; 400 `invalid_or_expired_token`. Never uses the token up. */
export async function verifyResetToken(token: string): Promise<{ expiresAt: string }> {
  const { expiresAt } = await api.post<ResetTokenStatus>('/api/auth/reset-password/verify', { token });
  return { expiresAt };
}
