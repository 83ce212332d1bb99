import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from 'pino';
import { sql, type Insertable, type RawBuilder, type Selectable } from 'kysely';
import type { Clock } from '../clock.js';
import { dialectOf, type Db } from '../db/index.js';
import type { DeliveredVia, DeliveryKind, MailOutboxTable } from '../db/schema.js';
import { uuidV7, type Random } from '../random.js';
import { classifySendError, type Mailer, type MailSendError, type OutgoingMessage } from './transport.js';
import type { Delivery } from './api-schemas.js';

// Only this file touches the mail_outbox table, but for new rows: built here (newDeliveryRow),
// forgot-password writes them with its audit row through the group commit (db/group-commit.ts).

export type DeliveryRow = Selectable<MailOutboxTable>;

/** A mailer that says where it sends: recorded on the row as `delivered_via` (none: not recorded). */
export type RoutedMailer = Mailer & { readonly via?: DeliveredVia };

export const GIVE_UP_AFTER_MS = 24 * 3_600_000;
/**
 * Attempts for a delivery the mail server refuses to authenticate. A refusal is permanent for one
 * password, but a rotated secret reaches every instance only within SECRETS_CACHE_SECONDS: the
 * retries (30 s, then 60 s later) read it again. Few, so a wrong password does not get the
 * mailbox locked by the provider.
 */
export const AUTH_FAILURE_ATTEMPTS = 3;

export interface NewDelivery {
  kind: DeliveryKind;
  userId: string | null;
  lookupEmail?: string | null;
  toAddress: string | null;
  nowMs: number;
  notAfterMs: number | null;
  ip?: string | null;
  actorId?: string | null;
}

export async function enqueueDelivery(db: Db, random: Random, d: NewDelivery): Promise<string> {
  const row = newDeliveryRow(random, d);
  await db.insertInto('mail_outbox').values(row).execute();
  return row.id;
}

/** A queued delivery's row, for callers that write it together with others (groupCommit). */
export function newDeliveryRow(random: Random, d: NewDelivery): Insertable<MailOutboxTable> & { id: string } {
  return {
    // Time-ordered: a busy outbox's new rows go to the end of its key index (see uuidV7).
    id: uuidV7(random, d.nowMs),
    kind: d.kind,
    user_id: d.userId,
    lookup_email: d.lookupEmail ?? null,
    to_address: d.toAddress,
    status: 'queued',
    attempts: 0,
    next_attempt_at: d.nowMs,
    locked_until: null,
    last_error: null,
    requested_at: d.nowMs,
    not_after: d.notAfterMs,
    give_up_at: d.nowMs + GIVE_UP_AFTER_MS,
    sent_at: null,
    ip: d.ip ?? null,
    actor_id: d.actorId ?? null,
    updated_at: d.nowMs,
    delivered_via: null,
  };
}

/** How long finished deliveries stay visible to admins. */
export const KEEP_FINISHED_DELIVERIES_DAYS = 30;

export async function deleteOldDeliveries(db: Db, nowMs: number): Promise<void> {
  await db
    .deleteFrom('mail_outbox')
    .where('status', 'in', ['sent', 'failed', 'expired'])
    .where('requested_at', '<', nowMs - KEEP_FINISHED_DELIVERIES_DAYS * 86_400_000)
    .execute();
}

/** A delivery as admins see it: its type comes from the API's schema, so listDeliveries cannot drift from it. */
export type { Delivery };

/** What admins see: rows already addressed to an account, newest first; never a token or a body. */
export async function listDeliveries(db: Db, options: { limit: number; before?: string | undefined }): Promise<Delivery[]> {
  let q = db
    .selectFrom('mail_outbox')
    .select(['id', 'requested_at', 'to_address', 'kind', 'status', 'attempts', 'last_error', 'delivered_via'])
    .where('to_address', 'is not', null)
    .orderBy('requested_at', 'desc')
    .orderBy('id', 'desc')
    .limit(options.limit);
  if (options.before !== undefined) {
    const cursor = await db.selectFrom('mail_outbox').select(['requested_at', 'id']).where('id', '=', options.before).executeTakeFirst();
    if (cursor === undefined) return [];
    q = q.where((eb) =>
      eb.or([eb('requested_at', '<', cursor.requested_at), eb.and([eb('requested_at', '=', cursor.requested_at), eb('id', '<', cursor.id)])]),
    );
  }
  const rows = await q.execute();
  return rows.map((r) => ({
    id: r.id,
    at: new Date(r.requested_at).toISOString(),
    to: r.to_address,
    kind: r.kind,
    status: r.status,
    attempts: r.attempts,
    lastError: r.last_error,
    via: r.delivered_via,
  }));
}

