import { parentPort, workerData } from 'node:worker_threads';
import { systemClock } from './clock.js';
import { loadConfig } from './config.js';
import { createDb } from './db/index.js';
import { createLogger } from './logger.js';
import { cryptoRandom } from './random.js';
import { recoveryHandlers } from './recovery/delivery.js';
import { createConfiguredSecretStore } from './secrets/index.js';
import { chooseMailer, type OutboxThreadData } from './mail/index.js';
import { createOutboxWorker } from './mail/outbox.js';
import { createLoopbackMailer, DEV_INBOX_FROM } from './mail/transport.js';
import { lowerThisThreadsPriority } from './thread-priority.js';

/** nice 0 → 5: about a third of a core's share while the request thread wants it too. */
const OUTBOX_THREAD_NICE = 5;

// An entry point, beside main.ts: the delivery worker's thread (started by startOutboxThread in
// mail/index.ts). Its own Config, database connection, secret store and SMTP pool, built from the
// same environment as the server's once it is told to start: it may be loaded before the server
// has migrated the database.

const data = workerData as OutboxThreadData;

// Sending can wait a moment, answering cannot: when both want the cores, the request thread goes first.
lowerThisThreadsPriority(OUTBOX_THREAD_NICE);

async function startWorker(): Promise<() => Promise<void>> {
  const config = loadConfig(data.env);
  // LOG_FORMAT comes from the server (src/server.ts passes the format it chose for its terminal).
  const logger = createLogger(config.logLevel, undefined, { format: config.logFormat }).child({ thread: 'outbox' });
  const db = createDb(config.database);
  const secrets = await createConfiguredSecretStore(config, data.env, systemClock);
  const devInboxMailer = data.devInboxPort === undefined ? undefined : createLoopbackMailer(data.devInboxPort, DEV_INBOX_FROM, config.publicUrl.hostname);
  const mailers = chooseMailer({ db, secrets, config, devInboxMailer });
  const base = { config, db, clock: systemClock, random: cryptoRandom };
  const worker = createOutboxWorker({
    db,
    clock: systemClock,
    logger,
    mailer: mailers.mailer,
    handlers: recoveryHandlers(base),
    leaseMs: config.outboxLeaseSeconds * 1000,
    // Each pool connection sends one message at a time, with two more prepared behind it: one
    // starts the moment the connection is free, the other covers the time the next batch takes to
    // be claimed and prepared. Never fewer than the 10 the worker has always had.
    concurrency: Math.max(10, 3 * config.mailPoolSize),
  });
  worker.start();
  wake = () => worker.wake();
  return async () => {
    await worker.stop();
    mailers.close();
    devInboxMailer?.close();
    await db.destroy();
  };
}

let started: Promise<() => Promise<void>> | undefined;
let wake = (): void => {};

parentPort!.on('message', (message: unknown) => {
  if (message === 'start') started ??= startWorker();
  if (message === 'wake') wake();
  if (message === 'stop') {
    void (async () => {
      const stop = await started;
      await stop?.();
      parentPort!.close();
    })();
  }
});
parentPort!.postMessage('loaded');
