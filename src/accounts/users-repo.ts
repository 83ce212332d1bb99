import { sql, type ExpressionBuilder, type Selectable, type Updateable } from 'kysely';
import { dialectOf, type Db } from '../db/index.js';
import type { Database, UsersTable } from '../db/schema.js';
import { normalizeEmail, normalizeUsername } from './identifiers.js';
import type { User, UserStatusFilter } from './api-schemas.js';

// Only this file writes or locks the users table. Three look-ups join it, for one round trip
// where it matters — a session's, a reset token's and a trusted device's user (sessions.ts,
// recovery/tokens.ts, devices.ts) — and take the row whole, so UserRow stays the one shape.

export type UserRow = Selectable<UsersTable>;
export type Role = UsersTable['role'];

/** An account as the API shows it: its type comes from the API's schema, so toUser cannot drift from it. */
export type { User };

export function toUser(row: UserRow): User {
  return {
    id: row.id,
    email: row.email,
    username: row.username,
    name: row.name,
    role: row.role,
    disabled: row.disabled === 1,
    mustChangePassword: row.must_change_password === 1,
    hasPassword: row.password_hash !== null,
    locked: row.locked_at !== null,
    createdAt: new Date(row.created_at).toISOString(),
    passwordChangedAt: new Date(row.password_changed_at).toISOString(),
  };
}

export async function findUserById(db: Db, id: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('id', '=', id).executeTakeFirst();
}

export async function findUserByEmail(db: Db, email: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('email_normalized', '=', normalizeEmail(email)).executeTakeFirst();
}

export async function findUserByUsername(db: Db, username: string): Promise<UserRow | undefined> {
  return db.selectFrom('users').selectAll().where('username_normalized', '=', normalizeUsername(username)).executeTakeFirst();
}

/** A login names an email when it holds "@", else a username. */
export async function findUserByLogin(db: Db, login: string): Promise<UserRow | undefined> {
  return login.includes('@') ? findUserByEmail(db, login) : findUserByUsername(db, login);
}

export async function listUsers(db: Db): Promise<UserRow[]> {
  return db.selectFrom('users').selectAll().orderBy('created_at').orderBy('id').execute();
}

/** What GET /api/users may narrow the list to, besides a search (its schema lists them). */
export type UserStatus = UserStatusFilter;

export interface UserQuery {
  /** a piece of the name, email or username, any case */
  q?: string;
  role?: Role;
  status?: UserStatus;
  /** rows to return, at most */
  limit: number;
  /** the last row of the previous page: the list goes on after it */
  after?: { name: string; id: string };
}

/** `%`, `_` and `!` are literal in a search: the LIKE pattern escapes them with `!` (the same in either dialect). */
export function likePattern(text: string): string {
  return `%${text.toLowerCase().replace(/[!%_]/g, (c) => `!${c}`)}%`;
}

function filtersOf(query: Omit<UserQuery, 'limit' | 'after'>) {
  return (eb: ExpressionBuilder<Database, 'users'>) => {
    const all = [];
    const q = query.q?.trim();
    if (q !== undefined && q !== '') {
      // lower() on both sides: PostgreSQL's LIKE is case-sensitive, SQLite's only for ASCII.
      const pattern = likePattern(q);
      const like = (column: 'name' | 'email' | 'username') => sql<boolean>`lower(coalesce(${sql.ref(column)}, '')) like ${pattern} escape '!'`;
      all.push(eb.or([like('name'), like('email'), like('username')]));
    }
    if (query.role !== undefined) all.push(eb('role', '=', query.role));
    switch (query.status) {
      case 'active':
        all.push(eb.and([eb('disabled', '=', 0), eb('locked_at', 'is', null)]));
        break;
      case 'disabled':
        all.push(eb('disabled', '=', 1));
        break;
      case 'locked':
        all.push(eb('locked_at', 'is not', null));
        break;
      case 'must_change_password':
        all.push(eb('must_change_password', '=', 1));
        break;
      case 'no_password':
        all.push(eb('password_hash', 'is', null));
        break;
      case undefined:
        break;
    }
    return eb.and(all);
  };
}

