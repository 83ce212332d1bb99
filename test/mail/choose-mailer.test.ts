import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { loadConfig } from '../../src/config.js';
import { createDb, migrateToLatest } from '../../src/db/index.js';
import { chooseMailer } from '../../src/mail/index.js';
import { saveEmailSettings } from '../../src/mail/settings.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { SECRETS, settingsFor, startSmtp } from './fixtures.js';

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A loopback relay that takes mail without TLS or AUTH. */
async function relay(): ReturnType<typeof startSmtp> {
  const server = await startSmtp({ smtp: { disabledCommands: ['STARTTLS', 'AUTH'], authOptional: true } });
  closers.push(server.close);
  return server;
}

describe('chooseMailer', () => {
  it('sends each message with the settings read when its mailer was chosen, even when two sends run at once', async () => {
    const db = createDb({ kind: 'sqlite', file: ':memory:' });
    closers.push(() => db.destroy());
    await migrateToLatest(db);
    const [first, second] = [await relay(), await relay()];
    const mailers = chooseMailer({ db, secrets: createMemorySecretStore(SECRETS), config: loadConfig({ MAIL_DEV_INBOX: 'false' }), devInboxMailer: undefined });
    closers.push(() => mailers.close());
    const relayOnly = { sslEnabled: false, passwordSecretName: null };

    await saveEmailSettings(db, systemClock, settingsFor(first, relayOnly), null);
    const before = await mailers.mailer();
    // An admin saves other settings while the first message is on its way.
    await saveEmailSettings(db, systemClock, settingsFor(second, relayOnly), null);
    const after = await mailers.mailer();
    await Promise.all([
      before.send({ to: 'one@example.com', subject: 'first', text: 'x', html: '<p>x</p>' }),
      after.send({ to: 'two@example.com', subject: 'second', text: 'x', html: '<p>x</p>' }),
    ]);

    expect(first.messages.map((m) => m.parsed.subject)).toEqual(['first']);
    expect(second.messages.map((m) => m.parsed.subject)).toEqual(['second']);
  });
});
