import { api } from '../../../lib/api';

/** 202: a reset link is queued for the user's stored email. 409 `no_email` / `user_disabled`; 404 for a deleted user. Bodiless. */
export async function sendResetLink(id: string): Promise<void> {
  await api.post<unknown>(`/api/users/${encodeURIComponent(id)}/send-reset`);
}
