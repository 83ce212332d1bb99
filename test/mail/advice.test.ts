import { describe, expect, it } from 'vitest';
import { advise, handshakeSituation, providersOf, refusalAdvice, signInAdvice, type Situation } from '../../src/mail/advice.js';
import { isNotTls } from '../../src/mail/tls-probe.js';
import { PLAIN_ON_465_HINT } from './fixtures.js';

const NAMES = { emailSecretName: 'smtp-from', passwordSecretName: 'smtp-password' };

describe('signInAdvice: a refused sign-in, by the reply and the configured host', () => {
  const rows: { reply: string; host?: string; afterAuth?: boolean; hint: RegExp }[] = [
    { reply: '535 5.7.8 Username and Password not accepted. For more information, go to https://support.google.com/mail/?p=BadCredentials', host: 'mail.example.com', hint: /^Gmail does not take the account's normal password.*App Password/ },
    { reply: '535 5.7.8 Authentication credentials invalid', host: 'smtp.gmail.com', hint: /^Gmail does not take .*2-Step Verification/ },
    { reply: '534 5.7.9 Application-specific password required', host: 'smtp.googlemail.com', hint: /myaccount\.google\.com\/apppasswords/ },
    { reply: '550 5.7.14 Please log in with your web browser and then try again', host: 'smtp.gmail.com', afterAuth: true, hint: /^Google blocked this sign-in/ },
    { reply: '535 5.7.139 Authentication unsuccessful, basic authentication is disabled.', host: 'smtp.office365.com', hint: /basic authentication .* turned off for this tenant/ },
    { reply: '530 5.7.57 Client not authenticated to send mail.', host: 'mail.example.com', afterAuth: false, hint: /turn on Authenticated SMTP for the mailbox/ },
    { reply: '535 5.7.3 Authentication unsuccessful', host: 'smtp.office365.com', hint: /SMTP AUTH is turned off for this mailbox, or the password is wrong/ },
    { reply: '454 4.7.0 Too many login attempts, please try again later.', afterAuth: true, hint: /^The server refused the sign-in for now .*try again in a few minutes/ },
    { reply: '535 5.7.8 Authentication credentials invalid', host: 'mail.example.com', hint: /^The server says the user name or password is wrong/ },
    { reply: '535 Incorrect authentication data', host: 'mail.example.com', hint: /^The server says the user name or password is wrong/ },
    { reply: '530 Authentication required', host: 'relay.example.com', afterAuth: false, hint: /set a password secret name on the Settings page/ },
    {
      reply: '500 Unrecognised command',
      host: 'smtp.office365.com',
      afterAuth: true,
      hint: /^Check the password in the secret "smtp-password" and that the sender address in "smtp-from" is the account's user name\. On Microsoft 365, Authenticated SMTP must be on/,
    },
    { reply: '500 Unrecognised command', host: 'mail.example.com', afterAuth: true, hint: /^Check the password in the secret "smtp-password" and that the sender address in "smtp-from" is the account's user name\.$/ },
  ];
  for (const row of rows) {
    it(`${row.reply} (${row.host ?? 'mail.example.com'}) → auth_failed, ${row.hint.source.slice(0, 40)}…`, () => {
      const advice = signInAdvice(row.reply, row.host ?? 'mail.example.com', NAMES, { afterAuth: row.afterAuth ?? true });
      expect(advice?.error).toBe('auth_failed');
      expect(advice?.hint).toMatch(row.hint);
    });
  }

  it('leaves a reply that is not about signing in to the other tables, unless AUTH itself failed', () => {
    expect(signInAdvice('550 5.1.1 No such user', 'smtp.gmail.com', NAMES, { afterAuth: false })).toBeUndefined();
    expect(signInAdvice('554 5.7.1 Message rejected as spam', 'mail.example.com', NAMES, { afterAuth: false })).toBeUndefined();
    expect(signInAdvice('554 5.7.1 Message rejected as spam', 'mail.example.com', NAMES, { afterAuth: true })?.error).toBe('auth_failed');
  });

});

describe('providersOf: who runs the server, by the configured host or by what it says', () => {
  const rows: { host: string; reply: string; providers: string[] }[] = [
    { host: 'smtp.gmail.com', reply: '535 5.7.8 bad', providers: ['google'] },
    { host: 'relay.example.com', reply: '535 5.7.8 https://support.google.com/mail/?p=BadCredentials', providers: ['google'] },
    { host: 'smtp.office365.com', reply: '535 5.7.8 bad', providers: ['microsoft'] },
    { host: 'relay.example.com', reply: '530 5.7.57 Client not authenticated', providers: ['microsoft'] },
    { host: 'notgmail.com', reply: '535 bad', providers: [] },
  ];
  for (const row of rows) {
    it(`${row.host} saying "${row.reply}" → ${row.providers.join(', ') || 'no known provider'}`, () => {
      expect(providersOf(row.host, row.reply)).toEqual(row.providers);
    });
  }
});

describe('refusalAdvice: a refused envelope or message', () => {
  const rows: { command: string; reply: string; error?: string; responseCode?: number; refused: string; hint: RegExp }[] = [
    { command: 'MAIL FROM', reply: '550 5.7.60 SMTP; Client does not have permissions to send as this sender', responseCode: 550, refused: 'sender', hint: /^The account may not send as this address: the email secret "smtp-from"/ },
    { command: 'DATA', reply: '554 5.2.252 SendAsDenied; alerts@example.com not allowed to send as boss@example.com', responseCode: 554, refused: 'sender', hint: /^The account may not send as/ },
    { command: 'MAIL FROM', reply: '451 4.7.1 Sender address rejected: try again later', responseCode: 451, refused: 'sender', hint: /^This is temporary: try again in a few minutes\. The account may not send as/ },
    { command: 'RCPT TO', reply: '550 5.1.1 The email account that you tried to reach does not exist.', responseCode: 550, refused: 'recipient', hint: /^The address may not exist.*relay/ },
    { command: 'the envelope', reply: "Can't send mail - all recipients were rejected", error: "Can't send mail - all recipients were rejected", refused: 'recipient', hint: /^The address may not exist/ },
    { command: 'DATA', reply: '554 5.7.1 Message rejected as spam', responseCode: 554, refused: 'message', hint: /^A content or policy filter refused it/ },
    { command: 'DATA', reply: '452 4.3.1 Insufficient system storage', responseCode: 452, refused: 'message', hint: /^This is temporary: try again in a few minutes\. A content or policy filter/ },
  ];
  for (const row of rows) {
    it(`${row.reply} at ${row.command} → rejected (${row.refused})`, () => {
      const advice = refusalAdvice({ command: row.command, reply: row.reply, error: row.error ?? row.reply, responseCode: row.responseCode }, NAMES);
      expect(advice).toMatchObject({ error: 'rejected', refused: row.refused });
      expect(advice.hint).toMatch(row.hint);
    });
  }
});

describe('handshakeSituation and its advice: a failed TLS handshake, by code or message', () => {
  const rows: { code: string; message?: string; situation: Situation; hint: RegExp }[] = [
    { code: 'DEPTH_ZERO_SELF_SIGNED_CERT', situation: 'certificate-untrusted', hint: /NODE_EXTRA_CA_CERTS=.*never turned off/ },
    { code: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', situation: 'certificate-untrusted', hint: /unknown CA/ },
    { code: 'SELF_SIGNED_CERT_IN_CHAIN', situation: 'certificate-untrusted', hint: /intercepting TLS/ },
    { code: 'CERT_HAS_EXPIRED', situation: 'certificate-expired', hint: /renewed by its admin/ },
    { code: 'CERT_NOT_YET_VALID', situation: 'certificate-not-yet-valid', hint: /clock is wrong/ },
    { code: 'ERR_TLS_CERT_ALTNAME_INVALID', situation: 'certificate-name-mismatch', hint: /^Use the host name the certificate was issued for/ },
    { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', situation: 'tls-too-old', hint: /^Upgrade the mail server's TLS configuration/ },
    { code: 'ERROR', message: 'error:0A000102:SSL routines::unsupported protocol', situation: 'tls-too-old', hint: /another relay/ },
    { code: 'ETIMEDOUT', situation: 'tls-timeout', hint: /did not complete TLS/ },
    { code: 'ECONNRESET', message: 'socket hang up', situation: 'tls-handshake-failed', hint: /^Check that the port and the SSL setting match the server/ },
  ];
  for (const row of rows) {
    it(`${row.code}${row.message ? ` "${row.message}"` : ''} → tls_failed (${row.situation})`, () => {
      expect(handshakeSituation(row.code, row.message ?? '')).toBe(row.situation);
      expect(advise(row.situation)).toMatchObject({ error: 'tls_failed', hint: expect.stringMatching(row.hint) });
    });
  }
});

describe('isNotTls: the peer answered a ClientHello with something else ("wrong version number" and friends)', () => {
  const rows: { error: { code?: string; message?: string }; notTls: boolean }[] = [
    { error: { code: 'ERR_SSL_WRONG_VERSION_NUMBER', message: 'wrong version number' }, notTls: true },
    { error: { message: 'error:0A00010B:SSL routines::wrong version number' }, notTls: true },
    { error: { code: 'ERR_SSL_PACKET_LENGTH_TOO_LONG' }, notTls: true },
    { error: { code: 'ERR_SSL_HTTP_REQUEST' }, notTls: true },
    { error: { code: 'ECONNRESET' }, notTls: true },
    { error: { message: 'Client network socket disconnected before secure TLS connection was established' }, notTls: true },
    { error: { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }, notTls: false },
    { error: { code: 'ETIMEDOUT' }, notTls: false },
  ];
  for (const row of rows) {
    it(`${row.error.code ?? row.error.message} → ${row.notTls ? 'not TLS' : 'TLS, with a problem'}`, () => {
      expect(isNotTls(row.error)).toBe(row.notTls);
    });
  }
});

describe('advise: the conditions a probe meets before any reply', () => {
  const rows: { situation: Situation; facts?: Record<string, string | number>; error: string; hint: RegExp }[] = [
    { situation: 'no-auth-offered', error: 'auth_failed', hint: /a relay.*leave the password secret name empty/ },
    { situation: 'plain-smtp-on-implicit-port', facts: { port: 465 }, error: 'tls_failed', hint: new RegExp(`^${PLAIN_ON_465_HINT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) },
    { situation: 'implicit-tls-on-starttls-port', error: 'tls_failed', hint: /^This port expects TLS from the first byte — set TLS mode to "Implicit TLS"/ },
    { situation: 'implicit-tls-with-ssl-off', error: 'tls_failed', hint: /turn SSL on and set TLS mode to "Implicit TLS"/ },
    { situation: 'no-starttls', error: 'tls_failed', hint: /587 \(STARTTLS\) or 465 \(implicit TLS\)/ },
    { situation: 'no-starttls-for-password', error: 'tls_failed', hint: /^Turn SSL on/ },
    { situation: 'starttls-refused', error: 'tls_failed', hint: /TLS configuration/ },
    { situation: 'not-smtp', error: 'connect_failed', hint: /^Something answers on this port, but it is not a mail server/ },
    { situation: 'connect-refused', error: 'connect_failed', hint: /587 for STARTTLS, 465 for implicit TLS, 25 for a relay/ },
    { situation: 'connect-timeout', error: 'connect_failed', hint: /firewall/ },
    { situation: 'greeting-refused', error: 'connect_failed', hint: /blocked or not allowed to send/ },
    { situation: 'host-not-found', error: 'dns_failed', hint: /smtp\.office365\.com/ },
    { situation: 'secret-missing:env', facts: { name: 'smtp-password', envVariable: 'GATEHOUSE_SECRET_SMTP_PASSWORD' }, error: 'secret_not_found', hint: /^Set the environment variable GATEHOUSE_SECRET_SMTP_PASSWORD / },
    { situation: 'secret-missing:local', facts: { name: 'smtp-password' }, error: 'secret_not_found', hint: /gatehouse secrets set smtp-password/ },
    { situation: 'secret-outside-pattern', facts: { pattern: '^(smtp|mail)-' }, error: 'secret_not_found', hint: /MAIL_SECRET_NAME_PATTERN \(\^\(smtp\|mail\)-\)/ },
    { situation: 'settings-not-saved', error: 'not_configured', hint: /^Open Settings/ },
  ];
  for (const row of rows) {
    it(`${row.situation} → ${row.error}`, () => {
      const advice = advise(row.situation, row.facts);
      expect(advice.error).toBe(row.error);
      expect(advice.hint).toMatch(row.hint);
      expect(advice.hint).not.toMatch(/\{\w+\}/);
    });
  }
});
