import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { loadConfig, type Config } from '../../src/config.js';
import { sql, type Kysely } from 'kysely';
import { createDb, dialectOf, migrateToLatest, pendingMigrations, type Db, type DialectName } from '../../src/db/index.js';
import { AccountError } from '../../src/accounts/errors.js';
import { seededRandom } from '../../src/random.js';
import { listAudit, recordAudit } from '../../src/audit/audit.js';
import type { PasswordHasher } from '../../src/accounts/passwords.js';
import { MAX_DEVICE_FAILURES } from '../../src/accounts/devices.js';
import { createMemoryRateLimiter } from '../../src/limits/rate-limiter.js';
import {
  MAX_CONSECUTIVE_LOGIN_FAILURES,
  signIn,
  createUser,
  editUser,
  removeUser,
  type AccountDeps,
  type NewUser,
} from '../../src/accounts/service.js';
import {
  createSession,
  deleteExpiredSessions,
  hashSessionToken,
  revokeSession,
  revokeUserSessions,
  validateSession,
  type SessionPolicy,
} from '../../src/accounts/sessions.js';
import {
  countEnabledAdmins,
  countUsers,
  deleteUser,
  findUserByEmail,
  findUserById,
  findUserByLogin,
  findUserByUsername,
  insertUser,
  recordLoginFailure,
  setPasswordHash,
  uniqueViolation,
  updateUser,
  type NewUserRow,
  type UserRow,
} from '../../src/accounts/users-repo.js';
import { deleteResetTokens, findLiveToken, hashResetToken, mintResetTokens } from '../../src/recovery/tokens.js';
import * as m0001 from '../../src/db/migrations/0001_initial.js';
import * as m0002 from '../../src/db/migrations/0002_recovery.js';
import * as m0003 from '../../src/db/migrations/0003_one_reset_token.js';
import { createPgTestDb, postgresSuite, type PostgresDescribe } from '../helpers/pg.js';

// The contract suite every storage dialect must pass (STYLE §8).

const describeOnPostgres = await postgresSuite();

interface Target {
  db: Db;
  config: Config;
  close(): Promise<void>;
}
type Open = () => Promise<Target>;

const openSqlite: Open = async () => {
  const db = createDb({ kind: 'sqlite', file: ':memory:' });
  return { db, config: loadConfig({}), close: () => db.destroy() };
};

const openPostgres: Open = async () => {
  const pg = await createPgTestDb();
  return { db: pg.db, config: loadConfig({ DATABASE_URL: pg.url }), close: pg.drop };
};

// Not argon2: these tests are about storage and rules, and a real hash costs ~50 ms each.
const plainHasher: PasswordHasher = {
  hash: async (password) => `plain:${password.normalize('NFKC')}`,
  verify: async (hash, password) => hash === `plain:${password.normalize('NFKC')}`,
};

// Has a millisecond part and is past 2^31 seconds' worth of ms, so a bigint parsed as a string shows up.
const T0 = Date.parse('2026-03-01T12:00:00.123Z');
const POLICY: SessionPolicy = { idleMinutes: 120, maxHours: 12 };
const META = { ip: '127.0.0.1', userAgent: 'vitest' };
const PASSWORD = 'correct horse battery staple';
const MINUTE = 60_000;

const dialects: Array<[DialectName, Open, PostgresDescribe]> = [
  ['sqlite', openSqlite, describe],
  ['postgres', openPostgres, describeOnPostgres],
];