/**
 * One page of users matching the query, ordered by name (any case), then name, then id — a
 * stable order: a page goes on after the previous page's last row (keyset), so users added or
 * removed meanwhile neither repeat nor skip a row. `total` counts every match.
 */
export async function queryUsers(db: Db, query: UserQuery): Promise<{ rows: UserRow[]; total: number; more: boolean }> {
  const where = filtersOf(query);
  let q = db.selectFrom('users').selectAll().where(where);
  if (query.after !== undefined) {
    const { name, id } = query.after;
    q = q.where(
      (eb) =>
        sql<boolean>`(lower(${eb.ref('name')}), ${eb.ref('name')}, ${eb.ref('id')}) > (lower(cast(${name} as text)), cast(${name} as text), cast(${id} as text))`,
    );
  }
  const rows = await q
    .orderBy(sql`lower(name)`)
    .orderBy('name')
    .orderBy('id')
    .limit(query.limit + 1)
    .execute();
  const counted = await db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where(where)
    .executeTakeFirstOrThrow();
  return { rows: rows.slice(0, query.limit), total: Number(counted.n), more: rows.length > query.limit };
}

export async function countUsers(db: Db): Promise<number> {
  const row = await db.selectFrom('users').select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function countEnabledAdmins(db: Db, options: { excludingId?: string } = {}): Promise<number> {
  let q = db
    .selectFrom('users')
    .select((eb) => eb.fn.countAll<number | string>().as('n'))
    .where('role', '=', 'system-admin')
    .where('disabled', '=', 0);
  if (options.excludingId !== undefined) q = q.where('id', '!=', options.excludingId);
  const row = await q.executeTakeFirstOrThrow();
  return Number(row.n);
}

export interface NewUserRow {
  id: string;
  email: string | null;
  username: string | null;
  name: string;
  role: Role;
  passwordHash: string | null;
  mustChangePassword: boolean;
  nowMs: number;
}

export async function insertUser(db: Db, u: NewUserRow): Promise<UserRow> {
  const row: UserRow = {
    id: u.id,
    email: u.email,
    email_normalized: u.email === null ? null : normalizeEmail(u.email),
    username: u.username,
    username_normalized: u.username === null ? null : normalizeUsername(u.username),
    name: u.name,
    role: u.role,
    disabled: 0,
    must_change_password: u.mustChangePassword ? 1 : 0,
    password_hash: u.passwordHash,
    password_changed_at: u.nowMs,
    failed_login_count: 0,
    locked_at: null,
    created_at: u.nowMs,
    updated_at: u.nowMs,
  };
  await db.insertInto('users').values(row).execute();
  return row;
}

export interface UserChanges {
  name?: string;
  email?: string | null;
  role?: Role;
  disabled?: boolean;
}

export async function updateUser(db: Db, id: string, changes: UserChanges, nowMs: number): Promise<UserRow | undefined> {
  const set: Updateable<UsersTable> = { updated_at: nowMs };
  if (changes.name !== undefined) set.name = changes.name;
  if (changes.email !== undefined) {
    set.email = changes.email;
    set.email_normalized = changes.email === null ? null : normalizeEmail(changes.email);
  }
  if (changes.role !== undefined) set.role = changes.role;
  if (changes.disabled !== undefined) set.disabled = changes.disabled ? 1 : 0;
  await db.updateTable('users').set(set).where('id', '=', id).execute();
  return findUserById(db, id);
}

/**
 * Sets the password, clears the failure count and any lock. With expectedChangedAt the write
 * happens only if the password is still that version (false otherwise): of a reset and a change
 * racing, the second to write finds the version moved and writes nothing. The new version is
 * always later than the old, even within one millisecond.
 */
export async function setPasswordHash(
  db: Db,
  id: string,
  passwordHash: string,
  nowMs: number,
  options: { mustChange: boolean; expectedChangedAt?: number },
): Promise<boolean> {
  const expected = options.expectedChangedAt;
  let q = db
    .updateTable('users')
    .set({
      password_hash: passwordHash,
      password_changed_at: expected === undefined ? nowMs : Math.max(nowMs, expected + 1),
      must_change_password: options.mustChange ? 1 : 0,
      failed_login_count: 0,
      locked_at: null,
      updated_at: nowMs,
    })
    .where('id', '=', id);
  if (expected !== undefined) q = q.where('password_changed_at', '=', expected);
  const result = await q.executeTakeFirst();
  return Number(result.numUpdatedRows) > 0;
}

/**
 * Counts a failed sign-in from an untrusted client; the failure that reaches `lockAfter` locks
 * the account. true when this failure locked it.
 */
export async function recordLoginFailure(db: Db, id: string, options: { lockAfter: number; nowMs: number }): Promise<boolean> {
  await db
    .updateTable('users')
    .set((eb) => ({ failed_login_count: eb('failed_login_count', '+', 1) }))
    .where('id', '=', id)
    .execute();
  const locked = await db
    .updateTable('users')
    .set({ locked_at: options.nowMs })
    .where('id', '=', id)
    .where('locked_at', 'is', null)
    .where('failed_login_count', '>=', options.lockAfter)
    .executeTakeFirst();
  return Number(locked.numUpdatedRows) > 0;
}

export async function clearLoginFailures(db: Db, id: string): Promise<void> {
  await db.updateTable('users').set({ failed_login_count: 0 }).where('id', '=', id).where('failed_login_count', '!=', 0).execute();
}

/** An admin's unlock: the failure count and the lock are gone. */
export async function unlockUserRow(db: Db, id: string, nowMs: number): Promise<UserRow | undefined> {
  await db.updateTable('users').set({ failed_login_count: 0, locked_at: null, updated_at: nowMs }).where('id', '=', id).execute();
  return findUserById(db, id);
}

export async function deleteUser(db: Db, id: string): Promise<boolean> {
  const result = await db.deleteFrom('users').where('id', '=', id).executeTakeFirst();
  return Number(result.numDeletedRows) > 0;
}

/** Unique-index violations, in either dialect, told apart by the column they hit. */
export function uniqueViolation(err: unknown): 'email' | 'username' | undefined {
  const e = err as { code?: string; message?: string; constraint?: string; detail?: string };
  const text = `${e.message ?? ''} ${e.constraint ?? ''} ${e.detail ?? ''}`;
  const isUnique = e.code === '23505' || e.code === 'SQLITE_CONSTRAINT_UNIQUE';
  if (!isUnique) return undefined;
  if (text.includes('email_normalized')) return 'email';
  if (text.includes('username_normalized')) return 'username';
  return undefined;
}

/**
 * Inside a transaction: true when the account still has this password version and is enabled,
 * and (PostgreSQL) holds a share lock on its row until the transaction ends, so a reset or a
 * change that writes the password waits for it.
 */
export async function lockCurrentPassword(trx: Db, user: Pick<UserRow, 'id' | 'password_changed_at'>): Promise<boolean> {
  let q = trx.selectFrom('users').select('id').where('id', '=', user.id).where('password_changed_at', '=', user.password_changed_at).where('disabled', '=', 0);
  if (dialectOf(trx) === 'postgres') q = q.forShare();
  return (await q.executeTakeFirst()) !== undefined;
}

/**
 * Inside a transaction (PostgreSQL): the account row locked as an UPDATE would lock it (NO KEY:
 * rows that reference the user may still be inserted). SQLite needs none: a write takes the
 * database's one write lock.
 */
export async function lockUserForWrite(trx: Db, id: string): Promise<void> {
  if (dialectOf(trx) !== 'postgres') return;
  await trx.selectFrom('users').select('id').where('id', '=', id).forNoKeyUpdate().execute();
}

/** Inside a transaction (PostgreSQL): every admin row locked, so two admins demoting each other cannot both succeed. */
export async function lockAdmins(trx: Db): Promise<void> {
  if (dialectOf(trx) !== 'postgres') return;
  await trx.selectFrom('users').select('id').where('role', '=', 'system-admin').forUpdate().execute();
}
