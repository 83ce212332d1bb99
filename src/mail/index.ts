import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Db } from '../db/index.js';
import type { Random } from '../random.js';
import type { SecretStore } from '../secrets/store.js';
import type { DeliveryKind } from '../db/schema.js';
import type { DevInbox } from './dev-inbox.js';
import { createOutboxWorker, type DeliveryHandler, type OutboxWorker, type OutboxWorkerOptions } from './outbox.js';
import { findEmailSettings } from './settings.js';
import { createSmtpMailer, MailNotConfiguredError, type Mailer } from './transport.js';

export interface MailRuntime {
  worker: OutboxWorker;
  devInbox: DevInbox | undefined;
  close(): Promise<void>;
}

/** Whether the dev mailbox runs at all: never in production; MAIL_DEV_INBOX=false turns it off. */
export function devInboxWanted(config: Config): boolean {
  return !config.production && config.mailDevInbox !== false;
}

/**
 * Chooses the sender for each message: the dev mailbox when forced on, else SMTP once email
 * settings are saved, else the dev mailbox while it runs, else nothing (the delivery retries).
 */
export async function createMailRuntime(o: {
  db: Db;
  clock: Clock;
  random: Random;
  secrets: SecretStore;
  config: Config;
  logger: Logger;
  handlers: Record<DeliveryKind, DeliveryHandler>;
  worker?: Partial<OutboxWorkerOptions>;
  devInbox: boolean;
}): Promise<MailRuntime> {
  // smtp-server and mailparser are loaded only when the dev mailbox runs (never in production).
  const devInbox = o.devInbox && devInboxWanted(o.config) ? await (await import('./dev-inbox.js')).startDevInbox({ clock: o.clock, random: o.random }) : undefined;
  const smtp = createSmtpMailer(() => findEmailSettings(o.db), o.secrets);
  const mailer = async (): Promise<Mailer> => {
    if (devInbox !== undefined && o.config.mailDevInbox === true) return devInbox.mailer;
    if ((await findEmailSettings(o.db)) !== undefined) return smtp;
    if (devInbox !== undefined) return devInbox.mailer;
    throw new MailNotConfiguredError('email settings are not saved');
  };
  const worker = createOutboxWorker({ db: o.db, clock: o.clock, logger: o.logger, mailer, handlers: o.handlers, ...o.worker });
  return {
    worker,
    devInbox,
    async close() {
      await worker.stop();
      smtp.close();
      await devInbox?.close();
    },
  };
}
