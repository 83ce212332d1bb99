import { afterEach, describe, expect, it } from 'vitest';
import { diagnoseEmail } from '../../src/mail/diagnose.js';
import { readSenderSecrets } from '../../src/mail/sender-secrets.js';
import { createConfiguredMailer, MailSendError } from '../../src/mail/transport.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { PASSWORD, RECIPIENT, SENDER, settingsFor, startBannerServer } from './fixtures.js';

const MAIL_SECRETS = /^(smtp|mail)-/;
const MESSAGE = { to: RECIPIENT, subject: 'Reset your password', text: 'x', html: '<p>x</p>' };

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const BLANK_CASES = [
  { what: 'an empty password secret', secrets: { 'smtp-from': SENDER, 'smtp-password': '' }, name: 'smtp-password', holds: 'password', label: 'the password' },
  { what: 'a password secret of white space only', secrets: { 'smtp-from': SENDER, 'smtp-password': ' \n' }, name: 'smtp-password', holds: 'password', label: 'the password' },
  { what: 'an email secret of white space only', secrets: { 'smtp-from': '  \t', 'smtp-password': PASSWORD }, name: 'smtp-from', holds: 'address', label: 'the sender address' },
] as const;

describe('the transport and the staged check read the sender secrets alike', () => {
  for (const c of BLANK_CASES) {
    it(`both treat ${c.what} as not found, and neither connects`, async () => {
      // Any connection would be refused at once, so a path that got this far fails fast, not by a timeout.
      const server = await startBannerServer(() => '554 5.3.2 not taking mail\r\n');
      closers.push(server.close);
      const settings = settingsFor(server, { sslEnabled: false });
      const secrets = createMemorySecretStore(c.secrets);

      expect(await readSenderSecrets(settings, secrets, MAIL_SECRETS)).toEqual({ ok: false, problem: 'missing', name: c.name, holds: c.holds });

      const mailer = createConfiguredMailer(async () => settings, secrets, { secretNamePattern: MAIL_SECRETS });
      closers.push(() => mailer.close());
      const sent = await mailer.send(MESSAGE).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(sent).toBeInstanceOf(MailSendError);
      expect(sent).toMatchObject({ code: 'not_configured', transient: true, message: `secret "${c.name}" was not found` });

      const checked = await diagnoseEmail({ settings, secrets, secretNamePattern: MAIL_SECRETS, to: RECIPIENT });
      expect(checked).toMatchObject({ ok: false, error: 'secret_not_found', message: `The secret "${c.name}" (${c.label}) was not found in the memory secret store.` });
      expect(checked.stages.map((s) => `${s.name}:${s.outcome}`).slice(0, 3)).toEqual(['settings:ok', 'secrets:failed', 'dns:skipped']);

      expect(server.connections).toBe(0);
    });
  }

  it('both use a password that is not blank as it is, surrounding white space included', async () => {
    const settings = settingsFor({ host: '127.0.0.1', port: 1 });
    const secrets = createMemorySecretStore({ 'smtp-from': ` ${SENDER} `, 'smtp-password': ` ${PASSWORD} ` });
    expect(await readSenderSecrets(settings, secrets, MAIL_SECRETS)).toEqual({ ok: true, credentials: { from: SENDER, user: SENDER, pass: ` ${PASSWORD} `, entra: null } });
  });
});
