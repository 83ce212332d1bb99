import type { Generated } from 'kysely';

/**
 * Row types. Timestamps are integer milliseconds since the epoch (UTC) in both dialects,
 * booleans are 0/1 integers: one representation keeps the repositories dialect-free.
 */
export interface UsersTable {
  id: string;
  email: string | null;
  /** normalizeEmail(email): the lookup key and the unique index */
  email_normalized: string | null;
  username: string | null;
  username_normalized: string | null;
  name: string;
  role: 'system-admin' | 'user';
  disabled: number;
  must_change_password: number;
  /** null until the user sets a first password (created without one) */
  password_hash: string | null;
  password_changed_at: number;
  failed_login_count: number;
  created_at: number;
  updated_at: number;
}

export interface SessionsTable {
  /** SHA-256 of the cookie token, hex: a database copy holds no usable session */
  token_hash: string;
  user_id: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  idle_expires_at: number;
  ip: string | null;
  user_agent: string | null;
}

export interface AuditEventsTable {
  id: Generated<number>;
  at: number;
  type: string;
  actor_id: string | null;
  actor_label: string | null;
  target_id: string | null;
  target_label: string | null;
  ip: string | null;
  outcome: 'success' | 'failure';
  /** JSON object; never a secret, token or password */
  detail: string | null;
}

export interface SettingsTable {
  key: string;
  /** JSON */
  value: string;
  updated_at: number;
  updated_by: string | null;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  audit_events: AuditEventsTable;
  settings: SettingsTable;
}
