import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createDb, type Db } from '../../src/db/index.js';
import { createLogger } from '../../src/logger.js';
import { startOutboxThread, type OutboxControl } from '../../src/mail/index.js';
import { enqueueDelivery } from '../../src/mail/outbox.js';
import { normalizeEmailSettings, saveEmailSettings } from '../../src/mail/settings.js';
import { addUser, makeTestApp, type TestContext } from '../helpers/app.js';
import { assertBuilt } from '../helpers/cli.js';

// MAIL_POOL_SIZE: how many SMTP connections the delivery worker keeps open, each sending one
// message at a time. The worker keeps every one of them busy.

describe('MAIL_POOL_SIZE', () => {
  const problemOf = (value: string): string[] => {
    try {
      loadConfig({ MAIL_POOL_SIZE: value });
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems;
    }
    throw new Error(`MAIL_POOL_SIZE=${value} was taken`);
  };

  it('is 3 unless set: Exchange Online takes at most 3 submissions at once per mailbox', () => {
    expect(loadConfig({}).mailPoolSize).toBe(3);
    expect(loadConfig({ MAIL_POOL_SIZE: ' ' }).mailPoolSize).toBe(3);
  });

  it('takes a whole number from 1 to 50', () => {
    expect(loadConfig({ MAIL_POOL_SIZE: '1' }).mailPoolSize).toBe(1);
    expect(loadConfig({ MAIL_POOL_SIZE: '10' }).mailPoolSize).toBe(10);
    expect(loadConfig({ MAIL_POOL_SIZE: '50' }).mailPoolSize).toBe(50);
  });

  it.each(['0', '51', '2.5', '-3', 'ten', '1e1'])('refuses %j with a message that names the range', (value) => {
    expect(problemOf(value)).toEqual([`MAIL_POOL_SIZE must be a whole number from 1 to 50 (got "${value}")`]);
  });
});

/** An SMTP server on loopback (no TLS, no AUTH) that takes 40 ms per message and counts the connections open at once. */
async function startSlowSmtpServer(): Promise<{ port: number; received: number; opened: number; mostAtOnce: number; close(): Promise<void> }> {
  const state = { received: 0, opened: 0, open: 0, mostAtOnce: 0 };
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    closeTimeout: 50,
    onConnect(_session, callback) {
      state.opened++;
      state.open++;
      state.mostAtOnce = Math.max(state.mostAtOnce, state.open);
      callback();
    },
    onClose() {
      state.open--;
    },
    onData(stream, _session, callback) {
      stream.resume();
      stream.on('end', () =>
        setTimeout(() => {
          state.received++;
          callback();
        }, 40),
      );
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.server.address() as AddressInfo).port,
    get received() {
      return state.received;
    },
    get opened() {
      return state.opened;
    },
    get mostAtOnce() {
      return state.mostAtOnce;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('the delivery thread with MAIL_POOL_SIZE', () => {
  const closers: (() => Promise<void> | void)[] = [];
  let ctx: TestContext | undefined;
  let thread: OutboxControl | undefined;
  afterEach(async () => {
    await thread?.stop();
    await ctx?.close();
    for (const close of closers.splice(0).reverse()) await close();
    thread = undefined;
    ctx = undefined;
  });

  async function sendThroughThread(poolSize: string | undefined, emails: number): Promise<{ opened: number; mostAtOnce: number }> {
    const smtp = await startSlowSmtpServer();
    closers.push(smtp.close);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gatehouse-pool-size-'));
    closers.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'gatehouse.sqlite');
    const db: Db = createDb({ kind: 'sqlite', file });
    thread = startOutboxThread(
      {
        env: { DATABASE_URL: `sqlite:${file}`, SECRETS_PROVIDER: 'env', MAIL_DEV_INBOX: 'false', LOG_LEVEL: 'silent', ...(poolSize === undefined ? {} : { MAIL_POOL_SIZE: poolSize }) },
        devInboxPort: undefined,
      },
      { logger: createLogger('silent'), entry: new URL('../../dist/outbox-thread.js', import.meta.url) },
    );
    ctx = await makeTestApp({ db, deps: { clock: systemClock, outbox: thread } });
    await saveEmailSettings(
      db,
      systemClock,
      normalizeEmailSettings({ host: '127.0.0.1', port: smtp.port, sslEnabled: false, senderAddress: 'sender@example.com', emailSecretName: null, passwordSecretName: null }),
      null,
    );
    const users = await Promise.all(Array.from({ length: 10 }, (_, i) => addUser(ctx!, { email: `pool.${i}@example.com` })));
    const nowMs = Date.now();
    for (let i = 0; i < emails; i++) {
      await enqueueDelivery(db, ctx.deps.random, { kind: 'reset', userId: null, lookupEmail: users[i % users.length]!.email, toAddress: null, nowMs, notAfterMs: nowMs + 3_600_000 });
    }
    thread.start();
    thread.wake();
    const deadline = Date.now() + 20_000;
    while (smtp.received < emails && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(smtp.received).toBe(emails);
    return { opened: smtp.opened, mostAtOnce: smtp.mostAtOnce };
  }

  it('opens MAIL_POOL_SIZE connections, all sending at once, and no more', { timeout: 30_000 }, async () => {
    assertBuilt();
    expect(await sendThroughThread('5', 40)).toEqual({ opened: 5, mostAtOnce: 5 });
  });

  it('opens 3 by default', { timeout: 30_000 }, async () => {
    assertBuilt();
    expect(await sendThroughThread(undefined, 24)).toEqual({ opened: 3, mostAtOnce: 3 });
  });
});
