import { api } from '../../../lib/api';
import type { PatchUserBody, User } from '../../../types/api';

export type UserChanges = PatchUserBody;

/** 200 `{user}`; 409 `last_admin` when it would leave no enabled system admin; 409 `email_taken`. */
export async function updateUser(id: string, changes: UserChanges): Promise<User> {
  const { user } = await api.patch<{ user: User }>(`/api/users/${encodeURIComponent(id)}`, changes);
  return user;
}
