import { api } from '../../../lib/api';

/** 204: every session of the account ends, this one included, and the session cookie is cleared. Bodiless. */
export async function signOutEverywhere(): Promise<void> {
  await api.post<void>('/api/auth/logout-everywhere');
}
