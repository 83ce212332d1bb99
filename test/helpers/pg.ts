import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { describe } from 'vitest';
import { createDb, type Db } from '../../src/db/index.js';

export const PG_ADDRESS = '127.0.0.1:5432';
const ADMIN_URL = `postgres://postgres@${PG_ADDRESS}/test`;
export const PG_SKIP_LINE = `SKIPPED PostgreSQL tests: start PostgreSQL on ${PG_ADDRESS}`;

/** `describe`, or `describe` skipping every suite: what postgresSuite() decides. */
export type PostgresDescribe = ReturnType<typeof describe.runIf>;

export interface PgTestDb {
  /** postgres:// URL of the new database */
  url: string;
  /** a Kysely instance made by createDb, not yet migrated */
  db: Db;
  /** Closes db, ends every other connection to the database and drops it. Safe to call twice. */
  drop(): Promise<void>;
}

async function withAdminClient<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3_000 });
  // A server that goes away between queries must fail the query, not crash the test process.
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** true when the PostgreSQL test server answers a query. */
export async function pgAvailable(): Promise<boolean> {
  try {
    await withAdminClient((client) => client.query('select 1'));
    return true;
  } catch {
    return false;
  }
}

/**
 * The `describe` for PostgreSQL suites, decided once: await it at the top of a test file.
 * Server up → the suites run. Server down → outside CI the suites are skipped after one loud
 * line; with CI=true they run anyway, so createPgTestDb fails them instead of a silent skip.
 */
export async function postgresSuite(): Promise<PostgresDescribe> {
  if (await pgAvailable()) return describe.runIf(true);
  if (process.env.CI === 'true') return describe.runIf(true);
  console.warn(`\n${'!'.repeat(8)} ${PG_SKIP_LINE} ${'!'.repeat(8)}\n`);
  return describe.skipIf(true);
}

/** A fresh database named gh_test_<random> on the test server, for one test file or one test. */
export async function createPgTestDb(): Promise<PgTestDb> {
  // Hex only, so the name needs no quoting.
  const name = `gh_test_${randomBytes(8).toString('hex')}`;
  try {
    await withAdminClient((client) => client.query(`create database ${name}`));
  } catch (err) {
    throw new Error(`PostgreSQL tests need a server on ${PG_ADDRESS} (user postgres, database test): ${(err as Error).message}`);
  }
  const url = `postgres://postgres@${PG_ADDRESS}/${name}`;
  const db = createDb({ kind: 'postgres', url });
  let dropped = false;
  return {
    url,
    db,
    async drop() {
      if (dropped) return;
      dropped = true;
      await db.destroy();
      await withAdminClient(async (client) => {
        await client.query('select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()', [name]);
        await client.query(`drop database if exists ${name}`);
      });
    },
  };
}

/** A database for a suite that runs on both dialects: its Kysely instance, and how to throw it away. */
export interface DialectDb {
  db: Db;
  drop(): Promise<void>;
}

/**
 * The two databases a flow suite runs on, each with the `describe` to use: SQLite in a file, as
 * in production (WAL, busy timeout), not :memory:; and a PostgreSQL database of its own.
 */
export function bothDialects(describeOnPostgres: PostgresDescribe, tmpPrefix: string): [string, () => Promise<DialectDb>, PostgresDescribe][] {
  return [
    [
      'SQLite',
      async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), tmpPrefix));
        const db = createDb({ kind: 'sqlite', file: path.join(dir, 'gatehouse.sqlite') });
        return { db, drop: async () => fs.rmSync(dir, { recursive: true, force: true }) };
      },
      describe.runIf(true),
    ],
    [
      'PostgreSQL',
      async () => {
        const pgDb = await createPgTestDb();
        return { db: pgDb.db, drop: () => pgDb.drop() };
      },
      describeOnPostgres,
    ],
  ];
}

/** Polls `fn` until it gives a value, failing with `what` after timeoutMs. */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
