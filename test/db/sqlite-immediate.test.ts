import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createDb, migrateToLatest, type Db } from '../../src/db/index.js';

// Another connection on the file (the delivery thread, the CLI) commits while a transaction of
// ours is between its read and its write: that transaction must still commit.

let dir: string;
let db: Db;
let other: SQLite.Database;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-immediate-'));
  const file = path.join(dir, 'gatehouse.sqlite');
  db = createDb({ kind: 'sqlite', file });
  await migrateToLatest(db);
  other = new SQLite(file);
  // The other connection does not wait: whichever side is refused is refused at once.
  other.pragma('busy_timeout = 0');
});
afterAll(async () => {
  other.close();
  await db.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
});

it('lets a transaction that reads, then writes, commit though another connection wrote in between', async () => {
  let otherWrite: 'committed' | 'refused' | undefined;
  await db.transaction().execute(async (trx) => {
    await trx.selectFrom('settings').selectAll().execute();
    try {
      other.prepare("insert into settings (key, value, updated_at) values ('other', '{}', 1)").run();
      otherWrite = 'committed';
    } catch {
      otherWrite = 'refused';
    }
    await trx.insertInto('settings').values({ key: 'ours', value: '{}', updated_at: 2, updated_by: null }).execute();
  });
  // Ours held the write lock from its BEGIN: the other connection is the one told to wait.
  expect(otherWrite).toBe('refused');
  const keys = (await db.selectFrom('settings').select('key').execute()).map((r) => r.key);
  expect(keys).toContain('ours');
});

it('waits for another connection’s write lock without stopping the thread, then writes', async () => {
  other.exec('begin immediate');
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 5);
  const started = performance.now();
  const write = db.insertInto('settings').values({ key: 'waited', value: '{}', updated_at: 3, updated_by: null }).execute();
  const transaction = db.transaction().execute((trx) => trx.insertInto('settings').values({ key: 'waited-in-transaction', value: '{}', updated_at: 4, updated_by: null }).execute());
  await new Promise((resolve) => setTimeout(resolve, 300));
  // SQLite's own busy wait would have slept inside the call, and no timer would have run.
  const ticksWhileLocked = ticks;
  other.exec('commit');
  await Promise.all([write, transaction]);
  clearInterval(ticker);
  expect(ticksWhileLocked).toBeGreaterThanOrEqual(20);
  expect(performance.now() - started).toBeGreaterThanOrEqual(300);
  const keys = (await db.selectFrom('settings').select('key').execute()).map((r) => r.key);
  expect(keys).toEqual(expect.arrayContaining(['waited', 'waited-in-transaction']));
});
