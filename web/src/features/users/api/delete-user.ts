import { api } from '../../../lib/api';

/** 204; 409 `last_admin` for the last enabled system admin. */
export async function deleteUser(id: string): Promise<void> {
  await api.delete<void>(`/api/users/${encodeURIComponent(id)}`);
}
