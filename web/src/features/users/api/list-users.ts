import { api } from '../../../lib/api';
import type { UserListQuery } from '../../../../../src/accounts/api-schemas';
import type { User } from '../../../types/api';

export type UserFilter = Pick<UserListQuery, 'q' | 'role' | 'status'>;

export interface UserPage {
  users: User[];
  /** how many users match the filter */
  total: number;
  /** pass as `after` for the next page; undefined on the last page */
  nextCursor: string | undefined;
}

/** One page of users, ordered by name: GET /api/users with a search, role and status, `limit` and `after`. */
export async function listUsers(filter: UserFilter, options: { limit: number; after?: string | undefined }): Promise<UserPage> {
  const params = new URLSearchParams();
  const q = filter.q?.trim();
  if (q) params.set('q', q);
  if (filter.role) params.set('role', filter.role);
  if (filter.status) params.set('status', filter.status);
  params.set('limit', String(options.limit));
  if (options.after !== undefined) params.set('after', options.after);
  const page = await api.get<{ users: User[]; total?: number; nextCursor?: string }>(`/api/users?${params.toString()}`);
  return { users: page.users, total: page.total ?? page.users.length, nextCursor: page.nextCursor };
}
