import { api } from '../../../lib/api';
import type { CreateUserBody, User } from '../../../types/api';

/** A null or blank password: the user gets an email to set one. */
export type CreateUserInput = CreateUserBody;

/** 201 `{user}`; 400 with `fields` or `weak_password`; 409 `email_taken` / `username_taken`. */
export async function createUser(input: CreateUserInput): Promise<User> {
  const { user } = await api.post<{ user: User }>('/api/users', input);
  return user;
}
