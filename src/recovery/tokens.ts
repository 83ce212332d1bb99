import { createHash } from 'node:crypto';
import type { Db } from '../db/index.js';
import type { Random } from '../random.js';
import { findUserById, lockUserForWrite, type UserRow } from '../accounts/users-repo.js';

// Only this file touches the reset_tokens table: one row per account at most (unique user_id).

const TOKEN_BYTES = 32;
/** 32 bytes in base64url, no padding */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{43}$/;

export type TokenPurpose = 'reset' | 'set_password';

/** Only this hash is stored: a copy of the database lets no one reset a password. */
export function hashResetToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export interface MintInput {
  user: UserRow;
  deliveryId: string;
  purpose: TokenPurpose;
  nowMs: number;
  expiresAtMs: number;
}

/**
 * Mints a token for each input, in one upsert on the unique reset_tokens(user_id): the row is
 * replaced, not added beside, so a new request (or a retry of the same delivery) voids the last
 * link on every database, also when mints of one account run at once on several workers or
 * instances — the last mint wins and every earlier link is dead. Within one call the mints
 * count as made in the inputs' order: an account's last input holds its live token, and the
 * others' links are dead from the start.
 */
export async function mintResetTokens(db: Db, random: Random, inputs: readonly MintInput[]): Promise<string[]> {
  const tokens = inputs.map(() => random.bytes(TOKEN_BYTES).toString('base64url'));
  const lastOfUser = new Map(inputs.map((input, i) => [input.user.id, i]));
  // PostgreSQL refuses one upsert that touches a row twice; the rows go in account order, so two
  // instances minting for the same accounts lock them in the same order and never deadlock.
  const rows = [...lastOfUser]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, i]) => {
      const input = inputs[i]!;
      return {
        token_hash: hashResetToken(tokens[i]!),
        user_id: input.user.id,
        delivery_id: input.deliveryId,
        purpose: input.purpose,
        created_at: input.nowMs,
        expires_at: input.expiresAtMs,
        bound_password_changed_at: input.user.password_changed_at,
        bound_email: input.user.email_normalized,
      };
    });
  if (rows.length === 0) return tokens;
  await db
    .insertInto('reset_tokens')
    .values(rows)
    .onConflict((oc) =>
      oc.column('user_id').doUpdateSet((eb) => ({
        token_hash: eb.ref('excluded.token_hash'),
        // The row now belongs to this delivery: an older delivery's failed send no longer deletes it.
        delivery_id: eb.ref('excluded.delivery_id'),
        purpose: eb.ref('excluded.purpose'),
        created_at: eb.ref('excluded.created_at'),
        expires_at: eb.ref('excluded.expires_at'),
        bound_password_changed_at: eb.ref('excluded.bound_password_changed_at'),
        bound_email: eb.ref('excluded.bound_email'),
      })),
    )
    .execute();
  return tokens;
}

/**
 * Failed sends void the links they carried, and only those, in one statement: by then a newer
 * request, or a newer attempt of the same delivery on another worker, may have minted the
 * account's live token.
 */
export async function deleteResetTokens(db: Db, tokens: readonly string[]): Promise<void> {
  if (tokens.length === 0) return;
  await db.deleteFrom('reset_tokens').where('token_hash', 'in', tokens.map(hashResetToken)).execute();
}

export interface LiveToken {
  tokenHash: string;
  user: UserRow;
  purpose: TokenPurpose;
  expiresAtMs: number;
}

/**
 * The token's user when the token is live: known, not expired (valid up to and including its
 * expiry instant), and still bound to the account's current password and email on an enabled
 * account. Anything else is null, one answer for every reason.
 */
export async function findLiveToken(db: Db, token: string, nowMs: number): Promise<LiveToken | null> {
  if (!TOKEN_SHAPE.test(token)) return null;
  const tokenHash = hashResetToken(token);
  const row = await db
    .selectFrom('reset_tokens')
    .innerJoin('users', 'users.id', 'reset_tokens.user_id')
    .selectAll('users')
    .select([
      'reset_tokens.purpose as t_purpose',
      'reset_tokens.expires_at as t_expires_at',
      'reset_tokens.bound_password_changed_at as t_bound_pw',
      'reset_tokens.bound_email as t_bound_email',
    ])
    .where('reset_tokens.token_hash', '=', tokenHash)
    .executeTakeFirst();
  if (row === undefined) return null;
  const { t_purpose, t_expires_at, t_bound_pw, t_bound_email, ...user } = row;
  if (!isBound(user, { expiresAtMs: t_expires_at, boundPw: t_bound_pw, boundEmail: t_bound_email }, nowMs)) return null;
  return { tokenHash, user, purpose: t_purpose, expiresAtMs: t_expires_at };
}

function isBound(user: UserRow, t: { expiresAtMs: number; boundPw: number; boundEmail: string | null }, nowMs: number): boolean {
  return nowMs <= t.expiresAtMs && user.disabled === 0 && user.password_changed_at === t.boundPw && user.email_normalized === t.boundEmail;
}

/**
 * Consumes the token atomically: a conditional delete with RETURNING, so of two racing
 * requests exactly one gets the row. Call inside the transaction that sets the password; the
 * account is read again there so a change that raced in after verification still voids it.
 */
export async function consumeResetToken(trx: Db, tokenHash: string, nowMs: number): Promise<UserRow | null> {
  // READ COMMITTED (PostgreSQL): without this lock an email or password change could commit
  // between the read below and the caller's password write, and the reset would succeed with a
  // link bound to an email the account no longer had. The account row is locked before the
  // token row, as deleting a user does.
  const owner = await trx.selectFrom('reset_tokens').select('user_id').where('token_hash', '=', tokenHash).executeTakeFirst();
  if (owner !== undefined) await lockUserForWrite(trx, owner.user_id);
  const row = await trx
    .deleteFrom('reset_tokens')
    .where('token_hash', '=', tokenHash)
    .where('expires_at', '>=', nowMs)
    .returning(['expires_at', 'bound_password_changed_at', 'bound_email', 'user_id'])
    .executeTakeFirst();
  if (row === undefined) return null;
  const user = await findUserById(trx, row.user_id);
  if (user === undefined) return null;
  return isBound(user, { expiresAtMs: row.expires_at, boundPw: row.bound_password_changed_at, boundEmail: row.bound_email }, nowMs) ? user : null;
}


export async function deleteExpiredResetTokens(db: Db, nowMs: number): Promise<void> {
  await db.deleteFrom('reset_tokens').where('expires_at', '<', nowMs).execute();
}
