import { sql, type ExpressionBuilder, type Expression, type Insertable, type SqlBool } from 'kysely';
import type { Clock } from '../clock.js';
import { dialectOf, type Database, type Db } from '../db/index.js';
import type { AuditEventsTable } from '../db/schema.js';
import { invalidInput } from '../errors.js';
import { AUDIT_TYPES, type AuditEvent, type AuditOutcome, type AuditType } from './api-schemas.js';

export type { AuditType } from './api-schemas.js';

export interface AuditActor {
  id: string | null;
  label: string | null;
}

/** How an account appears in the audit log: its username, else its email. */
export function auditLabel(user: { id: string; username: string | null; email: string | null }): AuditActor {
  return { id: user.id, label: user.username ?? user.email };
}

export interface AuditInput {
  type: AuditType;
  actor?: AuditActor | undefined;
  target?: AuditActor | undefined;
  ip?: string | null | undefined;
  outcome: AuditOutcome;
  /** never a secret, token, password or full unverified address */
  detail?: Record<string, unknown> | undefined;
}

/** An event as admins see it: its type comes from the API's schema, so listAudit cannot drift from it. */
export type { AuditEvent };

export async function recordAudit(db: Db, clock: Clock, input: AuditInput): Promise<void> {
  await db.insertInto('audit_events').values(auditRow(clock, input)).execute();
}

/** An event's row, for callers that write it together with others (groupCommit). */
export function auditRow(clock: Clock, input: AuditInput): Insertable<AuditEventsTable> {
  return {
    at: clock.now().getTime(),
    type: input.type,
    actor_id: input.actor?.id ?? null,
    actor_label: input.actor?.label ?? null,
    target_id: input.target?.id ?? null,
    target_label: input.target?.label ?? null,
    ip: input.ip ?? null,
    outcome: input.outcome,
    detail: input.detail === undefined ? null : JSON.stringify(input.detail),
  };
}

/** What the audit list and its export are narrowed to; every part is optional and they combine with AND. */
export interface AuditFilter {
  types?: readonly AuditType[] | undefined;
  outcome?: AuditOutcome | undefined;
  /**
   * Who took part: an actor or target whose id is exactly this, or whose recorded label (username
   * or email at the time) contains it, or who is now a user whose name, email or username
   * contains it; or a failed sign-in whose typed login contains it. Case-insensitive (ASCII
   * letters only on SQLite).
   */
  user?: string | undefined;
  /** epoch ms, inclusive */
  fromMs?: number | undefined;
  /** epoch ms, inclusive */
  toMs?: number | undefined;
}

/** The filters as the query string gives them, before they are checked. */
export interface AuditFilterQuery {
  type?: string | string[] | undefined;
  outcome?: AuditOutcome | undefined;
  user?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
}

const KNOWN_TYPES: ReadonlySet<string> = new Set(AUDIT_TYPES);
const BAD_TIME = 'Use an ISO-8601 UTC time, like 2026-03-01T12:00:00Z.';
// Date.parse takes 2026-02-30 and 24:00; the fields are checked against the date they make.
const UTC_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?Z$/i;

/** An ISO-8601 UTC time (`Z`, seconds and fractions optional) as epoch ms; undefined when it is not a real one. */
export function parseUtcTime(text: string): number | undefined {
  const m = UTC_TIME.exec(text);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map((v) => Number(v ?? '0')) as [number, number, number, number, number, number];
  const ms = Number((m[7] ?? '0').padEnd(3, '0').slice(0, 3));
  const at = new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms));
  // Date.UTC maps years 0-99 to 1900-1999: set the year again.
  at.setUTCFullYear(year);
  const same =
    at.getUTCFullYear() === year && at.getUTCMonth() === month - 1 && at.getUTCDate() === day && at.getUTCHours() === hour && at.getUTCMinutes() === minute && at.getUTCSeconds() === second;
  return same ? at.getTime() : undefined;
}

/** Checks the filters of a query; a bad one is refused with 400 invalid_request naming each field. */
export function parseAuditFilter(query: AuditFilterQuery): AuditFilter {
  const fields: Record<string, string> = {};
  let types: AuditType[] | undefined;
  if (query.type !== undefined) {
    const names = [query.type].flat().flatMap((t) => t.split(',')).map((t) => t.trim());
    if (names.some((t) => !KNOWN_TYPES.has(t))) fields.type = `Use one or more of: ${AUDIT_TYPES.join(', ')}.`;
    else types = [...new Set(names)] as AuditType[];
  }
  const user = query.user?.trim();
  if (user !== undefined && user === '') fields.user = 'Enter a user id, or part of a name, email or username.';
  const fromMs = query.from === undefined ? undefined : parseUtcTime(query.from);
  const toMs = query.to === undefined ? undefined : parseUtcTime(query.to);
  if (query.from !== undefined && fromMs === undefined) fields.from = BAD_TIME;
  if (query.to !== undefined && toMs === undefined) fields.to = BAD_TIME;
  if (fromMs !== undefined && toMs !== undefined && toMs < fromMs) fields.to = 'Must not be before from.';
  if (Object.keys(fields).length > 0) throw invalidInput('Some fields are not valid.', fields);
  return { types, outcome: query.outcome, user, fromMs, toMs };
}

