import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import { createDb, migrateToLatest } from '../../src/db/index.js';
import { createLogger } from '../../src/logger.js';
import { chooseMailer, startOutboxThread, type OutboxControl } from '../../src/mail/index.js';
import { saveEmailSettings } from '../../src/mail/settings.js';
import { createConfiguredMailer, MailSendError } from '../../src/mail/transport.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import type { SecretStore } from '../../src/secrets/store.js';
import { addUser, makeTestApp, type TestContext } from '../helpers/app.js';
import { assertBuilt } from '../helpers/cli.js';
import { NOT_SMTP_BANNERS, SENDER, settingsFor, startBannerServer } from './fixtures.js';

const OTHER_SECRET = 'the billing database password';

/** A store that also holds a secret that is not for mail, and counts every read by name. */
function countingStore(): { store: SecretStore; reads: string[] } {
  const inner = createMemorySecretStore({ 'smtp-from': SENDER, 'smtp-password': 'smtp-pass', 'billing-db-password': OTHER_SECRET });
  const reads: string[] = [];
  return { reads, store: { ...inner, get: async (name) => (reads.push(name), inner.get(name)) } };
}

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const MESSAGE = { to: 'jane@example.com', subject: 'Reset your password', text: 'x', html: '<p>x</p>' };

describe('sending mail with a secret outside MAIL_SECRET_NAME_PATTERN', () => {
  it('fails like a missing secret (not_configured, retried) without reading it or connecting anywhere', async () => {
    // Were it reached, it would end the session at once: the test fails fast, not by a timeout.
    const server = await startBannerServer(() => '554 5.3.2 smtp.attacker.example closing\r\n');
    closers.push(server.close);
    const { store, reads } = countingStore();
    const mailer = createConfiguredMailer(async () => settingsFor(server, { passwordSecretName: 'billing-db-password' }), store, { secretNamePattern: /^(smtp|mail)-/ });
    closers.push(() => mailer.close());
    const failure = await mailer.send(MESSAGE).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(failure).toBeInstanceOf(MailSendError);
    expect(failure).toMatchObject({ code: 'not_configured', transient: true });
    expect((failure as Error).message).toBe('secret "billing-db-password" was not read: its name does not match MAIL_SECRET_NAME_PATTERN (^(smtp|mail)-)');
    expect(reads).toEqual([]);
    expect(server.connections).toBe(0);
  });

  it('chooseMailer gives the SMTP mailer the pattern of the Config it is given', async () => {
    const db = createDb({ kind: 'sqlite', file: ':memory:' });
    closers.push(() => db.destroy());
    await migrateToLatest(db);
    await saveEmailSettings(db, systemClock, settingsFor({ host: '127.0.0.1', port: 1 }), null);
    const { store, reads } = countingStore();
    const mailers = chooseMailer({ db, secrets: store, config: loadConfig({ MAIL_SECRET_NAME_PATTERN: '^outbound-', MAIL_DEV_INBOX: 'false' }), devInboxMailer: undefined });
    closers.push(() => mailers.close());
    const mailer = await mailers.mailer();
    await expect(mailer.send(MESSAGE)).rejects.toThrow('secret "smtp-from" was not read: its name does not match MAIL_SECRET_NAME_PATTERN (^outbound-)');
    expect(reads).toEqual([]);
  });

  it('never quotes a peer that does not speak SMTP in the delivery error', async () => {
    const server = await startBannerServer(() => NOT_SMTP_BANNERS.ssh.banner);
    closers.push(server.close);
    const mailer = createConfiguredMailer(async () => settingsFor(server, { sslEnabled: false, passwordSecretName: null }), countingStore().store);
    closers.push(() => mailer.close());
    const failure = (await mailer.send(MESSAGE).catch((err: unknown) => err)) as MailSendError;
    expect(failure).toBeInstanceOf(MailSendError);
    expect(failure).toMatchObject({ code: 'connect_failed', message: 'the server does not speak SMTP' });
  });
});

describe('the delivery worker thread', () => {
  let ctx: TestContext | undefined;
  let thread: OutboxControl | undefined;
  afterEach(async () => {
    await thread?.stop();
    await ctx?.close();
    thread = undefined;
    ctx = undefined;
  });

  it('loads MAIL_SECRET_NAME_PATTERN with the rest of the Config: a name outside it is not read and nothing is sent', { timeout: 30_000 }, async () => {
    assertBuilt();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-mail-thread-'));
    closers.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    // A mail server that would take anything: the thread must not get as far as connecting to it.
    const server = await startBannerServer(() => '220 relay.example ESMTP\r\n');
    closers.push(server.close);
    const file = path.join(dir, 'gatehouse.sqlite');
    const db = createDb({ kind: 'sqlite', file });
    thread = startOutboxThread(
      {
        env: {
          DATABASE_URL: `sqlite:${file}`,
          SECRETS_PROVIDER: 'env',
          GATEHOUSE_SECRET_SMTP_FROM: SENDER,
          MAIL_SECRET_NAME_PATTERN: '^outbound-',
          MAIL_DEV_INBOX: 'false',
          LOG_LEVEL: 'silent',
        },
        devInboxPort: undefined,
      },
      { logger: createLogger('silent'), entry: new URL('../../dist/outbox-thread.js', import.meta.url) },
    );
    ctx = await makeTestApp({ db, deps: { clock: systemClock, outbox: thread } });
    await addUser(ctx, { email: 'jane@example.com' });
    await saveEmailSettings(db, systemClock, settingsFor(server, { sslEnabled: false, passwordSecretName: null }), null);
    thread.start();
    const res = await ctx.app.inject({ method: 'POST', url: '/api/auth/forgot-password', payload: { email: 'jane@example.com' } });
    expect(res.statusCode).toBe(202);
    let row: { status: string; last_error: string | null } | undefined;
    for (let i = 0; i < 200 && row?.last_error == null; i++) {
      thread.wake();
      await new Promise((r) => setTimeout(r, 100));
      row = await db.selectFrom('mail_outbox').select(['status', 'last_error']).where('to_address', '=', 'jane@example.com').executeTakeFirst();
    }
    expect(row).toMatchObject({ status: 'retrying', last_error: 'not_configured: secret "smtp-from" was not read: its name does not match MAIL_SECRET_NAME_PATTERN (^outbound-)' });
    expect(server.connections).toBe(0);
  });
});
