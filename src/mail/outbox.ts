import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Insertable, Selectable } from 'kysely';
import type { Clock } from '../clock.js';
import { dialectOf, type Db } from '../db/index.js';
import type { DeliveredVia, DeliveryKind, MailOutboxTable } from '../db/schema.js';
import type { Random } from '../random.js';
import { classifySendError, type Mailer, type MailSendError, type OutgoingMessage } from './transport.js';
import type { Delivery } from './api-schemas.js';

// Only this file touches the mail_outbox table.

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
    id: random.uuid(),
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
  | {
      action: 'send';
      message: OutgoingMessage;
      userId: string;
      toAddress: string;
      onSent?: () => Promise<void>;
      /** after every failed attempt; `gaveUp`: no retry follows (a permanent failure, or past the deadline) */
      onFailed?: (err: MailSendError, outcome: { gaveUp: boolean }) => Promise<void>;
    };

export type DeliveryHandler = (row: DeliveryRow) => Promise<Prepared>;

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
  batchSize?: number;
  /** deliveries being sent at once by start()'s loop */
  concurrency?: number;
  pollIntervalMs?: number;
}

export interface OutboxWorker {
  start(): void;
  stop(): Promise<void>;
  /** a new row is due: look now rather than at the next poll */
  wake(): void;
  /** processes due rows until none is left (tests, CLI) */
  drain(): Promise<number>;
}