/** LIKE's own characters taken literally (with ESCAPE '\\'). */
function likeContaining(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

type AuditEb = ExpressionBuilder<Database, 'audit_events'>;

/** The filter as one WHERE condition. */
function filterCondition(db: Db, filter: AuditFilter): (eb: AuditEb) => Expression<SqlBool> {
  return (eb) => {
    const parts: Expression<SqlBool>[] = [];
    if (filter.types !== undefined) parts.push(eb('type', 'in', filter.types));
    if (filter.outcome !== undefined) parts.push(eb('outcome', '=', filter.outcome));
    if (filter.fromMs !== undefined) parts.push(eb('at', '>=', filter.fromMs));
    if (filter.toMs !== undefined) parts.push(eb('at', '<=', filter.toMs));
    if (filter.user !== undefined) parts.push(userCondition(db, eb, filter.user));
    return eb.and(parts);
  };
}

function userCondition(db: Db, eb: AuditEb, user: string): Expression<SqlBool> {
  const pattern = likeContaining(user);
  const contains = (column: string) => sql<SqlBool>`lower(${sql.ref(column)}) like ${pattern} escape '\\'`;
  const matchingUsers = eb
    .selectFrom('users')
    .select('users.id')
    .where((u) =>
      u.or([
        sql<SqlBool>`lower(${sql.ref('users.name')}) like ${pattern} escape '\\'`,
        sql<SqlBool>`lower(${sql.ref('users.email')}) like ${pattern} escape '\\'`,
        sql<SqlBool>`lower(${sql.ref('users.username')}) like ${pattern} escape '\\'`,
      ]),
    );
  // A failed sign-in names no account, only the login as typed, in its detail.
  const typedLogin =
    dialectOf(db) === 'postgres'
      ? sql<SqlBool>`lower(substring(${sql.ref('audit_events.detail')} from '"login":"((?:[^"\\\\]|\\\\.)*)"')) like ${likeContaining(JSON.stringify(user).slice(1, -1))} escape '\\'`
      : sql<SqlBool>`(case when json_valid(${sql.ref('audit_events.detail')}) then lower(json_extract(${sql.ref('audit_events.detail')}, '$.login')) end) like ${pattern} escape '\\'`;
  return eb.or([
    eb('actor_id', '=', user),
    eb('target_id', '=', user),
    contains('audit_events.actor_label'),
    contains('audit_events.target_label'),
    eb('actor_id', 'in', matchingUsers),
    eb('target_id', 'in', matchingUsers),
    eb.and([eb('type', '=', 'login_failed'), typedLogin]),
  ]);
}

type AuditRow = Awaited<ReturnType<typeof selectRows>>[number];

function selectRows(db: Db, filter: AuditFilter, limit: number, beforeId: number | undefined, atMostId?: number) {
  let q = db.selectFrom('audit_events').selectAll().where(filterCondition(db, filter)).orderBy('id', 'desc').limit(limit);
  if (beforeId !== undefined) q = q.where('id', '<', beforeId);
  if (atMostId !== undefined) q = q.where('id', '<=', atMostId);
  return q.execute();
}

function toEvent(r: AuditRow): AuditEvent {
  return {
    id: Number(r.id),
    at: new Date(r.at).toISOString(),
    type: r.type,
    actor: r.actor_id === null && r.actor_label === null ? null : { id: r.actor_id, label: r.actor_label },
    target: r.target_id === null && r.target_label === null ? null : { id: r.target_id, label: r.target_label },
    ip: r.ip,
    outcome: r.outcome,
    detail: r.detail === null ? null : (JSON.parse(r.detail) as Record<string, unknown>),
  };
}

/** Newest first, `limit` at a time; `before` is the id of the last event already shown. */
export async function listAudit(db: Db, options: { limit: number; before?: number | undefined; filter?: AuditFilter | undefined }): Promise<AuditEvent[]> {
  const rows = await selectRows(db, options.filter ?? {}, options.limit, options.before);
  return rows.map(toEvent);
}

/** How many events match, and the newest one's id (a snapshot: later events are left out of an export). */
export async function countAudit(db: Db, filter: AuditFilter): Promise<{ count: number; newestId: number | undefined }> {
  const row = await db
    .selectFrom('audit_events')
    .select((eb) => [eb.fn.countAll().as('n'), eb.fn.max('id').as('newest')])
    .where(filterCondition(db, filter))
    .executeTakeFirstOrThrow();
  return { count: Number(row.n), newestId: row.newest === null ? undefined : Number(row.newest) };
}

/**
 * Every event matching the filter with id ≤ newestId, newest first, at most `max` of them,
 * read `batch` at a time so an export never holds the whole log in memory.
 */
export async function* auditEventsUpTo(db: Db, filter: AuditFilter, newestId: number, max: number, batch = 1000): AsyncGenerator<AuditEvent> {
  let left = max;
  let before: number | undefined = newestId + 1;
  while (left > 0) {
    const rows = await selectRows(db, filter, Math.min(batch, left), before);
    for (const r of rows) yield toEvent(r);
    left -= rows.length;
    if (rows.length < Math.min(batch, left + rows.length)) return;
    before = Number(rows[rows.length - 1]!.id);
  }
}
