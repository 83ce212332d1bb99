import { api } from '../../../lib/api';
import type { Role, User } from '../../../types/api';

export interface CreateUserInput {
  email: string | null;
  username: string | null;
  name: string;
  role: Role;
  /** null: the user gets an email to set a password */
  password: string | null;
}

/** 201 `{user}`; 400 with `fields` or `weak_password`; 409 `email_taken` / `username_taken`. */
export async function createUser(input: CreateUserInput): Promise<User> {
  const { user } = await api.post<{ user: User }>('/api/users', input);
  return user;
}