/** What a kind's handler decides for a claimed row. */
export type Prepared =
  /** nothing to send (no such account, account disabled): the row is dropped */
  | { action: 'drop' }
  /** the link would already have expired */
  | { action: 'expire' }
  | PreparedSend;

export interface PreparedSend {
  action: 'send';
  message: OutgoingMessage;
  userId: string;
  toAddress: string;
}

/** How one send ended, as its handler's `settle` is told. */
export interface SendOutcome {
  row: DeliveryRow;
  send: PreparedSend;
  /** undefined: the server accepted the message */
  failure: MailSendError | undefined;
  /** no retry follows (a permanent failure, or past the deadline) */
  gaveUp: boolean;
}

/** A kind of delivery: what its rows become at send time, and what their outcomes write besides the rows. */
export interface DeliveryHandler {
  /** one answer per row, in the rows' order, for a batch of claimed rows of this kind */
  prepare(rows: readonly DeliveryRow[]): Promise<Prepared[]>;
  /** runs in the transaction that records the outcomes' rows (audit events, a failed link voided) */
  settle(trx: Db, outcomes: readonly SendOutcome[]): Promise<void>;
}

export interface OutboxWorkerOptions {
  db: Db;
  clock: Clock;
  logger: Logger;
  /** the mailer to use now: SMTP with saved settings, the dev inbox, or none; its `via` is recorded on the row */
  mailer: () => Promise<RoutedMailer>;
  handlers: Record<DeliveryKind, DeliveryHandler>;
  /** first retry delay; doubles each attempt up to maxBackoffMs */
  baseBackoffMs?: number;
  maxBackoffMs?: number;
  leaseMs?: number;
  /** rows drain() claims (and prepares) at once */
  batchSize?: number;
  /** messages handed to the mailer at once by start()'s loop: beyond what the pool sends, they wait in it prepared */
  concurrency?: number;
  pollIntervalMs?: number;
  /** outcomes are written together, at the latest this long after the first of them */
  flushIntervalMs?: number;
}

export interface OutboxWorker {
  start(): void;
  stop(): Promise<void>;
  /** a new row is due: look now rather than at the next poll */
  wake(): void;
  /** processes due rows until none is left (tests, CLI) */
  drain(): Promise<number>;
}

/** The columns an attempt's end may set. */
type Finish = Partial<Pick<DeliveryRow, 'status' | 'last_error' | 'sent_at' | 'next_attempt_at' | 'lookup_email' | 'delivered_via'>>;
const FINISH_COLUMNS = ['status', 'last_error', 'sent_at', 'next_attempt_at', 'lookup_email', 'delivered_via'] as const;

/** What is written for one claimed row: its deletion, or its attempt's end (and the send's outcome, for its handler). */
type Outcome = { row: DeliveryRow; drop: true } | { row: DeliveryRow; drop?: false; set: Finish; sent?: SendOutcome };

/** A prepared message, bound to the mailer chosen for its batch. */
interface Ready {
  row: DeliveryRow;
  send: PreparedSend;
  mailer: RoutedMailer;
}

