import { api } from '../../../lib/api';
import type { AccountSession, AccountSessionList } from '../../../types/api';

/** The signed-in user's live sessions, the most recently seen first. */
export async function getSessions(): Promise<AccountSession[]> {
  const { sessions } = await api.get<AccountSessionList>('/api/account/sessions');
  return sessions;
}
