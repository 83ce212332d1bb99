import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDb, migrateToLatest, type Db } from '../../src/db/index.js';

// SQLite prepares each distinct statement once and reuses it (src/db/index.ts). A reused
// statement must still serve Kysely's streaming, which iterates it, and be usable again after a
// stream is left half-read.

let db: Db;
beforeEach(async () => {
  db = createDb({ kind: 'sqlite', file: ':memory:' });
  await migrateToLatest(db);
  for (const key of ['a', 'b', 'c']) await db.insertInto('settings').values({ key, value: '{}', updated_at: 1, updated_by: null }).execute();
});
afterEach(async () => {
  await db.destroy();
});

const query = () => db.selectFrom('settings').select('key').orderBy('key');

describe('the SQLite statement cache', () => {
  it('streams every row, twice in a row, with the same prepared statement', async () => {
    for (let round = 0; round < 2; round++) {
      const keys: string[] = [];
      for await (const row of query().stream()) keys.push(row.key);
      expect(keys, `round ${round}`).toEqual(['a', 'b', 'c']);
    }
  });

  it('runs the statement again after a stream was left half-read', async () => {
    for await (const row of query().stream()) {
      expect(row.key).toBe('a');
      break;
    }
    expect((await query().execute()).map((r) => r.key)).toEqual(['a', 'b', 'c']);
    const keys: string[] = [];
    for await (const row of query().stream(1)) keys.push(row.key);
    expect(keys).toEqual(['a', 'b', 'c']);
  });
});
