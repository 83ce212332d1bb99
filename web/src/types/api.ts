/**
 * The shapes the server sends and takes (DESIGN §2), shared by every feature. Each is derived from
 * its route's JSON schema (src/<feature>/api-schemas.ts), so the server and the web app cannot
 * drift. Types only (`import type` / `export type`): no server code reaches the bundle.
 */
import type { Role, User } from '../../../src/accounts/api-schemas';

export type { ErrorBody } from '../../../src/http/schemas';
export type {
  ChangePasswordBody,
  CreateUserBody,
  LoginBody,
  PasswordPolicy,
  PatchUserBody,
  Role,
  User,
} from '../../../src/accounts/api-schemas';
export type { ResetPasswordBody, ResetTokenStatus } from '../../../src/recovery/api-schemas';
export type { AccountSession, AccountSessionList, PatchAccountBody } from '../../../src/accounts/account-schemas';
export type {
  Delivery,
  DeliveryTargetState,
  DevMessage,
  DevMessageSummary,
  EmailSettings,
  EmailSettingsState,
  TestEmailResult,
  TestStage,
  TestStageOutcome,
} from '../../../src/mail/api-schemas';
export type { AuditEvent, AuditOutcome, AuditParty, AuditType } from '../../../src/audit/api-schemas';

/** One reason a password was refused (`weak_password`), as the client reads it from the error body. */
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
