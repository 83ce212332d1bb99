/** The shapes the server sends (DESIGN §2), shared by every feature. */

export type Role = 'system-admin' | 'user';

export interface User {
  id: string;
  email: string | null;
  username: string | null;
  name: string;
  role: Role;
  disabled: boolean;
  mustChangePassword: boolean;
  /** too many failed sign-ins from untrusted browsers: only a trusted browser, a reset or an admin's unlock lets them in */
  locked: boolean;
  hasPassword?: boolean;
  createdAt?: string;
  passwordChangedAt?: string;
}

/** One reason a password was refused (`weak_password`). */
export interface PasswordReason {
  code: string;
  message: string;
}

export const ROLE_LABELS: Record<Role, string> = {
  'system-admin': 'System admin',
  user: 'User',
};

/** What a person types to sign in: the username when there is one, else the email. */
export function signInNameOf(user: Pick<User, 'username' | 'email'>): string {
  return user.username ?? user.email ?? '';
}
