import { api } from '../../../lib/api';
import type { User } from '../../../types/api';

export async function getUsers(): Promise<User[]> {
  const { users } = await api.get<{ users: User[] }>('/api/users');
  return users;
}
