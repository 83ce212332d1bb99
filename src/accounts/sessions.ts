import { createHash } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Db } from '../db/index.js';
import type { Random } from '../random.js';
import type { UserRow } from './users-repo.js';

/**
 * Cookie names. Over https they carry the __Host- prefix: the browser then accepts them only
 * Secure, for the whole site and from this host, so a sibling subdomain cannot plant or shadow one.
 */
export function cookieNames(publicUrl: URL): { session: string; device: string } {
  const prefix = publicUrl.protocol === 'https:' ? '__Host-' : '';
  return { session: `${prefix}gatehouse_session`, device: `${prefix}gatehouse_device` };
}
const TOKEN_BYTES = 32;
/** What is kept of a User-Agent header: enough to tell the browser and system apart. */
export const MAX_USER_AGENT_LENGTH = 256;
// Refreshing the idle expiry on every request would be a write per request; once a minute is plenty.
// The same write records where the session was last seen from (its IP and User-Agent).
const TOUCH_INTERVAL_MS = 60_000;

export interface SessionPolicy {
  idleMinutes: number;
  maxHours: number;
}

export interface SessionMeta {
  ip: string | null;
  userAgent: string | null;
}

export interface ValidSession {
  tokenHash: string;
  user: UserRow;
  expiresAt: Date;
}

/** Only this hash is stored: a copy of the database holds no usable session. */
export function hashSessionToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export async function createSession(
  deps: { db: Db; clock: Clock; random: Random },
  userId: string,
  policy: SessionPolicy,
  meta: SessionMeta,
): Promise<{ token: string; expiresAt: Date }> {
  const token = deps.random.bytes(TOKEN_BYTES).toString('base64url');
  const nowMs = deps.clock.now().getTime();
  const expiresAtMs = nowMs + policy.maxHours * 3_600_000;
  await deps.db
    .insertInto('sessions')
    .values({
      token_hash: hashSessionToken(token),
      user_id: userId,
      created_at: nowMs,
      last_seen_at: nowMs,
      expires_at: expiresAtMs,
      idle_expires_at: Math.min(expiresAtMs, nowMs + policy.idleMinutes * 60_000),
      ip: meta.ip,
      user_agent: clipUserAgent(meta.userAgent),
      // A name for the session on the My account page: random, but not a secret (it grants nothing).
      public_id: deps.random.uuid(),
    })
    .execute();
  return { token, expiresAt: new Date(expiresAtMs) };
}

/** The session and its user, or null when the token is unknown, expired (idle or absolute) or the user is disabled. */
export async function validateSession(
  deps: { db: Db; clock: Clock },
  token: string,
  policy: SessionPolicy,
  meta?: SessionMeta,
): Promise<ValidSession | null> {
  if (token.length === 0 || token.length > 100) return null;
  const tokenHash = hashSessionToken(token);
  const row = await deps.db
    .selectFrom('sessions')
    .innerJoin('users', 'users.id', 'sessions.user_id')
    .selectAll('users')
    .select(['sessions.expires_at as s_expires_at', 'sessions.idle_expires_at as s_idle_expires_at', 'sessions.last_seen_at as s_last_seen_at'])
    .where('sessions.token_hash', '=', tokenHash)
    .executeTakeFirst();
  if (row === undefined) return null;
  const nowMs = deps.clock.now().getTime();
  if (nowMs >= row.s_expires_at || nowMs >= row.s_idle_expires_at || row.disabled === 1) {
    await deps.db.deleteFrom('sessions').where('token_hash', '=', tokenHash).execute();
    return null;
  }
  if (nowMs - row.s_last_seen_at >= TOUCH_INTERVAL_MS) {
    await deps.db
      .updateTable('sessions')
      .set({
        last_seen_at: nowMs,
        idle_expires_at: Math.min(row.s_expires_at, nowMs + policy.idleMinutes * 60_000),
        ...(meta === undefined ? {} : { ip: meta.ip, user_agent: clipUserAgent(meta.userAgent) }),
      })
      .where('token_hash', '=', tokenHash)
      .execute();
  }
  const { s_expires_at, s_idle_expires_at: _idle, s_last_seen_at: _seen, ...user } = row;
  return { tokenHash, user, expiresAt: new Date(s_expires_at) };
}

function clipUserAgent(userAgent: string | null | undefined): string | null {
  return userAgent ? userAgent.slice(0, MAX_USER_AGENT_LENGTH) : null;
}

/** A session as its owner sees it on the account page: never its token or the token's hash. */
export interface SessionSummary {
  publicId: string;
  /** the session that asked */
  current: boolean;
  ip: string | null;
  userAgent: string | null;
  createdAt: Date;
  lastSeenAt: Date;
}

/** The user's live sessions, the most recently seen first. */
export async function listUserSessions(deps: { db: Db; clock: Clock }, userId: string, currentTokenHash: string): Promise<SessionSummary[]> {
  const nowMs = deps.clock.now().getTime();
  const rows = await deps.db
    .selectFrom('sessions')
    .select(['token_hash', 'public_id', 'ip', 'user_agent', 'created_at', 'last_seen_at'])
    .where('user_id', '=', userId)
    .where('expires_at', '>', nowMs)
    .where('idle_expires_at', '>', nowMs)
    .where('public_id', 'is not', null)
    .orderBy('last_seen_at', 'desc')
    .orderBy('created_at', 'desc')
    .execute();
  return rows.map((r) => ({
    publicId: r.public_id!,
    current: r.token_hash === currentTokenHash,
    ip: r.ip,
    userAgent: r.user_agent,
    createdAt: new Date(Number(r.created_at)),
    lastSeenAt: new Date(Number(r.last_seen_at)),
  }));
}

/** Signs out the user's session with this public id: what it was, or null when they have none by that id (another user's included). */
export async function revokeUserSessionByPublicId(
  db: Db,
  userId: string,
  publicId: string,
): Promise<{ tokenHash: string; userAgent: string | null } | null> {
  const row = await db
    .deleteFrom('sessions')
    .where('public_id', '=', publicId)
    .where('user_id', '=', userId)
    .returning(['token_hash', 'user_agent'])
    .executeTakeFirst();
  return row === undefined ? null : { tokenHash: row.token_hash, userAgent: row.user_agent };
}

export async function revokeSession(db: Db, token: string): Promise<void> {
  await revokeSessionByHash(db, hashSessionToken(token));
}

/** true when the session still existed: inside a transaction, proof that nothing revoked it meanwhile. */
export async function revokeSessionByHash(db: Db, tokenHash: string): Promise<boolean> {
  const result = await db.deleteFrom('sessions').where('token_hash', '=', tokenHash).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Every session of the user, except the one whose hash is given (the one that changed the password). */
export async function revokeUserSessions(db: Db, userId: string, options: { exceptTokenHash?: string } = {}): Promise<number> {
  let q = db.deleteFrom('sessions').where('user_id', '=', userId);
  if (options.exceptTokenHash !== undefined) q = q.where('token_hash', '!=', options.exceptTokenHash);
  const result = await q.executeTakeFirst();
  return Number(result.numDeletedRows);
}

export async function deleteExpiredSessions(db: Db, nowMs: number): Promise<void> {
  await db.deleteFrom('sessions').where((eb) => eb.or([eb('expires_at', '<=', nowMs), eb('idle_expires_at', '<=', nowMs)])).execute();
}
