import { api } from '../../../lib/api';
import type { PatchAccountBody, User } from '../../../types/api';

/** 200 `{user}`; 400 `invalid_request` with `fields.name` for a blank name. */
export async function updateName(name: string): Promise<User> {
  const body: PatchAccountBody = { name };
  const { user } = await api.patch<{ user: User }>('/api/account', body);
  return user;
}