describe.each(dialects)('on %s', (dialect, open, suite) => {
  suite('repositories and the account service', () => {
    let target: Target;
    let db: Db;
    let clock: FakeClock;
    let deps: AccountDeps;
    let seq = 0;

    beforeAll(async () => {
      target = await open();
      db = target.db;
      await migrateToLatest(db);
    });
    afterAll(async () => {
      await target?.close();
    });
    beforeEach(async () => {
      await db.deleteFrom('sessions').execute();
      await db.deleteFrom('audit_events').execute();
      await db.deleteFrom('settings').execute();
      await db.deleteFrom('users').execute();
      clock = new FakeClock(new Date(T0));
      deps = { db, clock, random: seededRandom(seq++), hasher: plainHasher, config: target.config };
    });

    const row = (fields: Partial<NewUserRow>): NewUserRow => ({
      id: `u-${++seq}`,
      email: null,
      username: null,
      name: 'Test User',
      role: 'user',
      passwordHash: null,
      mustChangePassword: false,
      nowMs: T0,
      ...fields,
    });

    const newUser = (fields: Partial<NewUser>): NewUser => ({
      email: null,
      username: null,
      name: 'Test User',
      role: 'user',
      password: PASSWORD,
      ...fields,
    });

    const errorOf = async (work: Promise<unknown>): Promise<unknown> => {
      try {
        await work;
      } catch (err) {
        return err;
      }
      throw new Error('expected a rejection');
    };

    it('runs on the dialect it claims to', () => {
      expect(dialectOf(db)).toBe(dialect);
    });

    describe('migrations', () => {
      it('lists 0001_initial first among the pending migrations of a fresh database, and nothing after migrateToLatest', async () => {
        const fresh = await open();
        try {
          // Later migrations join the list as features land; the first is always there, first.
          const pending = await pendingMigrations(fresh.db);
          expect(pending[0]).toBe('0001_initial');
          expect(await migrateToLatest(fresh.db)).toEqual(pending);
          expect(await pendingMigrations(fresh.db)).toEqual([]);
          expect(await migrateToLatest(fresh.db)).toEqual([]);
        } finally {
          await fresh.close();
        }
      });

      it('keeps only the newest reset token of each account when 0003 makes user_id unique', async () => {
        const fresh = await open();
        const older = fresh.db as unknown as Kysely<unknown>;
        try {
          await m0001.up(older);
          await m0002.up(older);
          // The users table as 0001 made it, not as the app's types describe it today.
          for (const id of ['ann', 'ben']) {
            await sql`insert into users (id, username, username_normalized, name, role, password_changed_at, created_at, updated_at) values (${id}, ${id}, ${id}, ${id}, 'user', ${T0}, ${T0}, ${T0})`.execute(older);
          }
          const token = (hash: string, userId: string, createdAt: number) => ({
            token_hash: hash, user_id: userId, delivery_id: null, purpose: 'reset' as const, created_at: createdAt, expires_at: createdAt + 60 * MINUTE, bound_password_changed_at: T0, bound_email: null,
          });
          // Left behind by two mints that raced before 0003: ann has three rows, two minted in the same ms.
          await fresh.db.insertInto('reset_tokens').values([token('a1', 'ann', T0), token('a3', 'ann', T0 + 5), token('a2', 'ann', T0 + 5), token('b1', 'ben', T0)]).execute();
          await m0003.up(older);
          const left = await fresh.db.selectFrom('reset_tokens').select(['user_id', 'token_hash']).orderBy('user_id').execute();
          expect(left).toEqual([{ user_id: 'ann', token_hash: 'a3' }, { user_id: 'ben', token_hash: 'b1' }]);
          await expect(fresh.db.insertInto('reset_tokens').values(token('a4', 'ann', T0 + 9)).execute()).rejects.toThrow(/unique/i);
        } finally {
          await fresh.close();
        }
      });
    });

    describe('users repository', () => {
      it('finds a user by email ignoring case and NFKC differences such as fullwidth letters', async () => {
        await insertUser(db, row({ id: 'jane', email: 'Jane.Doe@Example.com' }));
        for (const lookup of ['jane.doe@example.com', 'JANE.DOE@EXAMPLE.COM', 'ｊａｎｅ.ｄｏｅ@ｅｘａｍｐｌｅ.ｃｏｍ', ' jane.doe@example.com ']) {
          const found = await findUserByEmail(db, lookup);
          expect(found?.id, lookup).toBe('jane');
        }
        const found = await findUserByEmail(db, 'jane.doe@example.com');
        expect(found?.email).toBe('Jane.Doe@Example.com');
        expect(found?.email_normalized).toBe('jane.doe@example.com');
        expect(await findUserByEmail(db, 'jane.doe@example.org')).toBeUndefined();
      });

      it('finds a user by username ignoring case', async () => {
        await insertUser(db, row({ id: 'bob', username: 'Bob.Smith' }));
        expect((await findUserByUsername(db, 'bob.smith'))?.id).toBe('bob');
        expect((await findUserByUsername(db, 'BOB.SMITH'))?.username).toBe('Bob.Smith');
        expect(await findUserByUsername(db, 'bob')).toBeUndefined();
      });

      it('finds by login: an email when it holds "@", else a username', async () => {
        await insertUser(db, row({ id: 'jane', email: 'jane@example.com', username: 'jane' }));
        // A username that looks like an email's local part must not match an email login, and vice versa.
        await insertUser(db, row({ id: 'other', email: 'x@example.com', username: 'jane.example.com' }));
        expect((await findUserByLogin(db, 'JANE@example.com'))?.id).toBe('jane');
        expect((await findUserByLogin(db, 'Jane'))?.id).toBe('jane');
        expect((await findUserByLogin(db, 'jane.example.com'))?.id).toBe('other');
        expect(await findUserByLogin(db, 'nobody@example.com')).toBeUndefined();
      });

      it('reports a duplicate email, differing only in case or width, as an email unique violation', async () => {
        await insertUser(db, row({ email: 'jane@example.com' }));
        for (const email of ['JANE@example.com', 'ｊａｎｅ@example.com']) {
          const err = await errorOf(insertUser(db, row({ email })));
          expect(uniqueViolation(err)).toBe('email');
        }
        expect(await countUsers(db)).toBe(1);
      });

      it('reports a duplicate username as a username unique violation', async () => {
        await insertUser(db, row({ username: 'bob' }));
        const err = await errorOf(insertUser(db, row({ username: 'BOB' })));
        expect(uniqueViolation(err)).toBe('username');
      });

      it('does not take other constraint failures for unique violations', async () => {
        // Neither email nor username: the check constraint, not a unique index.
        const err = await errorOf(insertUser(db, row({})));
        expect(uniqueViolation(err)).toBeUndefined();
        expect(uniqueViolation(new Error('boom'))).toBeUndefined();
      });

      it('counts enabled system admins only, optionally excluding one', async () => {
        await insertUser(db, row({ id: 'a1', username: 'a1', role: 'system-admin' }));
        await insertUser(db, row({ id: 'a2', username: 'a2', role: 'system-admin' }));
        await insertUser(db, row({ id: 'a3', username: 'a3', role: 'system-admin' }));
        await insertUser(db, row({ id: 'u1', username: 'u1', role: 'user' }));
        await updateUser(db, 'a3', { disabled: true }, T0);
        expect(await countEnabledAdmins(db)).toBe(2);
        expect(await countEnabledAdmins(db, { excludingId: 'a1' })).toBe(1);
        expect(await countEnabledAdmins(db, { excludingId: 'u1' })).toBe(2);
      });

      it('updates the normalized email with the email, so lookups follow the change', async () => {
        await insertUser(db, row({ id: 'jane', email: 'old@example.com', username: 'jane' }));
        const updated = await updateUser(db, 'jane', { email: 'New.Address@Example.com', name: 'Jane' }, T0 + 5);
        expect(updated).toMatchObject({ email: 'New.Address@Example.com', email_normalized: 'new.address@example.com', name: 'Jane', updated_at: T0 + 5 });
        expect((await findUserByEmail(db, 'NEW.ADDRESS@example.com'))?.id).toBe('jane');
        expect(await findUserByEmail(db, 'old@example.com')).toBeUndefined();
        const cleared = await updateUser(db, 'jane', { email: null }, T0 + 6);
        expect(cleared).toMatchObject({ email: null, email_normalized: null });
      });

      it('updates role and disabled without touching other fields', async () => {
        await insertUser(db, row({ id: 'x', email: 'x@example.com', name: 'Keep' }));
        const updated = await updateUser(db, 'x', { role: 'system-admin', disabled: true }, T0 + 1);
        expect(updated).toMatchObject({ role: 'system-admin', disabled: 1, name: 'Keep', email: 'x@example.com' });
        expect(await updateUser(db, 'missing', { name: 'n' }, T0)).toBeUndefined();
      });

      it('counts login failures one by one and setPasswordHash resets them', async () => {
        await insertUser(db, row({ id: 'bob', username: 'bob', passwordHash: 'old' }));
        for (let i = 0; i < 3; i++) expect(await recordLoginFailure(db, 'bob', { lockAfter: 3, nowMs: T0 })).toBe(i === 2);
        expect((await findUserById(db, 'bob'))?.locked_at).toBe(T0);
        expect((await findUserById(db, 'bob'))?.failed_login_count).toBe(3);
        await setPasswordHash(db, 'bob', 'new-hash', T0 + 1000, { mustChange: true });
        expect(await findUserById(db, 'bob')).toMatchObject({
          password_hash: 'new-hash',
          failed_login_count: 0,
          password_changed_at: T0 + 1000,
          updated_at: T0 + 1000,
          must_change_password: 1,
          locked_at: null,
        });
        await setPasswordHash(db, 'bob', 'newer', T0 + 2000, { mustChange: false });
        expect((await findUserById(db, 'bob'))?.must_change_password).toBe(0);
      });

      it('deletes a user together with their sessions', async () => {
        await insertUser(db, row({ id: 'gone', username: 'gone' }));
        await insertUser(db, row({ id: 'stays', username: 'stays' }));
        await createSession({ db, clock, random: deps.random }, 'gone', POLICY, META);
        await createSession({ db, clock, random: deps.random }, 'gone', POLICY, META);
        await createSession({ db, clock, random: deps.random }, 'stays', POLICY, META);
        expect(await deleteUser(db, 'gone')).toBe(true);
        expect(await findUserById(db, 'gone')).toBeUndefined();
        const left = await db.selectFrom('sessions').select('user_id').execute();
        expect(left).toEqual([{ user_id: 'stays' }]);
        expect(await deleteUser(db, 'gone')).toBe(false);
      });

      it('returns millisecond timestamps and counts as JS numbers', async () => {
        await insertUser(db, row({ id: 'ts', username: 'ts', nowMs: T0 }));
        await createSession({ db, clock, random: deps.random }, 'ts', POLICY, META);
        await recordAudit(db, clock, { type: 'login_succeeded', outcome: 'success' });
        const user = await db.selectFrom('users').select(['created_at', 'updated_at', 'password_changed_at', 'failed_login_count']).executeTakeFirstOrThrow();
        expect(user).toStrictEqual({ created_at: T0, updated_at: T0, password_changed_at: T0, failed_login_count: 0 });
        const session = await db.selectFrom('sessions').select(['created_at', 'expires_at', 'idle_expires_at', 'last_seen_at']).executeTakeFirstOrThrow();
        expect(session).toStrictEqual({
          created_at: T0,
          last_seen_at: T0,
          expires_at: T0 + 12 * 60 * MINUTE,
          idle_expires_at: T0 + 120 * MINUTE,
        });
        const event = await db.selectFrom('audit_events').select(['id', 'at']).executeTakeFirstOrThrow();
        expect(typeof event.id).toBe('number');
        expect(event.at).toStrictEqual(T0);
        expect(await countUsers(db)).toStrictEqual(1);
        expect(await countEnabledAdmins(db)).toStrictEqual(0);
      });
    });

    describe('sessions', () => {
      const sessionDeps = (): { db: Db; clock: FakeClock; random: AccountDeps['random'] } => ({ db, clock, random: deps.random });

      beforeEach(async () => {
        await insertUser(db, row({ id: 'bob', username: 'bob' }));
        await insertUser(db, row({ id: 'eve', username: 'eve' }));
      });

      it('validates a new session and returns its user and absolute expiry', async () => {
        const { token, expiresAt } = await createSession(sessionDeps(), 'bob', POLICY, META);
        expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
        expect(expiresAt.getTime()).toBe(T0 + 12 * 60 * MINUTE);
        const valid = await validateSession(sessionDeps(), token, POLICY);
        expect(valid?.user.id).toBe('bob');
        expect(valid?.tokenHash).toBe(hashSessionToken(token));
        expect(valid?.expiresAt.getTime()).toBe(T0 + 12 * 60 * MINUTE);
        expect(valid?.user).not.toHaveProperty('s_expires_at');
      });

      it('refuses unknown, empty and over-long tokens', async () => {
        await createSession(sessionDeps(), 'bob', POLICY, META);
        expect(await validateSession(sessionDeps(), 'A'.repeat(43), POLICY)).toBeNull();
        expect(await validateSession(sessionDeps(), '', POLICY)).toBeNull();
        expect(await validateSession(sessionDeps(), 'A'.repeat(101), POLICY)).toBeNull();
      });

      it('is valid 1 ms before the idle expiry and refused exactly at it', async () => {
        const before = await createSession(sessionDeps(), 'bob', POLICY, META);
        const at = await createSession(sessionDeps(), 'bob', POLICY, META);
        clock.set(new Date(T0 + POLICY.idleMinutes * MINUTE - 1));
        expect(await validateSession(sessionDeps(), before.token, POLICY)).not.toBeNull();
        clock.set(new Date(T0 + POLICY.idleMinutes * MINUTE));
        expect(await validateSession(sessionDeps(), at.token, POLICY)).toBeNull();
        // A refused session is gone for good.
        expect(await db.selectFrom('sessions').select('token_hash').where('token_hash', '=', hashSessionToken(at.token)).execute()).toEqual([]);
      });

      it('moves the idle expiry forward with use', async () => {
        const { token } = await createSession(sessionDeps(), 'bob', POLICY, META);
        clock.set(new Date(T0 + 100 * MINUTE));
        expect(await validateSession(sessionDeps(), token, POLICY)).not.toBeNull();
        clock.set(new Date(T0 + 100 * MINUTE + POLICY.idleMinutes * MINUTE - 1));
        expect(await validateSession(sessionDeps(), token, POLICY)).not.toBeNull();
      });

      it('is valid 1 ms before the absolute expiry and refused exactly at it, however active', async () => {
        const { token } = await createSession(sessionDeps(), 'bob', POLICY, META);
        const maxMs = POLICY.maxHours * 60 * MINUTE;
        for (let t = 100 * MINUTE; t < maxMs; t += 100 * MINUTE) {
          clock.set(new Date(T0 + t));
          expect(await validateSession(sessionDeps(), token, POLICY), `at +${t / MINUTE} min`).not.toBeNull();
        }
        clock.set(new Date(T0 + maxMs - 1));
        expect(await validateSession(sessionDeps(), token, POLICY)).not.toBeNull();
        clock.set(new Date(T0 + maxMs));
        expect(await validateSession(sessionDeps(), token, POLICY)).toBeNull();
      });

      it("refuses a disabled user's session", async () => {
        const { token } = await createSession(sessionDeps(), 'bob', POLICY, META);
        await updateUser(db, 'bob', { disabled: true }, T0);
        expect(await validateSession(sessionDeps(), token, POLICY)).toBeNull();
      });

      it('revokes one session by its token and leaves the others', async () => {
        const a = await createSession(sessionDeps(), 'bob', POLICY, META);
        const b = await createSession(sessionDeps(), 'bob', POLICY, META);
        await revokeSession(db, a.token);
        expect(await validateSession(sessionDeps(), a.token, POLICY)).toBeNull();
        expect(await validateSession(sessionDeps(), b.token, POLICY)).not.toBeNull();
      });

      it("revokes every session of a user except the one named, and no one else's", async () => {
        const keep = await createSession(sessionDeps(), 'bob', POLICY, META);
        const drop1 = await createSession(sessionDeps(), 'bob', POLICY, META);
        const drop2 = await createSession(sessionDeps(), 'bob', POLICY, META);
        const eve = await createSession(sessionDeps(), 'eve', POLICY, META);
        await revokeUserSessions(db, 'bob', { exceptTokenHash: hashSessionToken(keep.token) });
        expect(await validateSession(sessionDeps(), keep.token, POLICY)).not.toBeNull();
        expect(await validateSession(sessionDeps(), drop1.token, POLICY)).toBeNull();
        expect(await validateSession(sessionDeps(), drop2.token, POLICY)).toBeNull();
        expect(await validateSession(sessionDeps(), eve.token, POLICY)).not.toBeNull();
        await revokeUserSessions(db, 'bob');
        expect(await validateSession(sessionDeps(), keep.token, POLICY)).toBeNull();
        expect(await validateSession(sessionDeps(), eve.token, POLICY)).not.toBeNull();
      });

      it('deletes expired sessions: kept 1 ms before the idle expiry, deleted at it', async () => {
        await createSession(sessionDeps(), 'bob', POLICY, META);
        await deleteExpiredSessions(db, T0 + POLICY.idleMinutes * MINUTE - 1);
        expect(await db.selectFrom('sessions').select('user_id').execute()).toHaveLength(1);
        await deleteExpiredSessions(db, T0 + POLICY.idleMinutes * MINUTE);
        expect(await db.selectFrom('sessions').select('user_id').execute()).toHaveLength(0);
      });
    });

    describe('reset tokens', () => {
      const mint = async (user: UserRow, deliveryId: string): Promise<string> =>
        (await mintResetTokens(db, deps.random, [{ user, deliveryId, purpose: 'reset', nowMs: T0, expiresAtMs: T0 + 60 * MINUTE }]))[0]!;
      const rowsOf = (userId: string) => db.selectFrom('reset_tokens').select(['token_hash', 'delivery_id']).where('user_id', '=', userId).execute();

      it('keeps one row per account: a second mint replaces the first, whose link dies', async () => {
        const user = await insertUser(db, row({ email: 'jane@example.com' }));
        const first = await mint(user, 'd1');
        const second = await mint(user, 'd2');
        expect(await rowsOf(user.id)).toEqual([{ token_hash: hashResetToken(second), delivery_id: 'd2' }]);
        expect(await findLiveToken(db, first, T0)).toBeNull();
        expect((await findLiveToken(db, second, T0))?.user.id).toBe(user.id);
      });

      it('keeps one row, and one working link, when ten mints for one account run at once', async () => {
        const user = await insertUser(db, row({ email: 'jane@example.com' }));
        const other = await insertUser(db, row({ email: 'other@example.com' }));
        const otherToken = await mint(other, 'o1');
        const tokens = await Promise.all(Array.from({ length: 10 }, (_, i) => mint(user, `d${i}`)));
        const rows = await rowsOf(user.id);
        expect(rows).toHaveLength(1);
        const live = (await Promise.all(tokens.map((t) => findLiveToken(db, t, T0)))).filter((t) => t !== null);
        expect(live.map((t) => t.tokenHash)).toEqual([rows[0]!.token_hash]);
        // Another account's link is untouched.
        expect((await findLiveToken(db, otherToken, T0))?.user.id).toBe(other.id);
      });

      it('refuses a second row for an account in the schema itself', async () => {
        const user = await insertUser(db, row({ email: 'jane@example.com' }));
        await mint(user, 'd1');
        const second = db
          .insertInto('reset_tokens')
          .values({ token_hash: 'x'.repeat(64), user_id: user.id, delivery_id: 'd2', purpose: 'reset', created_at: T0, expires_at: T0 + MINUTE, bound_password_changed_at: T0, bound_email: null })
          .execute();
        await expect(second).rejects.toThrow(/unique/i);
      });

      it("deletes a failed delivery's token only while the account's row is still that delivery's", async () => {
        const user = await insertUser(db, row({ email: 'jane@example.com' }));
        const older = await mint(user, 'd1');
        const newer = await mint(user, 'd2');
        // d1's send failed after d2 minted: d2's link must survive.
        await deleteResetTokens(db, [older]);
        expect(await rowsOf(user.id)).toEqual([{ token_hash: hashResetToken(newer), delivery_id: 'd2' }]);
        // A stale attempt of d2 (its lease ran out, another worker minted again) fails: the fresh link survives.
        const fresh = await mint(user, 'd2');
        await deleteResetTokens(db, [newer]);
        expect(await rowsOf(user.id)).toEqual([{ token_hash: hashResetToken(fresh), delivery_id: 'd2' }]);
        await deleteResetTokens(db, [fresh]);
        expect(await rowsOf(user.id)).toEqual([]);
      });
    });

    describe('audit events', () => {
      it('records an event and lists it with its fields', async () => {
        await recordAudit(db, clock, {
          type: 'user_updated',
          actor: { id: 'a1', label: 'admin' },
          target: { id: 'u1', label: 'ja***@example.com' },
          ip: '10.0.0.7',
          outcome: 'failure',
          detail: { field: 'role', n: 2 },
        });
        const [event] = await listAudit(db, { limit: 10 });
        expect(event).toEqual({
          id: expect.any(Number),
          at: new Date(T0).toISOString(),
          type: 'user_updated',
          actor: { id: 'a1', label: 'admin' },
          target: { id: 'u1', label: 'ja***@example.com' },
          ip: '10.0.0.7',
          outcome: 'failure',
          detail: { field: 'role', n: 2 },
        });
      });

      it('lists newest first and pages backwards with before', async () => {
        for (let i = 0; i < 5; i++) {
          await recordAudit(db, clock, { type: 'login_failed', outcome: 'failure', detail: { i } });
          clock.advanceSeconds(1);
        }
        const first = await listAudit(db, { limit: 2 });
        expect(first.map((e) => e.detail)).toEqual([{ i: 4 }, { i: 3 }]);
        expect(first[0]!.id).toBeGreaterThan(first[1]!.id);
        const second = await listAudit(db, { limit: 2, before: first[1]!.id });
        expect(second.map((e) => e.detail)).toEqual([{ i: 2 }, { i: 1 }]);
        const last = await listAudit(db, { limit: 2, before: second[1]!.id });
        expect(last.map((e) => e.detail)).toEqual([{ i: 0 }]);
        expect(last[0]).toMatchObject({ actor: null, target: null, ip: null, at: new Date(T0).toISOString() });
        expect(await listAudit(db, { limit: 2, before: last[0]!.id })).toEqual([]);
      });
    });

    describe('account service', () => {
      const admin = async (username: string): Promise<string> => (await createUser(deps, newUser({ username, role: 'system-admin' }))).id;

      it('refuses an email already taken, in any case, with 409 email_taken', async () => {
        await createUser(deps, newUser({ email: 'jane@example.com' }));
        const err = await errorOf(createUser(deps, newUser({ email: 'JANE@Example.com', username: 'jane2' })));
        expect(err).toBeInstanceOf(AccountError);
        expect(err).toMatchObject({ code: 'email_taken' });
        expect(await countUsers(db)).toBe(1);
      });

      it('refuses a username already taken with 409 username_taken', async () => {
        await createUser(deps, newUser({ username: 'bob' }));
        const err = await errorOf(createUser(deps, newUser({ username: 'Bob', email: 'bob@example.com' })));
        expect(err).toBeInstanceOf(AccountError);
        expect(err).toMatchObject({ code: 'username_taken' });
      });

      it('refuses an edit to an email another user has with 409 email_taken', async () => {
        await createUser(deps, newUser({ email: 'jane@example.com' }));
        const bob = await createUser(deps, newUser({ email: 'bob@example.com' }));
        const err = await errorOf(editUser(deps, bob.id, { email: 'Jane@example.com' }));
        expect(err).toMatchObject({ code: 'email_taken' });
        expect((await findUserById(db, bob.id))?.email).toBe('bob@example.com');
      });

      it('refuses to demote, disable or remove the last enabled system admin with 409 last_admin', async () => {
        const only = await admin('root');
        // A disabled admin does not count as a remaining admin.
        const off = await admin('off');
        await editUser(deps, off, { disabled: true });
        for (const attempt of [() => editUser(deps, only, { role: 'user' }), () => editUser(deps, only, { disabled: true }), () => removeUser(deps, only)]) {
          const err = await errorOf(attempt());
          expect(err).toBeInstanceOf(AccountError);
          expect(err).toMatchObject({ code: 'last_admin' });
        }
        expect(await findUserById(db, only)).toMatchObject({ role: 'system-admin', disabled: 0 });
        expect(await countEnabledAdmins(db)).toBe(1);
      });

      it('lets an admin be demoted or removed while another enabled admin remains', async () => {
        const a = await admin('a');
        const b = await admin('b');
        const c = await admin('c');
        expect((await editUser(deps, a, { role: 'user' })).role).toBe('user');
        expect((await removeUser(deps, b)).id).toBe(b);
        expect(await countEnabledAdmins(db)).toBe(1);
        expect((await editUser(deps, c, { name: 'Still admin' })).name).toBe('Still admin');
      });

      it('lets a disabled admin be removed while one enabled admin remains', async () => {
        await admin('root');
        const off = await admin('off');
        await editUser(deps, off, { disabled: true });
        await removeUser(deps, off);
        expect(await findUserById(db, off)).toBeUndefined();
      });

      it('answers 404 not_found when editing or removing a missing user', async () => {
        await expect(editUser(deps, 'missing', { name: 'x' })).rejects.toMatchObject({ code: 'not_found' });
        await expect(removeUser(deps, 'missing')).rejects.toMatchObject({ code: 'not_found' });
      });

      it('lets exactly one of two concurrent demotions of the only two admins succeed', async () => {
        for (let round = 0; round < 5; round++) {
          await db.deleteFrom('users').execute();
          const a = await admin('a');
          const b = await admin('b');
          const results = await Promise.allSettled([editUser(deps, a, { role: 'user' }), editUser(deps, b, { role: 'user' })]);
          expect(results.filter((r) => r.status === 'fulfilled'), `round ${round}`).toHaveLength(1);
          const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
          expect(rejected?.reason).toMatchObject({ code: 'last_admin' });
          expect(await countEnabledAdmins(db)).toBe(1);
        }
      });

      it('lets exactly one of two concurrent removals or disablings of the only two admins succeed', async () => {
        for (let round = 0; round < 5; round++) {
          await db.deleteFrom('users').execute();
          const a = await admin('a');
          const b = await admin('b');
          const results = await Promise.allSettled([removeUser(deps, a), editUser(deps, b, { disabled: true })]);
          expect(results.filter((r) => r.status === 'fulfilled'), `round ${round}`).toHaveLength(1);
          expect(await countEnabledAdmins(db)).toBe(1);
        }
      });

      // The signed-in account, or the outcome that refused it; the device cookie comes back in `device`.
      let device: string | undefined;
      const authenticate = async (d: AccountDeps, login: string, password: string, deviceToken?: string) => {
        const r = await signIn({ ...d, limiter: createMemoryRateLimiter(clock) }, { login, password, deviceToken, session: { policy: { idleMinutes: 60, maxHours: 1 }, meta: { ip: null, userAgent: null } } });
        if (r.outcome !== 'signed_in') return r.outcome === 'invalid_credentials' ? null : r.outcome;
        device = r.device.token;
        return r.user;
      };

      it('authenticates the right password by email or username and clears earlier failures', async () => {
        const user = await createUser(deps, newUser({ email: 'jane@example.com', username: 'jane' }));
        await recordLoginFailure(db, user.id, { lockAfter: MAX_CONSECUTIVE_LOGIN_FAILURES, nowMs: T0 });
        const byEmail = await authenticate(deps, 'JANE@example.com', PASSWORD);
        expect(byEmail).toMatchObject({ id: user.id });
        expect(await authenticate(deps, 'jane', PASSWORD)).toMatchObject({ id: user.id });
        expect((await findUserById(db, user.id))?.failed_login_count).toBe(0);
      });

      it('returns null for an unknown login', async () => {
        await createUser(deps, newUser({ username: 'jane' }));
        expect(await authenticate(deps, 'nobody', PASSWORD)).toBeNull();
        expect(await authenticate(deps, 'nobody@example.com', PASSWORD)).toBeNull();
      });

      it('returns null for a wrong password and counts the failure', async () => {
        const user = await createUser(deps, newUser({ username: 'jane' }));
        expect(await authenticate(deps, 'jane', 'wrong horse battery staple')).toBeNull();
        expect((await findUserById(db, user.id))?.failed_login_count).toBe(1);
      });

      it('returns null for a disabled account even with the right password', async () => {
        const user = await createUser(deps, newUser({ username: 'jane' }));
        await updateUser(db, user.id, { disabled: true }, T0);
        expect(await authenticate(deps, 'jane', PASSWORD)).toBeNull();
      });

      it('returns null for an account without a password', async () => {
        await createUser(deps, newUser({ username: 'jane', password: null }));
        expect(await authenticate(deps, 'jane', '')).toBeNull();
        expect(await authenticate(deps, 'jane', PASSWORD)).toBeNull();
      });

      it('signs in after 99 consecutive failures but not after 100, until the password is reset', async () => {
        const almost = await createUser(deps, newUser({ username: 'almost' }));
        const locked = await createUser(deps, newUser({ username: 'locked' }));
        await db.updateTable('users').set({ failed_login_count: MAX_CONSECUTIVE_LOGIN_FAILURES - 2 }).execute();
        await authenticate(deps, 'almost', 'wrong');
        await authenticate(deps, 'locked', 'wrong');
        await authenticate(deps, 'locked', 'wrong');
        expect((await findUserById(db, almost.id))?.failed_login_count).toBe(99);
        expect((await findUserById(db, locked.id))?.failed_login_count).toBe(100);
        expect(await authenticate(deps, 'almost', PASSWORD)).toMatchObject({ id: almost.id });
        expect(await authenticate(deps, 'locked', PASSWORD)).toBe('locked');
        await setPasswordHash(db, locked.id, await plainHasher.hash('a brand new passphrase'), T0, { mustChange: false });
        expect(await authenticate(deps, 'locked', 'a brand new passphrase')).toMatchObject({ id: locked.id });
      });

      it("lets the owner's trusted browser sign in to a locked account, and only that account", async () => {
        const jane = await createUser(deps, newUser({ email: 'jane@example.com', username: 'jane' }));
        await createUser(deps, newUser({ username: 'bob' }));
        await authenticate(deps, 'jane', PASSWORD);
        const janes = device!;
        await db.updateTable('users').set({ failed_login_count: MAX_CONSECUTIVE_LOGIN_FAILURES, locked_at: T0 }).execute();
        expect(await authenticate(deps, 'jane', PASSWORD)).toBe('locked');
        expect(await authenticate(deps, 'jane', PASSWORD, janes)).toMatchObject({ id: jane.id });
        // By either spelling of the login; never for another account.
        expect(await authenticate(deps, 'Jane@Example.com', PASSWORD, janes)).toMatchObject({ id: jane.id });
        expect(await authenticate(deps, 'bob', PASSWORD, janes)).toBe('locked');
        // The trusted success leaves the strangers' lock in place.
        expect((await findUserById(db, jane.id))?.locked_at).toBe(T0);
      });

      it('counts a trusted browser\'s wrong passwords against it alone, and stops trusting it at the limit', async () => {
        const jane = await createUser(deps, newUser({ username: 'jane' }));
        await authenticate(deps, 'jane', PASSWORD);
        const janes = device!;
        for (let i = 0; i < MAX_DEVICE_FAILURES - 1; i++) expect(await authenticate(deps, 'jane', 'wrong', janes)).toBeNull();
        expect((await findUserById(db, jane.id))?.failed_login_count).toBe(0);
        await db.updateTable('users').set({ locked_at: T0 }).execute();
        expect(await authenticate(deps, 'jane', PASSWORD, janes)).toMatchObject({ id: jane.id });
        for (let i = 0; i < MAX_DEVICE_FAILURES; i++) await authenticate(deps, 'jane', 'wrong', janes);
        expect(await authenticate(deps, 'jane', PASSWORD, janes)).toBe('locked');
      });
    });
  });
});
