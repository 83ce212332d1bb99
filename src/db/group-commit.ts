import type { Insertable } from 'kysely';
import { dialectOf, type Database, type Db } from './index.js';

/** One row for one table. */
export type NewRow = { [T in keyof Database]: { table: T; values: Insertable<Database[T]> } }[keyof Database];

interface Waiting {
  rows: readonly NewRow[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Rows of one statement at most: a few statement shapes per table, far below either database's parameter limit. */
const CHUNK_SIZES = [64, 16, 4, 1] as const;
/** Requests written by one transaction at most; the rest wait for the next. */
const MAX_WAITING_PER_COMMIT = 512;

/**
 * Group commit: the rows of every request that asks during one turn of the event loop are
 * inserted by one transaction, a multi-row INSERT per table, and each request's promise
 * settles only once that transaction has committed — no one is answered before their rows are
 * durable. While a commit is under way (PostgreSQL answers asynchronously), new requests wait
 * for the next one, so the busier the server, the more each commit carries.
 *
 * A request's rows are written together or not at all. When a shared commit fails, each
 * request is tried again on its own, so one bad row fails only its own request.
 */
export interface GroupCommit {
  insert(rows: readonly NewRow[]): Promise<void>;
}

const groupCommits = new WeakMap<Db, GroupCommit>();

/** The group commit of this database handle (one per handle, made on first use). */
export function groupCommitOf(db: Db): GroupCommit {
  let gc = groupCommits.get(db);
  if (gc === undefined) {
    gc = createGroupCommit(db);
    groupCommits.set(db, gc);
  }
  return gc;
}

export function createGroupCommit(db: Db): GroupCommit {
  let waiting: Waiting[] = [];
  let scheduled = false;
  let committing = false;

  const schedule = (): void => {
    if (scheduled || committing || waiting.length === 0) return;
    scheduled = true;
    // After the I/O phase: every request read in this turn joins the same commit.
    setImmediate(() => {
      scheduled = false;
      void commitWaiting();
    });
  };

  async function commitWaiting(): Promise<void> {
    committing = true;
    const batch = waiting.slice(0, MAX_WAITING_PER_COMMIT);
    waiting = waiting.slice(batch.length);
    try {
      await writeAll(db, batch.flatMap((w) => w.rows));
      for (const w of batch) w.resolve();
    } catch (err) {
      if (batch.length === 1) batch[0]!.reject(err);
      else await Promise.all(batch.map((w) => writeAll(db, w.rows).then(w.resolve, w.reject)));
    } finally {
      committing = false;
      schedule();
    }
  }

  return {
    insert(rows) {
      return new Promise<void>((resolve, reject) => {
        waiting.push({ rows, resolve, reject });
        schedule();
      });
    },
  };
}

/**
 * All or nothing, in the order first asked: chunked multi-row INSERTs per table. PostgreSQL gets
 * them as one statement (data-modifying CTEs), so one round trip; SQLite, in process, as one
 * transaction.
 */
async function writeAll(db: Db, rows: readonly NewRow[]): Promise<void> {
  const byTable = new Map<keyof Database, unknown[]>();
  for (const row of rows) {
    let list = byTable.get(row.table);
    if (list === undefined) byTable.set(row.table, (list = []));
    list.push(row.values);
  }
  const inserts = [...byTable].flatMap(([table, values]) => chunks(values).map((chunk) => ({ table, chunk })));
  const insertOf = (d: Db, i: { table: keyof Database; chunk: unknown[] }) => d.insertInto(i.table).values(i.chunk as never);
  if (inserts.length === 1) {
    await insertOf(db, inserts[0]!).execute();
  } else if (dialectOf(db) === 'postgres') {
    let q = db as unknown as Db;
    inserts.slice(0, -1).forEach((i, n) => {
      q = q.with(`w${n}`, (d) => insertOf(d as Db, i) as never) as unknown as Db;
    });
    await insertOf(q, inserts.at(-1)!).execute();
  } else {
    await db.transaction().execute(async (trx) => {
      for (const i of inserts) await insertOf(trx, i).execute();
    });
  }
}

function chunks<T>(list: readonly T[]): T[][] {
  const out: T[][] = [];
  let at = 0;
  for (const size of CHUNK_SIZES) {
    while (list.length - at >= size) {
      out.push(list.slice(at, at + size));
      at += size;
    }
  }
  return out;
}
