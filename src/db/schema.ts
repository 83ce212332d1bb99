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
  /** consecutive failed sign-ins from clients that are not a trusted device of this account */
  failed_login_count: number;
  /** set when failed_login_count reached the threshold: untrusted clients cannot sign in until a reset or an unlock */
  locked_at: number | null;
  created_at: number;
  updated_at: number;
}

/**
 * A browser that signed in to an account before (OWASP device cookies): failures from elsewhere
 * never lock it out. One row per browser and account.
 */
export interface TrustedDevicesTable {
  /** SHA-256 of the device cookie, hex */
  token_hash: string;
  user_id: string;
  created_at: number;
  last_used_at: number;
  expires_at: number;
  /** consecutive failed sign-ins from this browser; at the limit it is no longer trusted */
  failed_count: number;
}

export interface SessionsTable {
  /** SHA-256 of the cookie token, hex: a database copy holds no usable session */
  token_hash: string;
  user_id: string;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  idle_expires_at: number;
  /** the client's address when signed in, then when last seen (as TRUST_PROXY reads it) */
  ip: string | null;
  /** the User-Agent header, at most 256 characters */
  user_agent: string | null;
  /** an opaque random id the account page shows and signs out by — never the token or its hash (0007; null only before it ran) */
  public_id: string | null;
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

export type DeliveryKind = 'reset' | 'set_password' | 'password_changed';
export type DeliveryStatus = 'queued' | 'sending' | 'sent' | 'retrying' | 'failed' | 'expired';

/**
 * Every email is a row first. No row ever holds a body or a usable token: the message is
 * rendered, and a reset token minted, only when the worker sends it.
 */
export interface MailOutboxTable {
  id: string;
  kind: DeliveryKind;
  /** null until the worker has looked the typed address up (forgot-password) */
  user_id: string | null;
  /** normalizeEmail(typed address) of a forgot-password request; cleared once looked up */
  lookup_email: string | null;
  /** the address stored on the account, byte for byte */
  to_address: string | null;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: number;
  /** a worker's lease on a row being sent; a row whose lease ran out is taken again */
  locked_until: number | null;
  last_error: string | null;
  requested_at: number;
  /** a link sent after this would already have expired: the delivery expires instead */
  not_after: number | null;
  give_up_at: number;
  sent_at: number | null;
  ip: string | null;
  actor_id: string | null;
  updated_at: number;
  /** where it went (or was last tried): 'dev-mailbox', 'smtp', 'smtp-oauth2', 'graph'; null before the first try (and for rows older than migration 0006) */
  delivered_via: DeliveredVia | null;
}

/** Where a delivery went: the dev mailbox, or the mail server by the saved settings' transport. */
export type DeliveredVia = 'dev-mailbox' | 'smtp' | 'smtp-oauth2' | 'graph';

export interface ResetTokensTable {
  /** SHA-256 of the token, hex: a database copy holds no usable link */
  token_hash: string;
  user_id: string;
  delivery_id: string | null;
  purpose: 'reset' | 'set_password';
  created_at: number;
  expires_at: number;
  /** the account's password_changed_at when minted: a later change voids the token */
  bound_password_changed_at: number;
  /** the account's email_normalized when minted: changing the email voids the token */
  bound_email: string | null;
}

/**
 * Logins (as typed, normalised) that untrusted clients failed 100 times in a row: known or not,
 * every one answers the same "locked" until a reset or an admin's unlock.
 */
export interface SignInLocksTable {
  login_key: string;
  locked_at: number;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  audit_events: AuditEventsTable;
  settings: SettingsTable;
  mail_outbox: MailOutboxTable;
  reset_tokens: ResetTokensTable;
  trusted_devices: TrustedDevicesTable;
  sign_in_locks: SignInLocksTable;
}
