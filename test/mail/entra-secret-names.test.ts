import { describe, expect, it } from 'vitest';
import { diagnoseEmail } from '../../src/mail/diagnose.js';
import { normalizeEmailSettings } from '../../src/mail/settings.js';
import { createConfiguredMailer, credentialForms, MailSendError, scrub } from '../../src/mail/transport.js';
import type { MailCredentials } from '../../src/mail/sender-secrets.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import type { SecretStore } from '../../src/secrets/store.js';

// The Entra ID app's secrets obey the same rules as the SMTP password: a name outside
// MAIL_SECRET_NAME_PATTERN is never read, and what a server says is never stored with a secret or
// a token in it.

const OTHER_SECRET = 'the billing database password';

function countingStore(): { store: SecretStore; reads: string[] } {
  const inner = createMemorySecretStore({ 'billing-db-password': OTHER_SECRET, 'billing-cert': OTHER_SECRET, 'mail-from': 'alerts@contoso.example' });
  const reads: string[] = [];
  return { reads, store: { ...inner, get: async (name) => (reads.push(name), inner.get(name)) } };
}

// Saved before MAIL_SECRET_NAME_PATTERN was narrowed (PUT refuses these names today).
const saved = [
  normalizeEmailSettings({ transport: 'graph', senderAddress: 'alerts@contoso.example', tenantId: 'contoso.onmicrosoft.com', clientId: 'c0ffee00-1234-4abc-8def-0123456789ab', entraCredential: 'client-secret', clientSecretName: 'billing-db-password' }),
  normalizeEmailSettings({ transport: 'smtp-oauth2', host: 'smtp.office365.com', emailSecretName: 'mail-from', tenantId: 'contoso.onmicrosoft.com', clientId: 'c0ffee00-1234-4abc-8def-0123456789ab', entraCredential: 'certificate', certificateName: 'billing-cert' }),
];

describe('client secret and certificate names outside MAIL_SECRET_NAME_PATTERN', () => {
  for (const settings of saved) {
    const name = settings.clientSecretName ?? settings.certificateName!;
    it(`${settings.transport}: "${name}" is never read, by the sender or by the check`, async () => {
      const { store, reads } = countingStore();
      const mailer = createConfiguredMailer(async () => settings, store, { secretNamePattern: /^(smtp|mail)-/ });
      const sent = await mailer.send({ to: 'x@example.com', subject: 's', text: 't', html: '<p>h</p>' }).then(
        () => undefined,
        (err: unknown) => err,
      );
      mailer.close();
      expect(sent).toBeInstanceOf(MailSendError);
      expect((sent as MailSendError).code).toBe('not_configured');
      expect((sent as MailSendError).message).toContain('MAIL_SECRET_NAME_PATTERN');

      const result = await diagnoseEmail({ settings, secrets: store, secretNamePattern: /^(smtp|mail)-/, to: 'x@example.com' });
      expect(result).toMatchObject({ ok: false, error: 'secret_not_found' });
      expect(result.stages.find((s) => s.outcome === 'failed')?.name).toBe('secrets');
      expect(reads).not.toContain(name);
      expect(JSON.stringify(result)).not.toContain(OTHER_SECRET);
    });
  }
});

describe('what a server says is scrubbed of the token and the client secret', () => {
  it('blanks the access token, its XOAUTH2 form and the client secret in any reply', () => {
    const credentials: MailCredentials = { from: 'alerts@contoso.example', user: 'alerts@contoso.example', pass: null, entra: { kind: 'client-secret', secret: 'Qx8~the-client-secret' } };
    const token = 'eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.payload.signature';
    const xoauth2 = Buffer.from(`user=${credentials.user}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
    const reply = `535 5.7.3 Authentication unsuccessful [${xoauth2}] token=${token} secret=Qx8~the-client-secret`;
    const clean = scrub(reply, credentialForms(credentials, token));
    expect(clean).toBe('535 5.7.3 Authentication unsuccessful [[redacted]] token=[redacted] secret=[redacted]');
  });
});