export function createOutboxWorker(o: OutboxWorkerOptions): OutboxWorker {
  const baseBackoffMs = o.baseBackoffMs ?? 30_000;
  const maxBackoffMs = o.maxBackoffMs ?? 30 * 60_000;
  const leaseMs = o.leaseMs ?? 120_000;
  const concurrency = o.concurrency ?? 10;
  const batchSize = o.batchSize ?? 20;
  const pollIntervalMs = o.pollIntervalMs ?? 1000;
  const postgres = dialectOf(o.db) === 'postgres';
  const nowMs = (): number => o.clock.now().getTime();
  const results = createOutcomeWriter({ db: o.db, logger: o.logger, handlers: o.handlers, nowMs, flushRows: batchSize, flushIntervalMs: o.flushIntervalMs ?? 10 });

  async function claim(limit: number): Promise<DeliveryRow[]> {
    const now = nowMs();
    // Each kind of due row is read from the index in order and only `limit` of each: with one
    // OR-ed condition, SQLite collected every due row and sorted them to keep `limit` (2.7 ms a
    // claim with 30,000 queued, the backlog of a forgot-password flood; 43 µs this way).
    const due = (kind: 'q' | 'r' | 'l') => {
      let q = o.db
        .selectFrom('mail_outbox')
        .select(['id', 'next_attempt_at'])
        .where((w) =>
          kind === 'q'
            ? w.and([w('status', '=', 'queued'), w('next_attempt_at', '<=', now)])
            : kind === 'r'
              ? w.and([w('status', '=', 'retrying'), w('next_attempt_at', '<=', now)])
              : // A worker that died mid-send left its lease behind; the row is taken again.
                w.and([w('status', '=', 'sending'), w('locked_until', '<=', now)]),
        )
        .orderBy('next_attempt_at')
        .limit(limit);
      // Several instances claim at once without ever taking the same row.
      if (postgres) q = q.forUpdate().skipLocked();
      return q;
    };
    return o.db
      .with('queued', () => due('q'))
      .with('retrying', () => due('r'))
      .with('leased', () => due('l'))
      .updateTable('mail_outbox')
      .set((eb) => ({ status: 'sending', locked_until: now + leaseMs, attempts: eb('attempts', '+', 1), updated_at: now }))
      .where('id', 'in', (eb) =>
        eb
          .selectFrom(
            eb
              .selectFrom('queued')
              .select(['id', 'next_attempt_at'])
              .unionAll(eb.selectFrom('retrying').select(['id', 'next_attempt_at']))
              .unionAll(eb.selectFrom('leased').select(['id', 'next_attempt_at']))
              .as('due'),
          )
          .select('id')
          .orderBy('next_attempt_at')
          .limit(limit),
      )
      .returningAll()
      .execute();
  }

  /** When the next attempt is due; undefined: give up (a permanent failure, or the next try would be past the deadline or the link's expiry). */
  function retryAt(row: DeliveryRow, failure: MailSendError): number | undefined {
    const backoff = Math.min(maxBackoffMs, baseBackoffMs * 2 ** Math.max(0, row.attempts - 1));
    // A server that says when to come back (Graph's 429 Retry-After) is not asked again sooner.
    const next = nowMs() + Math.max(backoff, (failure.retryAfterSeconds ?? 0) * 1000);
    const retryable = failure.transient || (failure.code === 'auth_failed' && row.attempts < AUTH_FAILURE_ATTEMPTS);
    // A try at or after the link's expiry would only mark the row expired: the sooner of the two is the deadline.
    const deadline = row.not_after === null ? row.give_up_at : Math.min(row.give_up_at, row.not_after - 1);
    return retryable && next <= deadline ? next : undefined;
  }

  /** The row after a failed attempt: retrying at `next`, or failed. */
  function failedAttempt(row: DeliveryRow, failure: MailSendError, via: DeliveredVia | null, next: number | undefined): Finish {
    const lastError = `${failure.code}: ${failure.message}`.slice(0, 500);
    // A failure before any mailer was chosen (not configured) keeps where the last try went.
    const where = via === null ? {} : { delivered_via: via };
    if (next !== undefined) return { status: 'retrying', last_error: lastError, next_attempt_at: next, ...where };
    o.logger.warn({ deliveryId: row.id, kind: row.kind, attempts: row.attempts, error: failure.code }, 'outbox: delivery given up');
    return { status: 'failed', last_error: lastError, ...where };
  }

  function sendFailed({ row, send }: { row: DeliveryRow; send: PreparedSend }, err: unknown, via: DeliveredVia | null): void {
    const failure = classifySendError(err);
    // Decided once: what the handler is told is what the row becomes.
    const next = retryAt(row, failure);
    results.add({ row, set: failedAttempt(row, failure, via, next), sent: { row, send, failure, gaveUp: next === undefined } });
  }

  async function deliver(item: Ready): Promise<void> {
    try {
      await item.mailer.send(item.send.message);
    } catch (err) {
      sendFailed(item, err, item.mailer.via ?? null);
      return;
    }
    // Where this attempt went: kept on the row whether it was sent or failed (the Mail page shows it).
    const set: Finish = { status: 'sent', sent_at: nowMs(), last_error: null, delivered_via: item.mailer.via ?? null };
    results.add({ row: item.row, set, sent: { row: item.row, send: item.send, failure: undefined, gaveUp: false } });
  }

  /** Asks each kind's handler about its rows; the sends come back in the rows' order. */
  async function prepare(rows: DeliveryRow[]): Promise<{ row: DeliveryRow; send: PreparedSend }[]> {
    const kinds = [...new Set(rows.map((r) => r.kind))];
    const decided = await Promise.all(kinds.map((kind) => prepareKind(rows.filter((r) => r.kind === kind))));
    return decided.flat();
  }

  async function prepareKind(rows: DeliveryRow[]): Promise<{ row: DeliveryRow; send: PreparedSend }[]> {
    let prepared: Prepared[];
    try {
      prepared = await o.handlers[rows[0]!.kind].prepare(rows);
    } catch (err) {
      o.logger.error({ err, deliveryIds: rows.map((r) => r.id) }, 'preparing deliveries failed');
      const failure = classifySendError(err);
      for (const row of rows) results.add({ row, set: failedAttempt(row, failure, null, retryAt(row, failure)) });
      return [];
    }
    const sends: { row: DeliveryRow; send: PreparedSend }[] = [];
    rows.forEach((row, i) => {
      const p = prepared[i]!;
      if (p.action === 'drop') results.add({ row, drop: true });
      else if (p.action === 'expire') results.add({ row, set: { status: 'expired', lookup_email: null } });
      else sends.push({ row, send: p });
    });
    return sends;
  }

  // Sending: every prepared message goes to the mailer at once, up to `concurrency` of them; the
  // pool sends as many as it has connections and queues the rest, so while it sends, the next
  // batch is claimed and prepared.
  let inFlight = 0;
  let idleWaiters: (() => void)[] = [];
  /** rows may be due beyond those claimed: a claim came back full */
  let backlog = false;
  /**
   * With a backlog, the next claim waits until this many places are free: fewer, larger batches,
   * claimed while two thirds are still in flight, enough to cover the batch's round trips.
   */
  const refillAt = Math.ceil(concurrency / 3);

  function send(item: Ready): void {
    inFlight += 1;
    void deliver(item)
      .catch((err: unknown) => o.logger.error({ err, deliveryId: item.row.id }, 'outbox worker: a delivery failed unexpectedly'))
      .finally(() => {
        inFlight -= 1;
        if (backlog && concurrency - inFlight === refillAt) notify();
        if (inFlight > 0) return;
        // Nothing else to wait for: the outcomes are written now rather than at the next interval.
        void results.flush();
        for (const resolve of idleWaiters.splice(0)) resolve();
      });
  }

  const sendsDone = (): Promise<void> => (inFlight === 0 ? Promise.resolve() : new Promise((resolve) => idleWaiters.push(resolve)));

  /** Claims and prepares up to `limit` rows and hands their messages to the mailer; the number of rows claimed. */
  async function claimBatch(limit: number): Promise<number> {
    const rows = await claim(limit);
    if (rows.length === 0) return 0;
    // One mailer for the batch, read while the rows are prepared: the settings and the delivery
    // target are read once, not per message.
    const chosen = o.mailer().then(
      (mailer) => ({ mailer }),
      (err: unknown) => ({ err }),
    );
    const sends = await prepare(rows);
    if (sends.length === 0) return rows.length;
    await address(o.db, sends);
    const choice = await chosen;
    if ('err' in choice) {
      for (const s of sends) sendFailed(s, choice.err, null);
      return rows.length;
    }
    for (const s of sends) send({ ...s, mailer: choice.mailer });
    return rows.length;
  }

  let running = false;
  let loop: Promise<void> | undefined;
  let signal: (() => void) | undefined;
  let signalled = false;
  const notify = (): void => {
    if (signal) signal();
    else signalled = true;
  };
  const waitForSignal = (ms: number): Promise<void> =>
    new Promise<void>((resolve) => {
      if (signalled) {
        signalled = false;
        return resolve();
      }
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        signal = undefined;
        resolve();
      }
      signal = done;
    });

  async function run(): Promise<void> {
    while (running) {
      const free = concurrency - inFlight;
      // With rows already waiting, a new one changes nothing: the claim waits for half the places.
      if (free > 0 && !(backlog && free < refillAt)) {
        try {
          backlog = (await claimBatch(free)) === free;
        } catch (err) {
          o.logger.warn({ err }, 'outbox worker: claiming deliveries failed');
        }
      }
      // Let request handlers run between claims: rows that need no I/O must not hold the loop.
      await yieldToLoop();
      if (backlog && concurrency - inFlight >= refillAt) continue;
      // Woken by a new row, by the sends of a backlog freeing half the places, or by the poll.
      await waitForSignal(pollIntervalMs);
    }
    await sendsDone();
    await results.flush();
  }

  return {
    start() {
      if (running) return;
      running = true;
      loop = run();
    },
    async stop() {
      running = false;
      notify();
      await loop;
      await results.flush();
    },
    wake() {
      // After the current request has answered: with SQLite the worker's first claim would
      // otherwise run before the response leaves, and the time it takes would depend on the account.
      setImmediate(notify);
    },
    async drain() {
      let total = 0;
      for (;;) {
        const n = await claimBatch(batchSize);
        await sendsDone();
        await results.flush();
        total += n;
        if (n === 0) return total;
      }
    },
  };
}

