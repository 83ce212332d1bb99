import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KyselyPlugin } from 'kysely';
import { createDb, migrateToLatest, type Db } from '../../src/db/index.js';
import { createGroupCommit, type NewRow } from '../../src/db/group-commit.js';
import { auditRow } from '../../src/audit/audit.js';
import { newDeliveryRow } from '../../src/mail/outbox.js';
import { FakeClock } from '../../src/clock.js';
import { seededRandom } from '../../src/random.js';
import { createPgTestDb, postgresSuite } from '../helpers/pg.js';

const onPostgres = await postgresSuite();
const clock = new FakeClock(new Date('2026-12-01T10:00:00Z'));
const random = seededRandom(12);

/** The audit row and the outbox row one forgot-password request writes; `tag` marks the audit row. */
function requestRows(tag: string, id?: string): NewRow[] {
  const delivery = newDeliveryRow(random, { kind: 'reset', userId: null, lookupEmail: `${tag}@example.com`, toAddress: null, nowMs: clock.now().getTime(), notAfterMs: null });
  return [
    { table: 'audit_events', values: auditRow(clock, { type: 'reset_requested', outcome: 'success', detail: { tag } }) },
    { table: 'mail_outbox', values: id === undefined ? delivery : { ...delivery, id } },
  ];
}

/** Counts the INSERT statements sent to the database. */
function countingInserts(db: Db): { db: Db; count: () => number } {
  let inserts = 0;
  const plugin: KyselyPlugin = {
    transformQuery: ({ node }) => {
      if (node.kind === 'InsertQueryNode') inserts += 1;
      return node;
    },
    transformResult: async ({ result }) => result,
  };
  return { db: db.withPlugin(plugin), count: () => inserts };
}

for (const [dialect, describeOn] of [['SQLite', describe], ['PostgreSQL', onPostgres]] as const) {
  describeOn(`group commit (${dialect})`, () => {
    let db: Db;
    /** a second connection: what it reads is committed */
    let reader: Db;
    let drop: () => Promise<void>;

    beforeAll(async () => {
      if (dialect === 'SQLite') {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-group-commit-'));
        const file = path.join(dir, 'gatehouse.sqlite');
        db = createDb({ kind: 'sqlite', file });
        reader = createDb({ kind: 'sqlite', file });
        drop = async () => {
          await db.destroy();
          fs.rmSync(dir, { recursive: true, force: true });
        };
      } else {
        const pg = await createPgTestDb();
        db = pg.db;
        drop = () => pg.drop();
        reader = createDb({ kind: 'postgres', url: pg.url });
      }
      await migrateToLatest(db);
    });
    afterAll(async () => {
      await reader?.destroy();
      await drop?.();
    });

    const readerOf = (): Db => reader;
    const taggedAudits = async (prefix: string): Promise<string[]> =>
      (await readerOf().selectFrom('audit_events').select('detail').where('detail', 'like', `%"${prefix}%`).execute()).map((r) => String(r.detail));

    it('writes 300 concurrent requests in a few statements, and answers each only once its rows are committed', async () => {
      const counting = countingInserts(db);
      const gc = createGroupCommit(counting.db);
      const seenAtAnswer: boolean[] = [];
      await Promise.all(
        Array.from({ length: 300 }, async (_, i) => {
          const rows = requestRows(`many-${i}-`);
          await gc.insert(rows);
          const id = (rows[1]!.values as { id: string }).id;
          // Read at once, from another connection on PostgreSQL: the row is already durable.
          seenAtAnswer[i] = (await readerOf().selectFrom('mail_outbox').select('id').where('id', '=', id).executeTakeFirst()) !== undefined;
        }),
      );
      expect(seenAtAnswer.filter(Boolean)).toHaveLength(300);
      expect(await taggedAudits('many-')).toHaveLength(300);
      // One at a time would be 600 INSERTs; a commit carries every request of a turn, 64 rows a statement.
      expect(counting.count()).toBeLessThan(60);
    });

    it('fails only the request whose row is refused, and writes none of its rows', async () => {
      const taken = (await readerOf().selectFrom('mail_outbox').select('id').executeTakeFirstOrThrow()).id;
      const gc = createGroupCommit(db);
      const outcomes = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => gc.insert(requestRows(`mixed-${i}-`, i === 7 ? taken : undefined))));
      expect(outcomes.map((o) => o.status)).toEqual(Array.from({ length: 20 }, (_, i) => (i === 7 ? 'rejected' : 'fulfilled')));
      const audits = await taggedAudits('mixed-');
      expect(audits).toHaveLength(19);
      expect(audits.some((d) => d.includes('mixed-7-'))).toBe(false);
    });

    it('keeps taking requests after a failed commit', async () => {
      const gc = createGroupCommit(db);
      const taken = (await readerOf().selectFrom('mail_outbox').select('id').executeTakeFirstOrThrow()).id;
      await expect(gc.insert(requestRows('alone-bad-', taken))).rejects.toThrow();
      await gc.insert(requestRows('after-'));
      expect(await taggedAudits('after-')).toHaveLength(1);
    });
  });
}