export function createOutboxWorker(o: OutboxWorkerOptions): OutboxWorker {
  const baseBackoffMs = o.baseBackoffMs ?? 30_000;
  const maxBackoffMs = o.maxBackoffMs ?? 30 * 60_000;
  const leaseMs = o.leaseMs ?? 120_000;
  const batchSize = o.batchSize ?? 20;
  const concurrency = o.concurrency ?? 10;
  const pollIntervalMs = o.pollIntervalMs ?? 1000;
  const postgres = dialectOf(o.db) === 'postgres';

  let running = false;
  let loop: Promise<void> | undefined;

  async function claim(limit: number): Promise<DeliveryRow[]> {
    const nowMs = o.clock.now().getTime();
    return o.db
      .updateTable('mail_outbox')
      .set((eb) => ({ status: 'sending', locked_until: nowMs + leaseMs, attempts: eb('attempts', '+', 1), updated_at: nowMs }))
      .where('id', 'in', (eb) => {
        let sub = eb
          .selectFrom('mail_outbox')
          .select('id')
          .where((w) =>
            w.or([
              w.and([w('status', 'in', ['queued', 'retrying']), w('next_attempt_at', '<=', nowMs)]),
              // A worker that died mid-send left its lease behind; the row is taken again.
              w.and([w('status', '=', 'sending'), w('locked_until', '<=', nowMs)]),
            ]),
          )
          .orderBy('next_attempt_at')
          .limit(limit);
        // Several instances claim at once without ever taking the same row.
        if (postgres) sub = sub.forUpdate().skipLocked();
        return sub;
      })
      .returningAll()
      .execute();
  }

  /**
   * Ends this attempt: the row leaves the worker's lease. Only while the row is still this
   * attempt's: a send that outlived its lease may have been claimed again by another worker
   * (attempts counts claims), whose outcome must not be overwritten by this stale one.
   */
  async function finish(row: DeliveryRow, set: Partial<Pick<DeliveryRow, 'status' | 'last_error' | 'sent_at' | 'next_attempt_at' | 'lookup_email' | 'delivered_via'>>): Promise<void> {
    await o.db
      .updateTable('mail_outbox')
      .set({ ...set, locked_until: null, updated_at: o.clock.now().getTime() })
      .where('id', '=', row.id)
      .where('attempts', '=', row.attempts)
      .execute();
  }

  async function processRow(row: DeliveryRow): Promise<void> {
    let prepared: Prepared;
    try {
      prepared = await o.handlers[row.kind](row);
    } catch (err) {
      o.logger.error({ err, deliveryId: row.id }, 'preparing a delivery failed');
      await retryOrFail(row, classifySendError(err));
      return;
    }
    if (prepared.action === 'drop') {
      await o.db.deleteFrom('mail_outbox').where('id', '=', row.id).execute();
      return;
    }
    if (prepared.action === 'expire') {
      await finish(row, { status: 'expired', lookup_email: null });
      return;
    }
    // Looked up once: a retry goes to the same account, and the typed address is no longer kept.
    await o.db
      .updateTable('mail_outbox')
      .set({ user_id: prepared.userId, to_address: prepared.toAddress, lookup_email: null })
      .where('id', '=', row.id)
      .execute();
    // Where this attempt went: kept on the row whether it was sent or failed (the Mail page shows it).
    let via: DeliveredVia | null = null;
    try {
      const mailer = await o.mailer();
      via = mailer.via ?? null;
      await mailer.send(prepared.message);
    } catch (err) {
      const failure = classifySendError(err);
      // Decided once: what the handler is told is what the row becomes.
      const next = retryAt(row, failure);
      await prepared.onFailed?.(failure, { gaveUp: next === undefined });
      await retryOrFail(row, failure, via, next);
      return;
    }
    await finish(row, { status: 'sent', sent_at: o.clock.now().getTime(), last_error: null, delivered_via: via });
    await prepared.onSent?.();
  }

  /** When the next attempt is due; undefined: give up (a permanent failure, or the next try would be past the deadline or the link's expiry). */
  function retryAt(row: DeliveryRow, failure: MailSendError): number | undefined {
    const backoff = Math.min(maxBackoffMs, baseBackoffMs * 2 ** Math.max(0, row.attempts - 1));
    // A server that says when to come back (Graph's 429 Retry-After) is not asked again sooner.
    const next = o.clock.now().getTime() + Math.max(backoff, (failure.retryAfterSeconds ?? 0) * 1000);
    const retryable = failure.transient || (failure.code === 'auth_failed' && row.attempts < AUTH_FAILURE_ATTEMPTS);
    // A try at or after the link's expiry would only mark the row expired: the sooner of the two is the deadline.
    const deadline = row.not_after === null ? row.give_up_at : Math.min(row.give_up_at, row.not_after - 1);
    return retryable && next <= deadline ? next : undefined;
  }

  async function retryOrFail(row: DeliveryRow, failure: MailSendError, via: DeliveredVia | null = null, next = retryAt(row, failure)): Promise<void> {
    const lastError = `${failure.code}: ${failure.message}`.slice(0, 500);
    // A failure before any mailer was chosen (not configured) keeps where the last try went.
    const where = via === null ? {} : { delivered_via: via };
    if (next === undefined) {
      o.logger.warn({ deliveryId: row.id, kind: row.kind, attempts: row.attempts, error: failure.code }, 'outbox: delivery given up');
      await finish(row, { status: 'failed', last_error: lastError, ...where });
    } else {
      await finish(row, { status: 'retrying', last_error: lastError, next_attempt_at: next, ...where });
    }
  }

  async function runOnce(): Promise<number> {
    const rows = await claim(batchSize);
    await Promise.all(rows.map((row) => processRow(row)));
    return rows.length;
  }

  // Rows are sent continuously, up to `concurrency` at once: a slow send holds one slot, not a batch.
  const inFlight = new Set<Promise<void>>();
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
      let claimed = 0;
      const free = concurrency - inFlight.size;
      if (free > 0) {
        try {
          const rows = await claim(free);
          claimed = rows.length;
          for (const row of rows) {
            const p: Promise<void> = processRow(row)
              .catch((err: unknown) => o.logger.error({ err, deliveryId: row.id }, 'outbox worker: a delivery failed unexpectedly'))
              .finally(() => {
                inFlight.delete(p);
                notify();
              });
            inFlight.add(p);
          }
        } catch (err) {
          o.logger.warn({ err }, 'outbox worker: claiming deliveries failed');
        }
      }
      // Let request handlers run between claims: rows that need no I/O must not hold the loop.
      await yieldToLoop();
      if (claimed > 0 && inFlight.size < concurrency) continue;
      await waitForSignal(pollIntervalMs);
    }
    await Promise.all(inFlight);
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
    },
    wake() {
      // After the current request has answered: with SQLite the worker's first claim would
      // otherwise run before the response leaves, and the time it takes would depend on the account.
      setImmediate(notify);
    },
    async drain() {
      let total = 0;
      for (;;) {
        const n = await runOnce();
        total += n;
        if (n === 0) return total;
      }
    },
  };
}
