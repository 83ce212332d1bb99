import { api } from '../../../lib/api';

/** 204; 404 `not_found` when the session is already gone (or never was this user's). */
export async function signOutSession(id: string): Promise<void> {
  await api.delete<void>(`/api/account/sessions/${encodeURIComponent(id)}`);
}
