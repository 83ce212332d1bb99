import { api } from '../../../lib/api';

export interface ChangePasswordInput {
  currentPassword: string;
  newPassword: string;
}

/** 204 (other sessions are signed out); 400 `invalid_current_password` or `weak_password` with reasons. */
export async function changePassword(input: ChangePasswordInput): Promise<void> {
  await api.post<void>('/api/auth/change-password', input);
}
