import SQLite from 'better-sqlite3';
import fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { Kysely, sql, SqliteDialect } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cookieNames, createSession, hashSessionToken } from '../../src/accounts/sessions.js';
import type { Database, Db } from '../../src/db/index.js';
import type { CapturedMessage, DevInbox } from '../../src/mail/dev-inbox.js';
import { createLogger } from '../../src/logger.js';
import { FORGOT_PASSWORD_ACCEPTED } from '../../src/recovery/routes.js';
import { addUser, makeTestApp, OTHER_STRONG_PASSWORD, STRONG_PASSWORD, type TestContext } from '../helpers/app.js';
import { createPgTestDb, postgresSuite, type PostgresDescribe } from '../helpers/pg.js';
import { nextTestSeed, TEST_SEED } from '../helpers/seed.js';
import { fakeHasher, unlimited } from './abuse-helpers.js';
import { rawHttp } from './support/raw-http.js';

// Issue 4 item 3: strict input on every route. A property-based run sends generated bodies to
// every route the OpenAPI document lists; explicit tests pin the contract's edges (413, 415,
// 404/405, arrays for strings, one plain email address, mail to the stored address only).

const PUBLIC_URL = 'https://dash.example.com';
const SESSION_COOKIE = cookieNames(new URL(PUBLIC_URL)).session;
const NEW_PASSWORD = 'a completely new passphrase';

// Hardening item 7: the fuzz runs on both dialects. PostgreSQL refuses a NUL in text with an error
// (SQLite stores it), so the generators put control characters in every kind of input; the
// PostgreSQL run is shorter per route, which the control-character weight makes up for.
interface DialectRun {
  name: 'SQLite' | 'PostgreSQL';
  runsPerRoute: number;
  suite: PostgresDescribe;
}
const DIALECTS: DialectRun[] = [
  { name: 'SQLite', runsPerRoute: 1000, suite: describe.runIf(true) },
  { name: 'PostgreSQL', runsPerRoute: 150, suite: await postgresSuite() },
];

/** Every code DESIGN §2 lists, plus each route's own. */
const KNOWN_ERROR_CODES = new Set([
  'invalid_request',
  'unauthenticated',
  'forbidden',
  'forbidden_origin',
  'password_change_required',
  'not_found',
  'method_not_allowed',
  'payload_too_large',
  'unsupported_media_type',
  'rate_limited',
  'overloaded',
  'invalid_credentials',
  'invalid_current_password',
  'weak_password',
  'invalid_or_expired_token',
  'password_mismatch',
  'email_taken',
  'username_taken',
  'last_admin',
  'no_email',
  'user_disabled',
  'sign_in_locked',
  'reauthentication_required',
  'cannot_delete_self',
  'cannot_demote_self',
  'cannot_disable_self',
  'delivery_target_locked',
  'email_settings_not_saved',
]);
/** The Settings page's test answers 502 with its own error set (DESIGN §2). */
const EMAIL_TEST_ERRORS = new Set(['not_configured', 'secret_not_found', 'dns_failed', 'connect_failed', 'tls_failed', 'auth_failed', 'permission_denied', 'rejected']);

type Caller = 'anonymous' | 'user' | 'admin';
type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  enum?: unknown[];
  maxLength?: number;
  minLength?: number;
  pattern?: string;
}

interface Route {
  method: HttpMethod;
  /** OpenAPI form, e.g. /api/users/{id} */
  path: string;
  body: JsonSchema | undefined;
  pathParams: string[];
  query: Record<string, JsonSchema>;
}

// ---------------------------------------------------------------------------------------------
// The world each route is fuzzed in: accounts, sessions, live tokens, and a raw view of the tables.

const ACCOUNTS = {
  admin: { email: 'Admin.Root@Example.COM', username: 'root', role: 'system-admin' as const },
  user: { email: 'Plain.User@Example.com', username: 'plain', role: 'user' as const },
  mike: { email: 'mike@example.com', username: null, role: 'user' as const },
  off: { email: 'Off.User@Example.com', username: 'off', role: 'user' as const },
  nomail: { email: null, username: 'nomail', role: 'user' as const },
  fresh: { email: 'Fresh.Person@Example.org', username: null, role: 'user' as const },
};

interface World {
  ctx: TestContext;
  dialect: DialectRun['name'];
  db: Db;
  /** a value that moves whenever any row may have been written (cheaper than a snapshot) */
  writeMarker(): Promise<string>;
  ids: Record<keyof typeof ACCOUNTS, string>;
  cookies: Record<Exclude<Caller, 'anonymous'>, string>;
  tokens: string[];
  lastSnapshot?: { marker: string; text: string };
  close(): Promise<void>;
}

interface WorldDb {
  db: Db;
  writeMarker(): Promise<string>;
  drop(): Promise<void>;
}

async function openDb(dialect: DialectRun['name']): Promise<WorldDb> {
  if (dialect === 'PostgreSQL') {
    const pg = await createPgTestDb();
    return {
      db: pg.db,
      // Every transaction that writes is given an id; xmax moves past it when it ends (committed or
      // not). Cluster-wide, so other databases' writes move it too: that costs a comparison, never a miss.
      writeMarker: async () => (await sql<{ x: string }>`select pg_snapshot_xmax(pg_current_snapshot())::text as x`.execute(pg.db)).rows[0]!.x,
      drop: () => pg.drop(),
    };
  }
  const sqlite = new SQLite(':memory:');
  sqlite.pragma('foreign_keys = ON');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  // Any write by a statement moves SQLite's count of changed rows (a rolled-back one too).
  const changes = sqlite.prepare('SELECT total_changes() AS n');
  return { db, writeMarker: async () => String((changes.get() as { n: number }).n), drop: () => db.destroy() };
}

async function makeWorld(dialect: DialectRun['name'] = 'SQLite'): Promise<World> {
  const { db, writeMarker, drop } = await openDb(dialect);
  const ctx = await makeTestApp({
    env: { PUBLIC_URL },
    db,
    // Fast hashing, no throttling (the limits have their own tests) and no request logging: the
    // generated requests reach every handler, about a thousand a second.
    deps: { hasher: fakeHasher(), limiter: unlimited, logger: createLogger('silent'), devInbox: fakeDevInbox() },
  });
  const ids = {} as World['ids'];
  for (const [key, a] of Object.entries(ACCOUNTS) as [keyof typeof ACCOUNTS, (typeof ACCOUNTS)[keyof typeof ACCOUNTS]][]) {
    ids[key] = (await addUser(ctx, { email: a.email, username: a.username, role: a.role, password: key === 'fresh' ? null : STRONG_PASSWORD })).id;
  }
  await ctx.db.updateTable('users').set({ disabled: 1 }).where('id', '=', ids.off).execute();
  const cookies = { admin: await signIn(ctx, 'root'), user: await signIn(ctx, 'plain') };
  const world: World = {
    ctx,
    dialect,
    db,
    writeMarker,
    ids,
    cookies,
    tokens: [],
    async close() {
      await ctx.close();
      await drop();
    },
  };
  await mintLiveTokens(world);
  ctx.mailer.sent.length = 0;
  return world;
}

/** A dev mailbox holding two messages, so its routes answer rather than 404 (the fuzz runs on loopback). */
function fakeDevInbox(): DevInbox {
  const messages: CapturedMessage[] = ['11111111-1111-4111-8111-111111111111', '22222222-2222-4222-8222-222222222222'].map((id, i) => ({
    id,
    at: '2026-03-01T12:00:00.000Z',
    from: 'Gatehouse <no-reply@gatehouse.localhost>',
    to: 'mike@example.com',
    subject: `Message ${i}`,
    text: 'Hello',
    html: i === 0 ? '<p>Hello</p>' : null,
  }));
  return {
    port: 0,
    mailer: { send: async () => undefined },
    list: () => messages,
    find: (id) => messages.find((m) => m.id === id),
    close: async () => undefined,
  };
}

/** Signs in and returns the Cookie header value (the cookie is __Host- prefixed: PUBLIC_URL is https). */
async function signIn(ctx: TestContext, login: string): Promise<string> {
  const res = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login, password: STRONG_PASSWORD } });
  const cookie = res.cookies.find((c) => c.name === SESSION_COOKIE);
  if (res.statusCode !== 200 || cookie === undefined) throw new Error(`sign-in failed: ${res.statusCode} ${res.body}`);
  return `${SESSION_COOKIE}=${cookie.value}`;
}

