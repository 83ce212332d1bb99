import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Db } from '../db/index.js';
import type { Random } from '../random.js';
import type { SecretStore } from '../secrets/store.js';
import type { DevInbox } from './dev-inbox.js';
import { findEmailSettings } from './settings.js';
import { createTokenSource } from './entra.js';
import { createMailSender, MailNotConfiguredError, type Mailer } from './transport.js';
import { deliveredVia, effectiveDeliveryTarget, findDeliveryTarget } from './delivery-target.js';
import type { RoutedMailer } from './outbox.js';

/** How long stopping waits for the worker thread to finish its current send. */
const OUTBOX_STOP_MS = 5_000;

/** What the server holds of the delivery worker, wherever it runs. */
export interface OutboxControl {
  start(): void;
  stop(): Promise<void>;
  /** a row was queued: look now rather than at the next poll */
  wake(): void;
}

export interface MailRuntime {
  worker: OutboxControl;
  devInbox: DevInbox | undefined;
  close(): Promise<void>;
}

/** Whether the dev mailbox runs at all: never in production; MAIL_DEV_INBOX=false turns it off. */
export function devInboxWanted(config: Config): boolean {
  return !config.production && config.mailDevInbox !== false;
}

/**
 * Chooses the sender for each message, reading the delivery target each time (an admin's switch
 * on the Settings page holds from the next message, no restart): the dev mailbox when the target
 * is the dev mailbox (MAIL_DEV_INBOX=true forces it; before any choice it is the dev mailbox until
 * email settings are saved), else the saved settings' transport (SMTP, SMTP with OAuth2,
 * Microsoft Graph), else nothing (the delivery retries). The mailer says where it sends (`via`).
 */
export function chooseMailer(o: { db: Db; secrets: SecretStore; config: Config; devInboxMailer: Mailer | undefined }): {
  mailer: () => Promise<RoutedMailer>;
  close(): void;
} {
  // The thread loads the same Config as the server: MAIL_SECRET_NAME_PATTERN holds here too.
  const sender = createMailSender(o.secrets, {
    secretNamePattern: o.config.mailSecretNamePattern,
    messageIdDomain: o.config.publicUrl.hostname,
    tokens: createTokenSource({ authorityHost: o.config.azureAuthorityHost }),
    graphBaseUrl: o.config.graphBaseUrl,
    poolSize: o.config.mailPoolSize,
  });
  return {
    async mailer() {
      const [settings, chosen] = await Promise.all([findEmailSettings(o.db), findDeliveryTarget(o.db)]);
      const { target } = effectiveDeliveryTarget({
        config: o.config,
        devMailboxRuns: o.devInboxMailer !== undefined,
        chosen,
        settingsSaved: settings !== undefined,
      });
      const devInbox = o.devInboxMailer;
      if (target === 'dev-mailbox' && devInbox !== undefined) return { send: (message) => devInbox.send(message), via: 'dev-mailbox' };
      // Bound to the settings read here: the settings that chose the transport are the ones this
      // message goes out with, whatever other sends read meanwhile.
      if (settings !== undefined) return { send: (message) => sender.send(settings, message), via: deliveredVia('server', settings) };
      throw new MailNotConfiguredError('email settings are not saved');
    },
    close: () => sender.close(),
  };
}

export interface OutboxThreadData {
  /** the environment the server's Config was loaded from; the thread loads the same Config */
  env: Record<string, string | undefined>;
  devInboxPort: number | undefined;
}

/**
 * Runs the delivery worker in a thread of its own, with its own database connection: looking an
 * account up, minting its token and talking SMTP never run on the event loop that answers
 * requests, so no request's timing depends on the work another request caused.
 */
export function startOutboxThread(data: OutboxThreadData, o: { logger: Logger; entry?: URL; preload?: boolean }): OutboxControl & { loaded: Promise<void> } {
  const entry = o.entry ?? new URL('../outbox-thread.js', import.meta.url);
  let thread: Worker | undefined;
  let started = false;
  let stopping = false;
  let wakePending = false;
  let markLoaded!: () => void;
  const loaded = new Promise<void>((resolve) => (markLoaded = resolve));
  const spawn = (): void => {
    // A small young generation: the thread's garbage is small and short-lived; the default lets each isolate keep 32 MB for it.
    const t = new Worker(entry, { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: 8 } });
    thread = t;
    if (started) t.postMessage('start');
    t.on('message', (message: unknown) => {
      if (message === 'loaded') markLoaded();
    });
    t.on('error', (err) => o.logger.error({ err }, 'outbox thread failed'));
    t.on('exit', (code) => {
      // A thread that failed to load holds nothing up; it is started again below.
      markLoaded();
      if (stopping || thread !== t) return;
      o.logger.error({ code }, 'outbox thread exited; restarting in 1 s');
      // A queued row is durable: a restarted thread picks it up, including one left mid-send.
      setTimeout(() => {
        if (!stopping) spawn();
      }, 1000).unref();
    });
  };
  // Loaded now, started later: the thread's code is compiled while the server starts, so the
  // first deliveries do not wait for it (half a second on a busy machine).
  if (o.preload === true) spawn();
  return {
    loaded,
    start() {
      if (started) return;
      started = true;
      if (thread === undefined) spawn();
      else thread.postMessage('start');
    },
    wake() {
      // One message per turn of the event loop, however many requests queued mail in it.
      if (wakePending || thread === undefined) return;
      wakePending = true;
      setImmediate(() => {
        wakePending = false;
        thread?.postMessage('wake');
      });
    },
    async stop() {
      stopping = true;
      const t = thread;
      if (t === undefined) return;
      const exited = new Promise<void>((resolve) => t.once('exit', () => resolve()));
      t.postMessage('stop');
      // Room for the send under way, well inside the server's 10 s shutdown bound; then the thread is cut off.
      await Promise.race([exited, new Promise((r) => setTimeout(r, OUTBOX_STOP_MS).unref())]);
      await t.terminate();
    },
  };
}

export async function createMailRuntime(o: {
  config: Config;
  logger: Logger;
  clock: Clock;
  random: Random;
  env: Record<string, string | undefined>;
  /** only the server runs the dev mailbox and the worker; a one-off command never starts them */
  role: 'server' | 'command';
}): Promise<MailRuntime> {
  // smtp-server and mailparser are loaded only when the dev mailbox runs (never in production).
  const devInbox =
    o.role === 'server' && devInboxWanted(o.config) ? await (await import('./dev-inbox.js')).startDevInbox({ clock: o.clock, random: o.random }) : undefined;
  const server = o.role === 'server';
  const worker = startOutboxThread({ env: { ...o.env }, devInboxPort: devInbox?.port }, { logger: o.logger, preload: server });
  // The server listens once its delivery thread has its code loaded: the first deliveries go out
  // as soon as they are queued, not half a second later.
  if (server) await worker.loaded;
  return {
    worker,
    devInbox,
    async close() {
      await worker.stop();
      await devInbox?.close();
    },
  };
}