/**
 * Writes the outcomes of many attempts together: one transaction for every outcome that arrived
 * within `flushIntervalMs` (or `flushRows` of them), with one DELETE for the dropped rows, one
 * UPDATE for the others and each handler's `settle` once. A row becomes `sent` only after the
 * server accepted its message; a crash before the write leaves the row leased, and it is sent
 * again once the lease runs out: at worst twice, never lost.
 */
function createOutcomeWriter(o: {
  db: Db;
  logger: Logger;
  handlers: Record<DeliveryKind, DeliveryHandler>;
  nowMs: () => number;
  flushRows: number;
  flushIntervalMs: number;
}): { add(outcome: Outcome): void; flush(): Promise<void> } {
  let pending: Outcome[] = [];
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();

  function schedule(): void {
    if (pending.length >= o.flushRows) void flush();
    else timer ??= setTimeout(() => void flush(), o.flushIntervalMs);
  }

  /** Writes what is pending, after the write under way; resolves once everything added before the call is written. */
  function flush(): Promise<void> {
    clearTimeout(timer);
    timer = undefined;
    const batch = pending;
    pending = [];
    writing = writing.then(() => (batch.length === 0 ? undefined : write(batch)));
    return writing;
  }

  async function write(batch: Outcome[]): Promise<void> {
    try {
      await o.db.transaction().execute(async (trx) => {
        const dropped = batch.filter((b) => b.drop).map((b) => b.row.id);
        if (dropped.length > 0) await trx.deleteFrom('mail_outbox').where('id', 'in', dropped).execute();
        const ended = batch.flatMap((b) => (b.drop ? [] : [b]));
        if (ended.length > 0) await finishAll(trx, ended, o.nowMs());
        const sent = ended.flatMap((b) => (b.sent === undefined ? [] : [b.sent]));
        for (const kind of new Set(sent.map((s) => s.row.kind))) {
          await o.handlers[kind].settle(
            trx,
            sent.filter((s) => s.row.kind === kind),
          );
        }
      });
    } catch (err) {
      // The rows keep their leases: they are claimed again once these run out, and sent again.
      o.logger.error({ err, deliveryIds: batch.map((b) => b.row.id) }, 'outbox worker: recording delivery outcomes failed');
    }
  }

  return {
    add(outcome) {
      pending.push(outcome);
      schedule();
    },
    flush,
  };
}

