import { api } from '../../../lib/api';
import type { User } from '../../../types/api';

/** 200 `{user}` with `locked: false`: untrusted browsers may sign in again. 404 for a deleted user. Bodiless. */
export async function unlockUser(id: string): Promise<User> {
  const { user } = await api.post<{ user: User }>(`/api/users/${encodeURIComponent(id)}/unlock`);
  return user;
}
