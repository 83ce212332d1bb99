import { afterEach, beforeEach, expect, it } from 'vitest';
import { type Migration, Migrator } from 'kysely';
import { migrateToLatest, type Db } from '../../src/db/index.js';
import * as m0001 from '../../src/db/migrations/0001_initial.js';
import * as m0002 from '../../src/db/migrations/0002_recovery.js';
import * as m0003 from '../../src/db/migrations/0003_one_reset_token.js';
import * as m0004 from '../../src/db/migrations/0004_sign_in_locks.js';
import * as m0005 from '../../src/db/migrations/0005_mail_transport.js';
import * as m0006 from '../../src/db/migrations/0006_delivery_target.js';
import { hashSessionToken } from '../../src/accounts/sessions.js';
import { bothDialects, postgresSuite, type DialectDb } from '../helpers/pg.js';

// Sessions signed in before 0007 keep working and each gets its own opaque public id.

const describeOnPostgres = await postgresSuite();
const UP_TO_0006: Record<string, Migration> = {
  '0001_initial': m0001,
  '0002_recovery': m0002,
  '0003_one_reset_token': m0003,
  '0004_sign_in_locks': m0004,
  '0005_mail_transport': m0005,
  '0006_delivery_target': m0006,
};

for (const [name, open, describeOn] of bothDialects(describeOnPostgres, 'gatehouse-migration-0007-')) {
  describeOn(`migration 0007 on ${name}: sessions get a public id`, () => {
    let handle: DialectDb;
    let db: Db;
    beforeEach(async () => {
      handle = await open();
      db = handle.db;
    });
    afterEach(async () => {
      await db.destroy();
      await handle.drop();
    });

    it('gives every existing session a distinct random id (not its hash), keeps the rest, and refuses a duplicate id', async () => {
      const { error } = await new Migrator({ db, provider: { getMigrations: async () => UP_TO_0006 } }).migrateToLatest();
      expect(error).toBeUndefined();
      await db
        .insertInto('users')
        .values({
          id: 'u1',
          email: null,
          email_normalized: null,
          username: 'ann',
          username_normalized: 'ann',
          name: 'Ann',
          role: 'user',
          disabled: 0,
          must_change_password: 0,
          password_hash: null,
          password_changed_at: 1,
          failed_login_count: 0,
          locked_at: null,
          created_at: 1,
          updated_at: 1,
        })
        .execute();
      const hashes = ['a', 'b', 'c'].map(hashSessionToken);
      // Inserted as the previous release wrote them: no public_id column yet.
      const old = db as unknown as Db;
      for (const [i, token_hash] of hashes.entries()) {
        await (old.insertInto('sessions') as unknown as { values(v: object): { execute(): Promise<unknown> } })
          .values({ token_hash, user_id: 'u1', created_at: 1000 + i, last_seen_at: 2000 + i, expires_at: 9e12, idle_expires_at: 9e12, ip: '10.0.0.1', user_agent: 'curl/8' })
          .execute();
      }

      expect(await migrateToLatest(db)).toContain('0007_session_details');
      const rows = await db.selectFrom('sessions').selectAll().orderBy('created_at').execute();
      expect(rows.map((r) => [r.token_hash, Number(r.created_at), Number(r.last_seen_at), r.ip, r.user_agent])).toEqual(
        hashes.map((h, i) => [h, 1000 + i, 2000 + i, '10.0.0.1', 'curl/8']),
      );
      const ids = rows.map((r) => r.public_id);
      for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(new Set(ids).size).toBe(3);
      for (const r of rows) expect(r.public_id).not.toBe(r.token_hash);

      await expect(db.updateTable('sessions').set({ public_id: ids[0]! }).where('token_hash', '=', hashes[1]!).execute()).rejects.toThrow();
    });
  });
}