/**
 * Ends many attempts in one UPDATE. Only while a row is still its attempt's: a send that outlived
 * its lease may have been claimed again by another worker (attempts counts claims), whose outcome
 * must not be overwritten by this stale one.
 */
async function finishAll(trx: Db, ended: { row: DeliveryRow; set: Finish }[], nowMs: number): Promise<void> {
  await trx
    .updateTable('mail_outbox')
    .set({ ...eachOwn(ended, FINISH_COLUMNS), locked_until: null, updated_at: nowMs })
    .where((eb) => eb.or(ended.map((e) => eb.and([eb('id', '=', e.row.id), eb('attempts', '=', e.row.attempts)]))))
    .execute();
}

/** Looked up once, before the send: a retry goes to the same account, and the typed address is no longer kept. */
async function address(db: Db, sends: { row: DeliveryRow; send: PreparedSend }[]): Promise<void> {
  const rows = sends.map(({ row, send }) => ({ row, set: { user_id: send.userId, to_address: send.toAddress } }));
  await db
    .updateTable('mail_outbox')
    .set({ ...eachOwn(rows, ['user_id', 'to_address'] as const), lookup_email: null })
    .where('id', 'in', rows.map((r) => r.row.id))
    .execute();
}

/** SET values that differ by row, for one UPDATE of many rows: `case id when … then … else column end` per column. */
function eachOwn<S extends Partial<DeliveryRow>>(rows: { row: DeliveryRow; set: S }[], columns: readonly (keyof S & keyof DeliveryRow)[]): Record<string, RawBuilder<unknown>> {
  const set: Record<string, RawBuilder<unknown>> = {};
  for (const column of columns) {
    const setting = rows.filter((r) => column in r.set);
    if (setting.length === 0) continue;
    const cases = setting.map((r) => sql`when ${r.row.id} then ${r.set[column]}`);
    set[column] = sql`case ${sql.ref('id')} ${sql.join(cases, sql` `)} else ${sql.ref(column)} end`;
  }
  return set;
}
