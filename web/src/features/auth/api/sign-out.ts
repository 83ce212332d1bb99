import { api } from '../../../lib/api';

/** 204, with or without a session. Bodiless, so no content type. */
export async function signOut(): Promise<void> {
  await api.post<void>('/api/auth/logout');
}