async function snapshotTables(world: World): Promise<string[]> {
  const rows =
    world.dialect === 'SQLite'
      ? (await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`.execute(world.db)).rows
      : (await sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`.execute(world.db)).rows;
  return rows.map((r) => r.name).filter((name) => name !== 'audit_events').sort();
}

/**
 * Every table but audit_events, as text, rows in a fixed order (PostgreSQL returns an updated row
 * elsewhere). What a refused sign-in is meant to move is masked: users.failed_login_count (the NIST
 * consecutive-failure counter) and the lock it ends in, users.locked_at, like the limiter's counters.
 */
async function snapshot(world: World): Promise<string> {
  const out: Record<string, string[]> = {};
  for (const table of await snapshotTables(world)) {
    const rows = (await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(table)}`.execute(world.db)).rows;
    const masked = table === 'users' ? rows.map((r) => ({ ...r, failed_login_count: '(counter)', locked_at: '(lock)' })) : rows;
    out[table] = masked.map((r) => JSON.stringify(r)).sort();
  }
  return JSON.stringify(out);
}

/** snapshot(), read again only when the write marker moved. */
async function currentSnapshot(world: World): Promise<string> {
  const marker = await world.writeMarker();
  if (world.lastSnapshot?.marker !== marker) world.lastSnapshot = { marker, text: await snapshot(world) };
  return world.lastSnapshot.text;
}

async function storedAddresses(world: World): Promise<Set<string>> {
  const rows = await world.db.selectFrom('users').select('email').where('email', 'is not', null).execute();
  return new Set(rows.map((r) => r.email!));
}

/**
 * Live reset links, so generated verifies and resets can succeed (and be refused) with a real
 * token. Generated bodies name them by placeholder (see liveToken), filled in when sent.
 */
async function mintLiveTokens(world: World): Promise<void> {
  const owners = await world.db.selectFrom('users').select('email').where('disabled', '=', 0).where('email', 'is not', null).orderBy('created_at').orderBy('id').limit(3).execute();
  const from = world.ctx.mailer.sent.length;
  for (const { email } of owners) await world.ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email } });
  await world.ctx.outbox.drain();
  world.tokens = world.ctx.mailer.sent.slice(from).flatMap((m) => /#token=([A-Za-z0-9_-]{43})/.exec(m.text)?.[1] ?? []);
}

const LIVE_TOKEN = (i: number): string => `@@live-token-${i}@@`;
const LIVE_TOKEN_UPPER = (i: number): string => `@@LIVE-TOKEN-${i}@@`;

/** Puts the world's live tokens where a generated body holds a placeholder. */
function withLiveTokens(world: World, payload: string): string {
  return payload.replace(/@@(live|LIVE)-(token|TOKEN)-(\d)@@/g, (_m, kind: string, _t: string, i: string) => {
    const token = world.tokens.length === 0 ? 'A'.repeat(43) : world.tokens[Number(i) % world.tokens.length]!;
    return kind === 'LIVE' ? token.toUpperCase() : token;
  });
}

/**
 * Generated admin edits may disable, demote, delete or sign out the test's own callers, and
 * generated resets use up the live tokens; both are put back between requests (never during
 * one) so every caller and every token path keeps being exercised.
 */
async function restoreWorld(world: World): Promise<void> {
  await restoreCallers(world);
  const tokens = await world.db
    .selectFrom('reset_tokens as t')
    .innerJoin('users as u', 'u.id', 't.user_id')
    .select(['u.password_changed_at', 't.bound_password_changed_at', 'u.email_normalized', 't.bound_email'])
    .where('u.disabled', '=', 0)
    .execute();
  // Compared here: bigint columns come back from PostgreSQL as strings.
  const live = tokens.filter((t) => String(t.password_changed_at) === String(t.bound_password_changed_at) && t.email_normalized === t.bound_email);
  if (live.length < 2) await mintLiveTokens(world);
}

async function restoreCallers(world: World): Promise<void> {
  const policy = { idleMinutes: 120, maxHours: 12 };
  for (const caller of ['admin', 'user'] as const) {
    const id = world.ids[caller];
    const role = caller === 'admin' ? 'system-admin' : 'user';
    const row = await world.db
      .selectFrom('sessions as s')
      .innerJoin('users as u', 'u.id', 's.user_id')
      .select(['u.role', 'u.disabled', 'u.must_change_password'])
      .where('u.id', '=', id)
      .where('s.token_hash', '=', sessionHash(world.cookies[caller]))
      .executeTakeFirst();
    if (row !== undefined && row.role === role && row.disabled === 0 && row.must_change_password === 0) continue;
    const exists = (await world.db.selectFrom('users').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
    if (exists) {
      await world.db.updateTable('users').set({ role, disabled: 0, must_change_password: 0 }).where('id', '=', id).execute();
    } else {
      const n = nextTestSeed();
      world.ids[caller] = (await addUser(world.ctx, { email: `${caller}.again.${n}@example.com`, username: `${caller}-again-${n}`, role })).id;
    }
    const session = await createSession(world.ctx.deps, world.ids[caller], policy, { ip: null, userAgent: null });
    world.cookies[caller] = `${SESSION_COOKIE}=${session.token}`;
  }
}

function sessionHash(cookie: string): string {
  return hashSessionToken(cookie.slice(`${SESSION_COOKIE}=`.length));
}

// ---------------------------------------------------------------------------------------------
// Generators: near misses of each route's real schema, arbitrary JSON, raw text.

const HUGE = [300, 1_100, 9_000, 70_000];
/** What the server refuses in every string: C0 (NUL, tab and line breaks included), DEL, C1. */
const CONTROL_CHARACTERS = [...Array.from({ length: 0x20 }, (_, i) => i), 0x7f, ...Array.from({ length: 0x20 }, (_, i) => 0x80 + i)].map((c) => String.fromCharCode(c));
const HAS_CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/** A plausible value with one control character put somewhere in it, NUL most often. */
function withControlCharacter(valid: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  const control = fc.oneof({ arbitrary: fc.constant('\u0000'), weight: 2 }, { arbitrary: fc.constantFrom(...CONTROL_CHARACTERS), weight: 3 });
  return fc.tuple(valid, control, fc.nat()).map(([v, c, at]) => {
    const text = typeof v === 'string' ? v : JSON.stringify(v) ?? '';
    const i = at % (text.length + 1);
    return `${text.slice(0, i)}${c}${text.slice(i)}`;
  });
}
const CONTROL = ['\r\n', '\n', '\r', '\u0000', '\t', '\u2028', '\u0085', '\u200b', '\ufeff', '\u202e'];

function weird(valid: fc.Arbitrary<unknown>): fc.Arbitrary<unknown> {
  return fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double(),
    fc.constant([]),
    valid.map((v) => [v]),
    fc.tuple(valid, valid).map(([a, b]) => [a, b]),
    valid.map((v) => ({ value: v })),
    fc.constantFrom(...HUGE).map((n) => 'x'.repeat(n)),
    fc.string({ unit: 'grapheme', maxLength: 40 }),
    fc.string({ unit: 'binary', maxLength: 40 }),
    fc.tuple(valid, fc.constantFrom(...CONTROL), fc.constantFrom('', 'Bcc: attacker@evil.example', 'x')).map(([v, c, tail]) => `${String(v)}${c}${tail}`),
    fc.jsonValue({ maxDepth: 3 }),
  );
}

function emailish(): fc.Arbitrary<string> {
  const stored = Object.values(ACCOUNTS)
    .map((a) => a.email)
    .filter((e): e is string => e !== null);
  const variants = stored.flatMap((e) => [
    e.toLowerCase(),
    e.toUpperCase(),
    `  ${e}\t`,
    e.replace(/[a-z]/gi, (c) => String.fromCharCode(c.charCodeAt(0) + 0xfee0)),
    e.replace(/i/gi, 'ı'),
    e.replace(/i/gi, 'İ'),
    e.replace(/a/gi, 'а'),
    e.replace(/k/gi, '\u212a'),
  ]);
  const hostile = [
    'victim@example.com, attacker@evil.example',
    'victim@example.com,attacker@evil.example',
    'victim@example.com;attacker@evil.example',
    'Victim <victim@example.com>',
    '"Victim" <victim@example.com>',
    '<attacker@evil.example>',
    'victim@example.com\r\nBcc: attacker@evil.example',
    'victim@example.com\nattacker@evil.example',
    'victim@example.com\u0000attacker@evil.example',
    'victim@example.com attacker@evil.example',
    '"victim@example.com"@evil.example',
    'victim(comment)@example.com',
    'victim@[127.0.0.1]',
    'victim@localhost',
    'victim%evil.example@example.com',
    'victim@example.com%0d%0aBcc:attacker@evil.example',
    `${'a'.repeat(65)}@example.com`,
    `a@${'b'.repeat(64)}.com`,
    `${'a'.repeat(64)}@${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(63)}.com`,
    'a@@example.com',
    '.a@example.com',
    'a..b@example.com',
    'a@-example.com',
    'a@example',
    '@example.com',
    'a@',
  ];
  return fc.oneof(
    { arbitrary: fc.constantFrom(...stored, ...variants), weight: 4 },
    { arbitrary: fc.constantFrom(...hostile), weight: 3 },
    { arbitrary: fc.emailAddress(), weight: 2 },
    { arbitrary: fc.string({ maxLength: 30 }), weight: 1 },
    { arbitrary: fc.tuple(fc.constantFrom(...stored), fc.constantFrom(',', ';', ' ', '\n', ', '), fc.emailAddress()).map(([a, sep, b]) => `${a}${sep}${b}`), weight: 1 },
  );
}

/** Values a well-behaved client would send for a field: most generated bodies should get past validation. */
function validValue(name: string, world: World): fc.Arbitrary<unknown> | undefined {
  const newAddress = fc.tuple(fc.stringMatching(/^[a-z][a-z0-9]{0,9}(?:\.[a-z0-9]{1,8})?$/), fc.constantFrom('example.com', 'Example.org', 'mail.example.net')).map(([l, d]) => `${l}@${d}`);
  const stored = fc.constantFrom(...Object.values(ACCOUNTS).flatMap((a) => (a.email === null ? [] : [a.email, a.email.toLowerCase(), ` ${a.email.toUpperCase()} `])));
  switch (name) {
    case 'email':
    case 'to':
      return fc.oneof(stored, newAddress);
    case 'login':
      return fc.oneof(stored, fc.constantFrom('root', 'plain', 'ROOT', 'nomail', 'off'));
    case 'password':
    case 'confirmPassword':
    case 'newPassword':
      return fc.constantFrom(NEW_PASSWORD, OTHER_STRONG_PASSWORD, STRONG_PASSWORD);
    case 'currentPassword':
      return fc.constant(STRONG_PASSWORD);
    case 'token':
      return fc.nat(2).map(LIVE_TOKEN);
    case 'username':
      return fc.stringMatching(/^[a-z][a-z0-9._-]{0,15}$/);
    case 'name':
      return fc.stringMatching(/^[A-Z][a-z]{0,10}(?: [A-Z][a-z]{0,10})?$/);
    case 'host':
      return fc.constantFrom('localhost', '127.0.0.1', 'smtp.example.com');
    case 'port':
      return fc.constantFrom(25, 465, 587, 2525);
    case 'emailSecretName':
      return fc.constantFrom('mail-from', 'sender-address');
    case 'passwordSecretName':
      return fc.constantFrom('mail-password', null);
    default:
      return undefined;
  }
}

/** Near misses: hostile or malformed values of the right type, and wrong types. */
function nearMiss(name: string, schema: JsonSchema, world: World): fc.Arbitrary<unknown> {
  const passwords = fc.constantFrom(STRONG_PASSWORD, 'short', 'a'.repeat(20), '12345678901234567890', 'gatehouse gatehouse gatehouse', 'password password', 'Admin.Root@Example.COM!!');
  const usernames = fc.constantFrom('root', 'plain', 'nomail', 'off', 'ROOT', ' plain ', 'ｒｏｏｔ', 'a.b_c-d', 'bad name', 'x@y', '', '-lead', 'x'.repeat(65));
  switch (name) {
    case 'email':
    case 'to':
      return emailish();
    case 'login':
      return fc.oneof(emailish(), usernames);
    case 'password':
    case 'confirmPassword':
    case 'currentPassword':
    case 'newPassword':
      return fc.oneof(passwords, fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', minLength: 120, maxLength: 140 }));
    case 'token':
      return fc.oneof(fc.stringMatching(/^[A-Za-z0-9_-]{43}$/), fc.string({ maxLength: 60 }), fc.nat(2).map((i) => `${LIVE_TOKEN(i)} `), fc.nat(2).map(LIVE_TOKEN_UPPER));
    case 'username':
      return usernames;
    case 'name':
      return fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('Jane <b>Doe</b>', 'Robert"); DROP TABLE users;--', '  ', '{{7*7}}', '${7*7}', 'x'.repeat(201)));
    case 'role':
      return fc.constantFrom('admin', 'System-Admin', '', 'root', 'system-admin ');
    case 'host':
      return fc.constantFrom('', 'exa mple', 'a'.repeat(256), '::1', 'smtp.example.com\r\nX: y', 'http://smtp.example.com');
    case 'port':
      return fc.oneof(fc.integer({ min: -10, max: 70_000 }), fc.constantFrom(0, 65_536, 1.5, -587));
    case 'emailSecretName':
    case 'passwordSecretName':
      return fc.oneof(fc.constantFrom('bad name!', '../../etc/passwd', 'a'.repeat(128), ''), fc.string({ maxLength: 20 }));
    default:
      return fc.string({ maxLength: Math.min(schema.maxLength ?? 40, 60) });
  }
}

function fieldValue(name: string, schema: JsonSchema, world: World): fc.Arbitrary<unknown> {
  const types = [schema.type ?? 'string'].flat();
  const valid: fc.Arbitrary<unknown>[] = [];
  if (schema.enum) valid.push(fc.constantFrom(...schema.enum));
  const own = validValue(name, world);
  if (own) valid.push(own);
  else if (types.includes('boolean')) valid.push(fc.boolean());
  else if (types.includes('integer')) valid.push(fc.integer({ min: 0, max: 100 }));
  else if (types.includes('string')) valid.push(fc.string({ minLength: 1, maxLength: 20 }));
  // An object field (the email test's unsaved `settings`): empty, or the saved form's shape.
  else if (types.includes('object')) valid.push(fc.constantFrom({}, { host: 'smtp.example.com', port: 587, emailSecretName: 'smtp-from', passwordSecretName: null, sslEnabled: true }));
  if (types.includes('null')) valid.push(fc.constant(null));
  const plausible = fc.oneof(...valid);
  return fc.oneof(
    { arbitrary: plausible, weight: 6 },
    { arbitrary: nearMiss(name, schema, world), weight: 2 },
    { arbitrary: withControlCharacter(plausible), weight: 1 },
  );
}

type Body = { kind: 'none' } | { kind: 'json'; value: unknown } | { kind: 'raw'; text: string };

function bodies(route: Route, world: World): fc.Arbitrary<Body> {
  const arbitraryJson: fc.Arbitrary<Body> = fc.jsonValue({ maxDepth: 4 }).map((value) => ({ kind: 'json', value }));
  const raw: fc.Arbitrary<Body> = fc
    .oneof(
      fc.constantFrom(
        '{',
        '{"a":',
        'null',
        '[]',
        '""',
        '1e999',
        '{"__proto__":{"polluted":"yes"}}',
        '{"constructor":{"prototype":{"polluted":"yes"}}}',
        `${'['.repeat(5000)}${']'.repeat(5000)}`,
        '\ufeff{}',
        '{"a":"\\ud800"}',
      ),
      fc.string({ maxLength: 50 }),
    )
    .map((text) => ({ kind: 'raw', text }));
  const schema = route.body;
  if (schema === undefined || schema.properties === undefined) {
    return fc.oneof({ arbitrary: fc.constant<Body>({ kind: 'none' }), weight: 3 }, { arbitrary: arbitraryJson, weight: 2 }, { arbitrary: raw, weight: 1 });
  }
  const props = schema.properties;
  const names = Object.keys(props);
  const required = new Set(schema.required ?? []);
  const fields = Object.fromEntries(names.map((n) => [n, fieldValue(n, props[n]!, world)]));
  // All required fields, some optional ones, each from the field's plausible values.
  const plausible = fc.record(fields, { requiredKeys: [...required] }) as fc.Arbitrary<Record<string, unknown>>;
  const oneWrong = fc
    .tuple(plausible, fc.constantFrom(...names))
    .chain(([body, field]) => weird(fields[field]!).map((bad) => ({ ...body, [field]: bad })));
  const missingOrExtra = fc.tuple(plausible, fc.constantFrom(...names), fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 })).map(([body, drop, extra, value]) => {
    const copy: Record<string, unknown> = { ...body };
    delete copy[drop];
    return extra.length > 0 && !names.includes(extra) ? { ...copy, [extra]: value } : copy;
  });
  const polluted = fc.tuple(plausible, fc.constantFrom('__proto__', 'constructor', 'prototype')).map(([body, key]): Body => {
    const inner = key === 'constructor' ? '{"prototype":{"polluted":"yes","role":"system-admin"}}' : '{"polluted":"yes","role":"system-admin","isAdmin":true}';
    return { kind: 'raw', text: `{"${key}":${inner},${JSON.stringify(body).slice(1)}` };
  });
  return fc.oneof(
    { arbitrary: plausible.map((value): Body => ({ kind: 'json', value })), weight: 8 },
    { arbitrary: oneWrong.map((value): Body => ({ kind: 'json', value })), weight: 4 },
    { arbitrary: missingOrExtra.map((value): Body => ({ kind: 'json', value })), weight: 2 },
    { arbitrary: polluted, weight: 1 },
    { arbitrary: arbitraryJson, weight: 1 },
    { arbitrary: raw, weight: 1 },
    { arbitrary: fc.constant<Body>({ kind: 'none' }), weight: 1 },
  );
}

/** A path parameter, and whether to put it in the URL as it is (malformed percent-encoding) rather than encoded. */
function paramValue(world: World): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...Object.values(world.ids), '11111111-1111-4111-8111-111111111111'), weight: 4 },
    { arbitrary: fc.constantFrom('%', '%zz', '%E0%A4%A', '%C0%AF', '%ED%A0%80', '%00', 'a%2Fb', '%2e%2e').map((raw) => `${RAW}${raw}`), weight: 1 },
    { arbitrary: fc.uuid(), weight: 1 },
    { arbitrary: fc.string({ maxLength: 70 }), weight: 1 },
    { arbitrary: fc.constantFrom('..', '.', '%00', '__proto__', 'constructor', "1' OR '1'='1", 'x'.repeat(65), 'x'.repeat(300)), weight: 1 },
    { arbitrary: withControlCharacter(fc.constantFrom(...Object.values(world.ids))), weight: 1 },
    { arbitrary: fc.constantFrom('%00', '%01', '%0A', '%7F', '%C2%80', '%C2%9F').map((c) => `${RAW}${world.ids.mike}${c}`), weight: 1 },
  );
}

function queryString(route: Route): fc.Arbitrary<string> {
  const known = Object.keys(route.query);
  const plain = fc.constantFrom('1', '50', '200', '999', '1000', '0', '-1', 'abc', '', '1e3', '00000000-0000-4000-8000-000000000000', '9'.repeat(20));
  const value = fc.oneof({ arbitrary: plain, weight: 3 }, { arbitrary: fc.string({ maxLength: 10 }), weight: 1 }, { arbitrary: withControlCharacter(plain), weight: 1 });
  const key = known.length > 0 ? fc.oneof(fc.constantFrom(...known), fc.constantFrom('__proto__', 'constructor', 'limit[]', 'x')) : fc.constantFrom('__proto__', 'x', 'limit');
  return fc.oneof(
    fc.constant(''),
    fc.array(fc.tuple(key, value), { maxLength: 3 }).map((pairs) => (pairs.length === 0 ? '' : `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`)),
  );
}

interface FuzzRequest {
  caller: Caller;
  params: Record<string, string>;
  query: string;
  body: Body;
  contentType: string | undefined;
  origin: string | undefined;
}

function requests(route: Route, world: World): fc.Arbitrary<FuzzRequest> {
  return fc.record({
    caller: fc.constantFrom<Caller>('anonymous', 'user', 'admin'),
    params: fc.record(Object.fromEntries(route.pathParams.map((p) => [p, paramValue(world)]))) as fc.Arbitrary<Record<string, string>>,
    query: queryString(route),
    body: bodies(route, world),
    contentType: fc.oneof(
      { arbitrary: fc.constant('application/json'), weight: 12 },
      { arbitrary: fc.constant('application/json; charset=utf-8'), weight: 2 },
      { arbitrary: fc.constantFrom(undefined, 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'application/json; charset=latin1'), weight: 1 },
    ),
    origin: fc.oneof({ arbitrary: fc.constant(undefined), weight: 6 }, { arbitrary: fc.constant(PUBLIC_URL), weight: 3 }, { arbitrary: fc.constantFrom('https://evil.example', 'null'), weight: 1 }),
  });
}

const RAW = 'raw:';

function urlOf(route: Route, params: Record<string, string>, query: string): string {
  const put = (value: string): string => (value.startsWith(RAW) ? value.slice(RAW.length) : encodeURIComponent(value));
  return route.path.replace(/\{(\w+)\}/g, (_m, name: string) => put(params[name] ?? '')) + query;
}

async function send(world: World, route: Route, r: FuzzRequest): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = {};
  if (r.caller !== 'anonymous') headers.cookie = world.cookies[r.caller];
  if (r.origin !== undefined) headers.origin = r.origin;
  let payload: string | undefined;
  if (r.body.kind === 'json') payload = withLiveTokens(world, JSON.stringify(r.body.value) ?? 'null');
  if (r.body.kind === 'raw') payload = withLiveTokens(world, r.body.text);
  if (payload !== undefined && r.contentType !== undefined) headers['content-type'] = r.contentType;
  return world.ctx.app.inject({ method: route.method, url: urlOf(route, r.params, r.query), headers, ...(payload === undefined ? {} : { payload }) });
}

function describeRequest(route: Route, r: FuzzRequest): string {
  const body = r.body.kind === 'none' ? '(no body)' : r.body.kind === 'raw' ? r.body.text : JSON.stringify(r.body.value);
  return `${route.method} ${urlOf(route, r.params, r.query)} as ${r.caller} [${r.contentType}] ${body.slice(0, 300)}`;
}

const BODY_METHODS = new Set<HttpMethod>(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Whether a path parameter, a query value or name, or a JSON body's key or string holds a control character, as the server decodes them. */
function carriesControlCharacter(route: Route, r: FuzzRequest): boolean {
  const decode = (text: string): string => {
    try {
      return decodeURIComponent(text);
    } catch {
      return text;
    }
  };
  const params = Object.values(r.params).map((v) => (v.startsWith(RAW) ? decode(v.slice(RAW.length)) : v));
  const query = r.query.replace(/^\?/, '').split('&').flatMap((pair) => pair.split('=').map(decode));
  if ([...params, ...query].some((text) => HAS_CONTROL_CHARACTER.test(text))) return true;
  if (r.body.kind !== 'json' || !BODY_METHODS.has(route.method) || !(r.contentType ?? '').startsWith('application/json')) return false;
  const inJson = (value: unknown): boolean => {
    if (typeof value === 'string') return HAS_CONTROL_CHARACTER.test(value);
    if (Array.isArray(value)) return value.some(inJson);
    if (value !== null && typeof value === 'object') return Object.entries(value).some(([k, v]) => HAS_CONTROL_CHARACTER.test(k) || inJson(v));
    return false;
  };
  return inJson(r.body.value);
}

/** The checks every generated request must pass; throws with the request on the first that fails. */
async function checkOne(world: World, route: Route, r: FuzzRequest): Promise<{ status: number; control: boolean }> {
  await restoreWorld(world);
  const before = await currentSnapshot(world);
  const sentBefore = world.ctx.mailer.sent.length;
  const res = await send(world, route, r);
  const what = (): string => `${describeRequest(route, r)} → ${res.statusCode} ${res.body.slice(0, 300)}`;

  const emailTest = route.path === '/api/settings/email/test' && res.statusCode === 502;
  if (res.statusCode >= 500 && !emailTest) throw new Error(`5xx: ${what()}`);
  if (/\n\s+at /.test(res.body)) throw new Error(`a stack trace in the body: ${what()}`);
  const control = carriesControlCharacter(route, r);
  if (control && res.statusCode < 400) throw new Error(`a control character was accepted: ${what()}`);
  if (res.statusCode >= 400) {
    let body: { error?: unknown; message?: unknown };
    try {
      body = res.json();
    } catch {
      throw new Error(`an error body that is not JSON: ${what()}`);
    }
    const codes = emailTest ? EMAIL_TEST_ERRORS : KNOWN_ERROR_CODES;
    if (typeof body.error !== 'string' || !codes.has(body.error) || typeof body.message !== 'string') throw new Error(`an error body without {error, message} and a known code: ${what()}`);
    // A refusal leaves no trace but its audit row (and the consecutive-failure counter).
    const after = await currentSnapshot(world);
    if (after !== before) throw new Error(`a refused request changed the database: ${what()}\n${firstDifference(before, after)}`);
  }
  await world.ctx.outbox.drain();
  const stored = await storedAddresses(world);
  for (const mail of world.ctx.mailer.sent.slice(sentBefore)) {
    if (!stored.has(mail.to)) throw new Error(`mail to ${JSON.stringify(mail.to)}, which no account stores: ${what()}`);
  }
  if (Object.keys(Object.prototype).length > 0 || ({} as Record<string, unknown>).polluted !== undefined) throw new Error(`Object.prototype was polluted: ${what()}`);
  return { status: res.statusCode, control };
}

function firstDifference(a: string, b: string): string {
  const x = JSON.parse(a) as Record<string, unknown[]>;
  const y = JSON.parse(b) as Record<string, unknown[]>;
  for (const table of new Set([...Object.keys(x), ...Object.keys(y)])) {
    if (JSON.stringify(x[table]) !== JSON.stringify(y[table])) return `table ${table}:\n  before ${JSON.stringify(x[table]).slice(0, 600)}\n  after  ${JSON.stringify(y[table]).slice(0, 600)}`;
  }
  return '';
}

// ---------------------------------------------------------------------------------------------

async function listRoutes(): Promise<Route[]> {
  const ctx = await makeTestApp({ env: { PUBLIC_URL } });
  try {
    const doc = (await ctx.app.inject({ method: 'GET', url: '/api/openapi.json' })).json() as {
      paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: JsonSchema }> }; parameters?: { in: string; name: string; schema: JsonSchema }[] }>>;
    };
    const routes: Route[] = [];
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(methods)) {
        const parameters = op.parameters ?? [];
        routes.push({
          method: method.toUpperCase() as HttpMethod,
          path,
          body: op.requestBody?.content?.['application/json']?.schema,
          pathParams: parameters.filter((p) => p.in === 'path').map((p) => p.name),
          query: Object.fromEntries(parameters.filter((p) => p.in === 'query').map((p) => [p.name, p.schema])),
        });
      }
    }
    return routes;
  } finally {
    await ctx.close();
  }
}

const ROUTES = await listRoutes();

describe('the generated requests', () => {
  it('the document lists the routes this suite must cover', () => {
    const listed = ROUTES.map((r) => `${r.method} ${r.path}`);
    for (const expected of [
      'POST /api/auth/login',
      'POST /api/auth/forgot-password',
      'POST /api/auth/reset-password/verify',
      'POST /api/auth/reset-password',
      'POST /api/auth/change-password',
      'POST /api/users',
      'PATCH /api/users/{id}',
      'DELETE /api/users/{id}',
      'POST /api/users/{id}/send-reset',
      'PUT /api/settings/email',
      'POST /api/settings/email/test',
    ]) {
      expect(listed).toContain(expected);
    }
  });

  it('put control characters in bodies, query strings and path parameters', () => {
    const route = ROUTES.find((r) => r.method === 'PATCH' && r.path === '/api/users/{id}')!;
    const world = { ids: { mike: 'm' }, tokens: [] } as unknown as World;
    const sample = fc.sample(requests(route, world), { numRuns: 2000, seed: 7 });
    const share = sample.filter((r) => carriesControlCharacter(route, r)).length / sample.length;
    expect(share).toBeGreaterThan(0.15);
    expect(sample.some((r) => r.query.includes('%00'))).toBe(true);
    expect(sample.some((r) => Object.values(r.params).some((p) => p.includes('\u0000') || p.includes('%00')))).toBe(true);
    expect(sample.some((r) => r.body.kind === 'json' && JSON.stringify(r.body.value).includes('\\u0000'))).toBe(true);
  });
});

for (const dialect of DIALECTS) {
  const runs = dialect.runsPerRoute;
  dialect.suite(`generated requests to every route in /api/openapi.json, on ${dialect.name}`, () => {
    it.each(ROUTES.map((r) => [`${r.method} ${r.path}`, r] as const))(
      '%s: no 5xx, {error, message} with a known code, control characters refused, mail only to stored addresses, refusals change nothing',
      async (_name, route) => {
        const world = await makeWorld(dialect.name);
        const statuses = new Map<number, number>();
        const callers = new Map<Caller, number>();
        let withControl = 0;
        try {
          await fc.assert(
            fc.asyncProperty(requests(route, world), async (r) => {
              const { status, control } = await checkOne(world, route, r);
              statuses.set(status, (statuses.get(status) ?? 0) + 1);
              callers.set(r.caller, (callers.get(r.caller) ?? 0) + 1);
              if (control) withControl++;
            }),
            { numRuns: runs, seed: TEST_SEED },
          );
        } finally {
          await world.close();
        }
        const total = [...statuses.values()].reduce((a, b) => a + b, 0);
        expect(total).toBeGreaterThanOrEqual(runs);
        // Each kind of caller was exercised, and control characters reached the route (each one refused).
        for (const caller of ['anonymous', 'user', 'admin'] as const) expect(callers.get(caller) ?? 0).toBeGreaterThan(runs / 6);
        expect(withControl).toBeGreaterThan(runs / 20);
      },
      120_000,
    );
  });
}

// ---------------------------------------------------------------------------------------------

for (const dialect of DIALECTS) {
  dialect.suite(`control characters are refused with 400 before anything is stored or audited, on ${dialect.name}`, () => {
    let world: World;
    beforeAll(async () => {
      world = await makeWorld(dialect.name);
    }, 60_000);
    afterAll(async () => {
      await world?.close();
    });

    const REMOVE = 'Remove control characters.';
    const send = (method: HttpMethod, url: string, caller: Caller, body?: unknown): Promise<LightMyRequestResponse> =>
      world.ctx.app.inject({
        method,
        url,
        headers: { ...(caller === 'anonymous' ? {} : { cookie: world.cookies[caller] }), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { payload: JSON.stringify(body) }),
      });
    const auditCount = async (): Promise<number> => Number((await world.db.selectFrom('audit_events').select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);

    /** Sends, expects 400 naming exactly `fields`, and no change to any table, the audit log included. */
    async function expectRefused(method: HttpMethod, url: string, caller: Caller, body: unknown, fields: string[]): Promise<void> {
      await restoreWorld(world);
      const [before, auditsBefore] = [await snapshot(world), await auditCount()];
      const res = await send(method, url, caller, body);
      const what = `${method} ${JSON.stringify(url)} ${JSON.stringify(body)} → ${res.statusCode} ${res.body}`;
      expect(res.statusCode, what).toBe(400);
      expect(res.json(), what).toEqual({ error: 'invalid_request', message: REMOVE, fields: Object.fromEntries(fields.map((f) => [f, REMOVE])) });
      expect(await snapshot(world), what).toBe(before);
      expect(await auditCount(), what).toBe(auditsBefore);
    }

    it('a NUL in a login, name, email, password or token', async () => {
      const token = world.tokens[0]!;
      const mike = world.ids.mike;
      const cases: [HttpMethod, string, Caller, Record<string, unknown>, string][] = [
        ['POST', '/api/auth/login', 'anonymous', { login: 'ro\u0000ot', password: STRONG_PASSWORD }, 'login'],
        ['POST', '/api/auth/login', 'anonymous', { login: 'root', password: `${STRONG_PASSWORD}\u0000` }, 'password'],
        ['POST', '/api/users', 'admin', { email: 'new.person@example.com', name: 'New\u0000Person', role: 'user' }, 'name'],
        ['PATCH', `/api/users/${mike}`, 'admin', { name: 'Mi\u0000ke' }, 'name'],
        ['POST', '/api/users', 'admin', { username: 'new\u0000person', name: 'New Person', role: 'user' }, 'username'],
        ['POST', '/api/auth/forgot-password', 'anonymous', { email: 'mike\u0000@example.com' }, 'email'],
        ['POST', '/api/users', 'admin', { email: 'new\u0000@example.com', name: 'New Person', role: 'user' }, 'email'],
        ['PATCH', `/api/users/${mike}`, 'admin', { email: 'mike@exam\u0000ple.com' }, 'email'],
        ['POST', '/api/users', 'admin', { email: 'new.person@example.com', name: 'New Person', role: 'user', password: `${NEW_PASSWORD}\u0000` }, 'password'],
        ['POST', '/api/auth/change-password', 'user', { currentPassword: `${STRONG_PASSWORD}\u0000`, newPassword: NEW_PASSWORD }, 'currentPassword'],
        ['POST', '/api/auth/change-password', 'user', { currentPassword: STRONG_PASSWORD, newPassword: `\u0000${NEW_PASSWORD}` }, 'newPassword'],
        ['POST', '/api/auth/reset-password/verify', 'anonymous', { token: `${token}\u0000` }, 'token'],
        ['POST', '/api/auth/reset-password', 'anonymous', { token: `\u0000${token}`, password: NEW_PASSWORD, confirmPassword: NEW_PASSWORD }, 'token'],
        ['POST', '/api/auth/reset-password', 'anonymous', { token, password: `${NEW_PASSWORD}\u0000`, confirmPassword: NEW_PASSWORD }, 'password'],
        ['POST', '/api/settings/email/test', 'admin', { to: 'ops\u0000@example.com' }, 'to'],
      ];
      for (const [method, url, caller, body, field] of cases) await expectRefused(method, url, caller, body, [field]);
      // The token was never looked at: it still works.
      expect((await send('POST', '/api/auth/reset-password/verify', 'anonymous', { token })).statusCode).toBe(200);
    });

    it('every C0 control, DEL and every C1 control, in any string of the body; not the characters around them', async () => {
      for (const c of CONTROL_CHARACTERS) await expectRefused('PATCH', `/api/users/${world.ids.mike}`, 'admin', { name: `Mi${c}ke` }, ['name']);
      for (const ok of ['\u00a0', '\u00a1', '\u00ff', '~', ' ']) {
        const res = await send('PATCH', `/api/users/${world.ids.mike}`, 'admin', { name: `Mi${ok}ke` });
        expect(res.statusCode, JSON.stringify(ok)).toBe(200);
      }
    });

    it('at any depth of the body, in keys too, and names every field that holds one', async () => {
      await expectRefused('POST', '/api/users', 'admin', { email: 'a\u0001@example.com', name: 'A\u0085', role: 'user' }, ['email', 'name']);
      await expectRefused('PUT', '/api/settings/email', 'admin', { host: 'smtp.example.com', port: 587, emailSecretName: 'mail-from', passwordSecretName: null, sslEnabled: true, extra: [{ deep: ['ok', 'x\u0000'] }] }, ['extra.0.deep.1']);
      await expectRefused('POST', '/api/users', 'admin', { name: 'A', role: 'user', 'email\u0000': 'a@example.com' }, ['email\\u0000']);
      await expectRefused('POST', '/api/auth/logout', 'user', { anything: '\u0000' }, ['anything']);
    });

    it('in a query string or a path parameter', async () => {
      await expectRefused('GET', '/api/audit?before=%00', 'admin', undefined, ['before']);
      await expectRefused('GET', '/api/audit?limit=5%0A', 'admin', undefined, ['limit']);
      await expectRefused('GET', '/api/mail/deliveries?before=x%C2%85', 'admin', undefined, ['before']);
      await expectRefused('GET', '/api/users?x=%7F', 'admin', undefined, ['x']);
      await expectRefused('GET', '/api/auth/me?__proto__=%00', 'user', undefined, ['__proto__']);
      await expectRefused('PATCH', `/api/users/${world.ids.mike}%00`, 'admin', { name: 'Mike' }, ['id']);
      await expectRefused('DELETE', '/api/users/%00', 'admin', undefined, ['id']);
      await expectRefused('POST', `/api/users/%01${world.ids.mike}/send-reset`, 'admin', undefined, ['id']);
    });

    it('decides access first: an anonymous caller of an admin route gets 401, a plain user 403', async () => {
      expect((await send('PATCH', `/api/users/${world.ids.mike}%00`, 'anonymous', { name: 'M\u0000' })).statusCode).toBe(401);
      expect((await send('PATCH', `/api/users/${world.ids.mike}%00`, 'user', { name: 'M\u0000' })).statusCode).toBe(403);
    });
  });
}

// ---------------------------------------------------------------------------------------------

describe('explicit input rules', () => {
  let world: World;
  beforeAll(async () => {
    world = await makeWorld();
  });
  afterAll(async () => {
    await world.close();
  });
  afterEach(async () => {
    await restoreWorld(world);
    await world.ctx.outbox.drain();
    world.ctx.mailer.sent.length = 0;
  });

  const bodyRoutes = (): Route[] => ROUTES.filter((r) => r.body !== undefined);
  const AUTH_ROUTES = ['/api/auth/login', '/api/auth/change-password', '/api/auth/forgot-password', '/api/auth/reset-password/verify', '/api/auth/reset-password'];

  const call = (method: string, url: string, options: { payload?: string; headers?: Record<string, string>; caller?: Caller } = {}): Promise<LightMyRequestResponse> =>
    world.ctx.app.inject({
      method: method as HttpMethod,
      url,
      headers: { ...(options.caller && options.caller !== 'anonymous' ? { cookie: world.cookies[options.caller] } : {}), ...options.headers },
      ...(options.payload === undefined ? {} : { payload: options.payload }),
    });

  const urlFor = (route: Route): string => route.path.replace('{id}', world.ids.mike);

  it('answers 413 payload_too_large to an auth route body over 8 KiB, and not at 8 KiB', async () => {
    for (const url of AUTH_ROUTES) {
      const over = JSON.stringify({ email: 'a'.repeat(8 * 1024) });
      const res = await call('POST', url, { payload: over, headers: { 'content-type': 'application/json' }, caller: 'user' });
      expect(res.statusCode, url).toBe(413);
      expect(res.json()).toEqual({ error: 'payload_too_large', message: expect.any(String) });
      const exact = `{"x":"${'a'.repeat(8 * 1024 - 8)}"}`;
      expect(Buffer.byteLength(exact)).toBe(8 * 1024);
      expect((await call('POST', url, { payload: exact, headers: { 'content-type': 'application/json' }, caller: 'user' })).statusCode, url).not.toBe(413);
    }
  });

  it('answers 413 to any other body over 64 KiB, before knowing who asks', async () => {
    for (const route of bodyRoutes().filter((r) => !AUTH_ROUTES.includes(r.path))) {
      for (const caller of ['anonymous', 'admin'] as const) {
        const res = await call(route.method, urlFor(route), { payload: JSON.stringify({ name: 'x'.repeat(65 * 1024) }), headers: { 'content-type': 'application/json' }, caller });
        expect(res.statusCode, `${route.method} ${route.path} as ${caller}`).toBe(413);
        expect(res.json().error).toBe('payload_too_large');
      }
    }
  });

  it('answers 413 to a chunked body over the limit that announces no length', async () => {
    const address = await world.ctx.app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = new URL(address);
      const chunk = `{"email":"${'a'.repeat(9000)}@example.com"}`;
      const reply = await rawHttp(
        Number(port),
        `POST /api/auth/forgot-password HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunk.length.toString(16)}\r\n${chunk}\r\n0\r\n\r\n`,
      );
      expect(reply).toMatch(/^HTTP\/1\.1 413 /);
      expect(reply).toContain('"error":"payload_too_large"');
    } finally {
      await world.ctx.app.close();
      await world.close().catch(() => undefined);
      world = await makeWorld();
    }
  });

  it('answers 415 unsupported_media_type to any body that is not JSON, on every route that takes one', async () => {
    const types: [string, Record<string, string>, string][] = [
      ['form', { 'content-type': 'application/x-www-form-urlencoded' }, 'email=a%40example.com'],
      ['text', { 'content-type': 'text/plain' }, '{"email":"a@example.com"}'],
      ['multipart', { 'content-type': 'multipart/form-data; boundary=XYZ' }, '--XYZ\r\nContent-Disposition: form-data; name="email"\r\n\r\na@example.com\r\n--XYZ--\r\n'],
      ['no content type', {}, '{"email":"a@example.com"}'],
      ['xml', { 'content-type': 'application/xml' }, '<email>a@example.com</email>'],
      ['json lookalike', { 'content-type': 'application/jsonx' }, '{"email":"a@example.com"}'],
      ['text/json', { 'content-type': 'text/json' }, '{"email":"a@example.com"}'],
    ];
    for (const route of bodyRoutes()) {
      for (const [name, headers, payload] of types) {
        const res = await call(route.method, urlFor(route), { payload, headers, caller: 'admin' });
        expect(res.statusCode, `${route.method} ${route.path} with ${name}`).toBe(415);
        expect(res.json()).toEqual({ error: 'unsupported_media_type', message: expect.any(String) });
      }
    }
    // Bodiless POSTs need no content type.
    expect((await call('POST', '/api/auth/logout')).statusCode).toBe(204);
    expect((await call('POST', `/api/users/${world.ids.mike}/send-reset`, { caller: 'admin' })).statusCode).toBe(202);
  });

  it('answers 405 with Allow to every other method on a listed path, and 404 to unknown paths', async () => {
    const byPath = new Map<string, Set<string>>();
    for (const r of ROUTES) byPath.set(r.path, new Set([...(byPath.get(r.path) ?? []), r.method]));
    for (const [path, methods] of byPath) {
      const url = path.replace('{id}', world.ids.mike);
      for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
        if (methods.has(method)) continue;
        if (method === 'GET' && methods.has('HEAD')) continue;
        const res = await call(method, url, { caller: 'admin' });
        expect(res.statusCode, `${method} ${path}`).toBe(405);
        expect(res.json()).toEqual({ error: 'method_not_allowed', message: expect.any(String) });
        expect(new Set(String(res.headers.allow).split(/,\s*/))).toEqual(methods);
      }
    }
    for (const url of ['/api/nope', '/api/auth/login/extra', '/API/auth/login', '/api/users/x/y/z', '/api', '/api/', '/api/openapi.json/x', '/api/auth/login;x']) {
      const res = await call('POST', url, { payload: '{}', headers: { 'content-type': 'application/json' } });
      expect(res.statusCode, url).toBe(404);
      expect(res.json()).toEqual({ error: 'not_found', message: expect.any(String) });
    }
  });

  it('answers a malformed or over-long path parameter with the usual {error, message} body', async () => {
    for (const [method, url] of [
      ['PATCH', `/api/users/${'x'.repeat(201)}`],
      ['POST', `/api/users/${'x'.repeat(201)}/send-reset`],
      ['PATCH', '/api/users/%E0%A4%A'],
      ['DELETE', '/api/users/%zz'],
      ['GET', '/api/dev/mailbox/%'],
    ] as const) {
      const res = await call(method, url, { caller: 'admin', ...(method === 'PATCH' ? { payload: '{}', headers: { 'content-type': 'application/json' } } : {}) });
      expect([400, 404], `${method} ${url.slice(0, 40)}… → ${res.statusCode} ${res.body.slice(0, 120)}`).toContain(res.statusCode);
      const body = res.json() as { error: string; message: string };
      expect(KNOWN_ERROR_CODES.has(body.error), `${method} ${url.slice(0, 40)}… → ${res.body.slice(0, 120)}`).toBe(true);
      expect(res.body, 'the error echoes the request path').not.toContain('xxxxxxxxxx');
    }
  });

  it('refuses an array, object, number or null wherever a string belongs, on every route', async () => {
    for (const route of bodyRoutes()) {
      const props = route.body!.properties ?? {};
      for (const [field, schema] of Object.entries(props)) {
        if (![schema.type].flat().includes('string')) continue;
        const valid = plausibleBody(route, world);
        for (const bad of [[valid[field] ?? 'x'], ['victim@example.com', 'attacker@evil.example'], { value: 'x' }, 42, ...([schema.type].flat().includes('null') ? [] : [null])]) {
          const res = await call(route.method, urlFor(route), { payload: JSON.stringify({ ...valid, [field]: bad }), headers: { 'content-type': 'application/json' }, caller: 'admin' });
          expect(res.statusCode, `${route.method} ${route.path} ${field}=${JSON.stringify(bad)}`).toBe(400);
          expect(res.json().error).toBe('invalid_request');
          expect(Object.keys(res.json().fields ?? {}), `${route.path} ${field}`).toContain(field);
        }
      }
    }
  });

  const BAD_ADDRESSES: [string, string][] = [
    ['a comma list', 'victim@example.com, attacker@evil.example'],
    ['a comma list without space', 'victim@example.com,attacker@evil.example'],
    ['a semicolon list', 'victim@example.com;attacker@evil.example'],
    ['a space list', 'victim@example.com attacker@evil.example'],
    ['a display name', 'Victim <victim@example.com>'],
    ['a quoted display name', '"Victim" <victim@example.com>'],
    ['angle brackets', '<victim@example.com>'],
    ['a CR/LF header injection', 'victim@example.com\r\nBcc: attacker@evil.example'],
    ['a bare LF', 'victim@example.com\nattacker@evil.example'],
    ['a NUL', 'victim@example.com\u0000attacker@evil.example'],
    ['a NUL in the local part', 'vic\u0000tim@example.com'],
    ['a quoted local part', '"victim attacker"@example.com'],
    ['a comment', 'victim(attacker@evil.example)@example.com'],
    ['two @', 'victim@example.com@evil.example'],
    ['an address literal', 'victim@[127.0.0.1]'],
    ['a single-label domain', 'victim@localhost'],
    ['a 65-character local part', `${'a'.repeat(65)}@example.com`],
    ['a 64-character domain label', `a@${'b'.repeat(64)}.com`],
    ['over 254 characters', `${'a'.repeat(60)}@${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}.${'e'.repeat(10)}.com`],
    ['a leading dot', '.victim@example.com'],
    ['a double dot', 'vic..tim@example.com'],
    ['no local part', '@example.com'],
    ['no domain', 'victim@'],
    ['a fullwidth @', 'victim＠example.com'],
    ['a line separator', 'victim@example.com\u2028attacker@evil.example'],
    ['a next-line character', 'victim@example.com\u0085'],
  ];

  it.each(BAD_ADDRESSES)('refuses %s with 400 on forgot-password, user create/edit and the email test, queueing nothing', async (_name, address) => {
    const before = await snapshot(world);
    const attempts: [string, string, unknown, Caller][] = [
      ['POST', '/api/auth/forgot-password', { email: address }, 'anonymous'],
      ['POST', '/api/users', { email: address, name: 'X', role: 'user' }, 'admin'],
      ['PATCH', `/api/users/${world.ids.mike}`, { email: address }, 'admin'],
      ['POST', '/api/settings/email/test', { to: address }, 'admin'],
    ];
    for (const [method, url, body, caller] of attempts) {
      const res = await call(method, url, { payload: JSON.stringify(body), headers: { 'content-type': 'application/json' }, caller });
      expect(res.statusCode, `${method} ${url}`).toBe(400);
      expect(res.json().error).toBe('invalid_request');
    }
    expect(await snapshot(world)).toBe(before);
    await world.ctx.outbox.drain();
    expect(world.ctx.mailer.sent).toEqual([]);
  });

  it('accepts plain addresses that are one well-formed address', async () => {
    for (const address of ["o'brien@example.com", 'user+tag@example.com', 'ünï@exämple.com', 'a@b.co', `${'a'.repeat(64)}@example.com`]) {
      const res = await call('POST', '/api/auth/forgot-password', { payload: JSON.stringify({ email: address }), headers: { 'content-type': 'application/json' } });
      expect(res.statusCode, address).toBe(202);
    }
  });
});

function plausibleBody(route: Route, world: World): Record<string, unknown> {
  const byField: Record<string, unknown> = {
    login: 'root',
    password: NEW_PASSWORD,
    confirmPassword: NEW_PASSWORD,
    currentPassword: STRONG_PASSWORD,
    newPassword: NEW_PASSWORD,
    email: 'someone.new@example.com',
    to: 'someone.new@example.com',
    token: world.tokens[0] ?? 'A'.repeat(43),
    name: 'Someone',
    username: 'someone',
    role: 'user',
    host: 'localhost',
    port: 587,
    emailSecretName: 'mail-from',
    passwordSecretName: null,
    sslEnabled: true,
    disabled: false,
  };
  const props = route.body?.properties ?? {};
  return Object.fromEntries(Object.keys(props).map((k) => [k, byField[k] ?? 'x']));
}

// ---------------------------------------------------------------------------------------------

describe('addresses are looked up normalised, and mail goes to the stored address byte for byte', () => {
  let ctx: TestContext;
  afterEach(async () => {
    await ctx.close();
  });
  const forgot = (payload: string): Promise<LightMyRequestResponse> =>
    ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', headers: { 'content-type': 'application/json' }, payload });

  it('finds the account whatever the case, width or surrounding space typed, and mails the stored address', async () => {
    ctx = await makeTestApp({ env: { PUBLIC_URL, LIMIT_FORGOT_PER_ADDRESS_PER_HOUR: '0' }, deps: { hasher: fakeHasher() } });
    await addUser(ctx, { email: 'Jane.Doe@Example.com' });
    const typed = ['jane.doe@example.com', 'JANE.DOE@EXAMPLE.COM', '  Jane.Doe@Example.com ', 'Ｊａｎｅ.Ｄｏｅ@Ｅｘａｍｐｌｅ.ｃｏｍ', 'jane.doe@EXAMPLE.com   '];
    for (const email of typed) {
      const res = await forgot(JSON.stringify({ email }));
      expect(res.statusCode, JSON.stringify(email)).toBe(202);
      expect(res.json()).toEqual(FORGOT_PASSWORD_ACCEPTED);
    }
    // A tab or a line break is a control character: refused like everywhere else (browsers strip them from an email field).
    for (const email of ['Jane.Doe@Example.com\t', 'jane.doe@example.com\n', '\r\njane.doe@example.com']) {
      const res = await forgot(JSON.stringify({ email }));
      expect(res.statusCode, JSON.stringify(email)).toBe(400);
      expect(res.json()).toEqual({ error: 'invalid_request', message: 'Remove control characters.', fields: { email: 'Remove control characters.' } });
    }
    await ctx.outbox.drain();
    expect(ctx.mailer.sent.map((m) => m.to)).toEqual(Array(typed.length).fill('Jane.Doe@Example.com'));
    // The outbox never keeps a typed address as the recipient.
    const rows = await ctx.db.selectFrom('mail_outbox').select(['to_address', 'lookup_email']).execute();
    expect(rows.every((r) => r.to_address === 'Jane.Doe@Example.com' && r.lookup_email === null)).toBe(true);
  });

  it('GitLab CVE-2023-7028: an array of addresses is refused outright, and nothing is sent to anyone', async () => {
    ctx = await makeTestApp({ env: { PUBLIC_URL }, deps: { hasher: fakeHasher() } });
    await addUser(ctx, { email: 'victim@x.com' });
    for (const payload of [
      '{"email": ["victim@x.com", "attacker@y.com"]}',
      '{"email": ["victim@x.com"]}',
      '{"email": {"address": "victim@x.com", "cc": "attacker@y.com"}}',
      '{"email": "victim@x.com,attacker@y.com"}',
      '{"email": "victim@x.com attacker@y.com"}',
      '{"email": "victim@x.com", "cc": "attacker@y.com"}',
      '[{"email": "victim@x.com"}, {"email": "attacker@y.com"}]',
    ]) {
      const res = await forgot(payload);
      expect(res.statusCode, payload).toBe(400);
      expect(res.json().error).toBe('invalid_request');
    }
    // Duplicate keys: JSON.parse keeps the last one, which is one plain address and is treated as such.
    expect((await forgot('{"email": "victim@x.com", "email": "attacker@y.com"}')).statusCode).toBe(202);
    await ctx.outbox.drain();
    expect(ctx.mailer.sent).toEqual([]);
    expect(await ctx.db.selectFrom('mail_outbox').selectAll().execute()).toEqual([]);
  });

  it('GitHub dotless-i: MİKE@ and mıke@ do not match mike@example.com, so no mail goes anywhere; MIKE@ and a Kelvin-sign K do match', async () => {
    ctx = await makeTestApp({ env: { PUBLIC_URL, LIMIT_FORGOT_PER_ADDRESS_PER_HOUR: '0' }, deps: { hasher: fakeHasher() } });
    await addUser(ctx, { email: 'mike@example.com' });
    for (const email of ['MİKE@example.com', 'mıke@example.com', 'MİKE@EXAMPLE.COM', 'mİke@example.com', 'MIKE@example.com'.replace('I', 'ı')]) {
      const res = await forgot(JSON.stringify({ email }));
      expect(res.statusCode, email).toBe(202);
      expect(res.json()).toEqual(FORGOT_PASSWORD_ACCEPTED);
    }
    await ctx.outbox.drain();
    // Decision: lookup is NFKC + toLowerCase (no Turkish or full case folding), so the dotted
    // capital İ lowers to "i̇" (i + U+0307) and the dotless ı stays itself: neither is "mike".
    expect(ctx.mailer.sent).toEqual([]);

    // Plain case and compatibility forms do match, and the mail goes to the stored bytes.
    for (const email of ['MIKE@EXAMPLE.COM', 'MI\u212aE@example.com', 'ｍｉｋｅ@example.com']) expect((await forgot(JSON.stringify({ email }))).statusCode).toBe(202);
    await ctx.outbox.drain();
    expect(ctx.mailer.sent.map((m) => m.to)).toEqual(['mike@example.com', 'mike@example.com', 'mike@example.com']);
  });

  it('an account whose stored address has a dotless ı is not reached by the plain-i spelling, and keeps its own bytes', async () => {
    ctx = await makeTestApp({ env: { PUBLIC_URL, LIMIT_FORGOT_PER_ADDRESS_PER_HOUR: '0' }, deps: { hasher: fakeHasher() } });
    await addUser(ctx, { email: 'mıke@example.com' });
    for (const email of ['mike@example.com', 'MIKE@example.com']) await forgot(JSON.stringify({ email }));
    await ctx.outbox.drain();
    expect(ctx.mailer.sent).toEqual([]);
    await forgot(JSON.stringify({ email: 'MıKE@EXAMPLE.COM' }));
    await ctx.outbox.drain();
    expect(ctx.mailer.sent.map((m) => m.to)).toEqual(['mıke@example.com']);
  });
});

describe('path variants reach the same access rule', () => {
  it('no spelling of an admin or session route lets an anonymous caller through', async () => {
    const ctx = await makeTestApp({ env: { PUBLIC_URL }, deps: { hasher: fakeHasher() } });
    try {
      const user = await addUser(ctx, { email: 'jane@example.com' });
      for (const route of ROUTES) {
        const path = route.path.replace('{id}', user.id);
        const canonical = await ctx.app.inject({ method: route.method, url: path });
        if (canonical.statusCode !== 401) continue;
        for (const url of [`/${path}`, `${path}/`, `${path}?x=1`, path.replace('/api/', '/api//'), `${path}//`]) {
          const res = await ctx.app.inject({ method: route.method, url });
          // Refused, whichever check refuses first (a query the schema does not know is a 400 before access is decided).
          expect([400, 401, 404], `${route.method} ${url} answered ${res.statusCode} ${res.body}`).toContain(res.statusCode);
        }
      }
    } finally {
      await ctx.close();
    }
  });
});
