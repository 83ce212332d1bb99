import { createHash } from 'node:crypto';
import type { Db } from '../db/index.js';
import type { Random } from '../random.js';
import { normalizeEmail, normalizeUsername } from './identifiers.js';

// Only this file touches the trusted_devices table.

/**
 * OWASP "Slow down online guessing attacks with device cookies": a browser that signed in to an
 * account before carries a random device cookie, and failures that came from elsewhere (the
 * growing wait, the lock) never stop it. Only the cookie's hash is stored.
 */
export const DEVICE_TRUST_DAYS = 180;
/** Wrong passwords in a row from one trusted browser, after which it is treated like any other. */
export const MAX_DEVICE_FAILURES = 10;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export interface TrustedDevice {
  tokenHash: string;
  userId: string;
}

function hashDeviceToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * The trusted device behind this cookie for the account the login names, or undefined. The
 * login is matched on the device's own account, so the answer tells nothing about other logins.
 */
export async function findTrustedDevice(db: Db, token: string, login: string, nowMs: number): Promise<TrustedDevice | undefined> {
  if (!TOKEN_SHAPE.test(token)) return undefined;
  const tokenHash = hashDeviceToken(token);
  const byEmail = login.includes('@');
  const row = await db
    .selectFrom('trusted_devices')
    .innerJoin('users', 'users.id', 'trusted_devices.user_id')
    .select('trusted_devices.user_id')
    .where('trusted_devices.token_hash', '=', tokenHash)
    .where(byEmail ? 'users.email_normalized' : 'users.username_normalized', '=', byEmail ? normalizeEmail(login) : normalizeUsername(login))
    .where('trusted_devices.expires_at', '>', nowMs)
    .where('trusted_devices.failed_count', '<', MAX_DEVICE_FAILURES)
    .executeTakeFirst();
  return row === undefined ? undefined : { tokenHash, userId: row.user_id };
}

/** Trusts this browser for the account after a successful sign-in: the cookie it already has, else a new one. */
export async function trustDevice(
  db: Db,
  random: Random,
  input: { token: string | undefined; userId: string; nowMs: number },
): Promise<{ token: string; expiresAt: Date }> {
  const token = input.token !== undefined && TOKEN_SHAPE.test(input.token) ? input.token : random.bytes(32).toString('base64url');
  const expiresAtMs = input.nowMs + DEVICE_TRUST_DAYS * 86_400_000;
  await db
    .insertInto('trusted_devices')
    .values({ token_hash: hashDeviceToken(token), user_id: input.userId, created_at: input.nowMs, last_used_at: input.nowMs, expires_at: expiresAtMs, failed_count: 0 })
    .onConflict((oc) => oc.columns(['token_hash', 'user_id']).doUpdateSet({ last_used_at: input.nowMs, expires_at: expiresAtMs, failed_count: 0 }))
    .execute();
  return { token, expiresAt: new Date(expiresAtMs) };
}

/** A wrong password from a trusted browser counts against that browser only. */
export async function recordDeviceFailure(db: Db, device: TrustedDevice): Promise<void> {
  await db
    .updateTable('trusted_devices')
    .set((eb) => ({ failed_count: eb('failed_count', '+', 1) }))
    .where('token_hash', '=', device.tokenHash)
    .where('user_id', '=', device.userId)
    .execute();
}

export async function deleteExpiredDevices(db: Db, nowMs: number): Promise<void> {
  await db.deleteFrom('trusted_devices').where('expires_at', '<=', nowMs).execute();
}
