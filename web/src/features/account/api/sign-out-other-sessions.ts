import { api } from '../../../lib/api';

/** 204: every session of this user but this browser's is signed out. */
export async function signOutOtherSessions(): Promise<void> {
  await api.post<void>('/api/account/sign-out-others');
}
