import { ApiError, api } from '../../../lib/api';
import type { User } from '../../../types/api';

/** The signed-in user, or null when there is no valid session (401). */
export async function getCurrentUser(): Promise<User | null> {
  try {
    const { user } = await api.get<{ user: User }>('/api/auth/me');
    return user;
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return null;
    throw error;
  }
}
