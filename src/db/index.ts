import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type SQLite from 'better-sqlite3';
import type pg from 'pg';
import { CompiledQuery, type DatabaseConnection, type Driver, Kysely, type Migration, type MigrationProvider, Migrator, PostgresAdapter, PostgresDialect, SqliteDialect, sql } from 'kysely';
import type { Config } from '../config.js';
import type { Database } from './schema.js';
import * as m0001 from './migrations/0001_initial.js';
import * as m0002 from './migrations/0002_recovery.js';
import * as m0003 from './migrations/0003_one_reset_token.js';
import * as m0004 from './migrations/0004_sign_in_locks.js';
import * as m0005 from './migrations/0005_mail_transport.js';
import * as m0006 from './migrations/0006_delivery_target.js';
import * as m0007 from './migrations/0007_session_details.js';

export type { Database } from './schema.js';
export type Db = Kysely<Database>;
export type DialectName = 'sqlite' | 'postgres';

// Listed here rather than read from a folder, so the built app and the tests see the same set.
const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_recovery': m0002,
  '0003_one_reset_token': m0003,
  '0004_sign_in_locks': m0004,
  '0005_mail_transport': m0005,
  '0006_delivery_target': m0006,
  '0007_session_details': m0007,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

// Each driver is loaded only by the processes (and threads) that use its database: a SQLite
// dashboard never holds pg's code in memory, nor a PostgreSQL one better-sqlite3's.
const require = createRequire(import.meta.url);

export function createDb(database: Config['database']): Db {
  if (database.kind === 'postgres') {
    const pg = require('pg') as typeof import('pg');
    const pool = new pg.Pool({
      connectionString: database.url,
      max: database.poolSize ?? 10,
      // A connect that hangs (a database failing over) fails the request after 5 s rather than holding it.
      connectionTimeoutMillis: 5_000,
      // Millisecond timestamps are bigint columns; they fit in a double for the next 285,000 years.
      types: { getTypeParser: (oid: number, format?: 'text' | 'binary') => (oid === 20 ? Number : pg.types.getTypeParser(oid, format as 'text')) } as pg.CustomTypesConfig,
    });
    // An idle client's error (e.g. the server restarted) must not crash the process.
    pool.on('error', () => {});
    // A client checked out between two statements has no listener of the pool's: PostgreSQL's
    // FATAL on shutdown (57P01) arriving then would be an uncaught 'error' and end the process.
    // The query under way fails instead, and the pool drops the broken client when it comes back.
    pool.on('connect', (client) => client.on('error', () => {}));
    return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  }
  if (database.file !== ':memory:') fs.mkdirSync(path.dirname(database.file), { recursive: true, mode: 0o700 });
  const SQLiteDatabase = require('better-sqlite3') as typeof SQLite;
  const sqlite = new SQLiteDatabase(database.file);
  // Password hashes live here: owner-only, like the secret store (SQLite gives its -wal/-shm files the same mode).
  if (database.file !== ':memory:') fs.chmodSync(database.file, 0o600);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('synchronous = NORMAL');
  // A multi-row INSERT keeps its statement journal in memory, not in a temporary file made and deleted each time.
  sqlite.pragma('temp_store = MEMORY');
  // Waiting for another connection's write lock (the delivery thread, the CLI) is done by the
  // driver below, without blocking the thread: SQLite's own wait sleeps inside the call.
  sqlite.pragma('busy_timeout = 0');
  return new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: withStatementCache(sqlite) }) });
}

/** How long a statement waits for another connection's write lock before failing with SQLITE_BUSY. */
const SQLITE_BUSY_WAIT_MS = 5_000;

/**
 * Transactions begin IMMEDIATE: they take the write lock first. A plain BEGIN reads first and
 * upgrades at its first write; when another connection (the delivery thread, the CLI) committed
 * meanwhile, SQLite refuses the upgrade at once with SQLITE_BUSY, without waiting (the snapshot is
 * stale), and the request failed with a 500. Every transaction of ours writes.
 *
 * A statement that finds the database locked by another connection is tried again after a short
 * pause, up to SQLITE_BUSY_WAIT_MS. With SQLite's busy_timeout the thread slept inside the call,
 * and while the delivery thread wrote every request of the server stood still (under a
 * forgot-password flood: event-loop delay p99.9 28–37 ms, request p99 61–72 ms; 17–23 and 31–48
 * this way). Now the thread answers other requests meanwhile, and those asking to write join the
 * next group commit. A refused statement
 * did nothing, so running it again is safe; inside a transaction only `begin immediate` can be
 * refused (the lock is then ours until commit).
 */
class ImmediateSqliteDialect extends SqliteDialect {
  override createDriver(): Driver {
    const driver = super.createDriver();
    driver.beginTransaction = async (connection) => {
      await connection.executeQuery(CompiledQuery.raw('begin immediate'));
    };
    const acquire = driver.acquireConnection.bind(driver);
    const waiting = new WeakSet<DatabaseConnection>();
    driver.acquireConnection = async () => {
      const connection = await acquire();
      if (!waiting.has(connection)) {
        const execute = connection.executeQuery.bind(connection);
        connection.executeQuery = (query) => whileLocked(() => execute(query));
        waiting.add(connection);
      }
      return connection;
    };
    return driver;
  }
}

async function whileLocked<T>(run: () => Promise<T>): Promise<T> {
  const deadline = performance.now() + SQLITE_BUSY_WAIT_MS;
  let pauseMs = 1;
  for (;;) {
    try {
      return await run();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code !== 'string' || !code.startsWith('SQLITE_BUSY') || performance.now() >= deadline) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, pauseMs));
    pauseMs = Math.min(pauseMs * 2, 16);
  }
}

/**
 * Kysely prepares every query anew; the app runs a few dozen distinct statements, so each is
 * prepared once and reused (a statement is run synchronously, never two at once).
 */
function withStatementCache(sqlite: SQLite.Database): SQLite.Database {
  const cache = new Map<string, SQLite.Statement>();
  const prepare = sqlite.prepare.bind(sqlite);
  sqlite.prepare = ((source: string) => {
    let statement = cache.get(source);
    if (statement === undefined) {
      statement = prepare(source);
      // Bounded: ad-hoc SQL (a long IN list, say) must not grow the cache without end.
      if (cache.size >= 500) cache.clear();
      cache.set(source, statement);
    }
    return statement;
  }) as typeof sqlite.prepare;
  return sqlite;
}

export function dialectOf(db: Db): DialectName {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}

export async function migrateToLatest(db: Db): Promise<string[]> {
  const { error, results } = await new Migrator({ db, provider }).migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

export async function pendingMigrations(db: Db): Promise<string[]> {
  const all = await new Migrator({ db, provider }).getMigrations();
  return all.filter((m) => m.executedAt === undefined).map((m) => m.name);
}

export async function pingDb(db: Db): Promise<void> {
  await sql`select 1`.execute(db);
}
