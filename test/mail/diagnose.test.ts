import { afterEach, describe, expect, it } from 'vitest';
import { diagnoseEmail as diagnoseWith, formatStage, type DiagnoseInput, type DiagnoseResult } from '../../src/mail/diagnose.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { SecretStoreUnavailableError, type SecretStore } from '../../src/secrets/store.js';
import { NOT_SMTP_BANNERS, PASSWORD, RECIPIENT, SECRETS, SENDER, settingsFor, startBannerServer, startSilentServer, startSmtp, trustedCaOrSkip } from './fixtures.js';

const ca = await trustedCaOrSkip('diagnoseEmail');
const trusted = ca ? { key: ca.serverKey, cert: ca.serverCert } : undefined;
const secrets = (): SecretStore => createMemorySecretStore(SECRETS);
const FAST = { connect: 1000, greeting: 600, socket: 2000 };
const MAIL_SECRETS = /^(smtp|mail)-/;
/** diagnoseEmail with the default MAIL_SECRET_NAME_PATTERN unless a test gives another. */
const diagnoseEmail = (input: Omit<DiagnoseInput, 'secretNamePattern'> & { secretNamePattern?: RegExp }): Promise<DiagnoseResult> =>
  diagnoseWith({ secretNamePattern: MAIL_SECRETS, ...input });

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

/** A DNS seam that answers every name with 127.0.0.1 and records what was asked: nothing leaves the machine. */
function loopbackDns(): { lookup: (host: string) => Promise<{ address: string; family: number }>; asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    lookup: async (host) => {
      asked.push(host);
      return { address: '127.0.0.1', family: 4 };
    },
  };
}

function failed(result: DiagnoseResult): Extract<DiagnoseResult, { ok: false }> {
  if (result.ok) throw new Error(`expected a failure, got ${JSON.stringify(result.stages)}`);
  return result;
}

function outcomes(result: DiagnoseResult): string {
  return result.stages.map((s) => `${s.name}:${s.outcome}`).join(' ');
}

describe('diagnoseEmail: DNS (through the lookup seam only)', () => {
  it('reports a host that is not found as dns_failed and never connects', async () => {
    const asked: string[] = [];
    const lookup = async (host: string): Promise<never> => {
      asked.push(host);
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    };
    const result = failed(await diagnoseEmail({ settings: settingsFor({ host: 'smtp.nowhere.example', port: 587 }), secrets: secrets(), to: RECIPIENT, lookup }));
    expect(asked).toEqual(['smtp.nowhere.example']);
    expect(result).toMatchObject({ error: 'dns_failed', message: 'The host smtp.nowhere.example was not found (ENOTFOUND).' });
    expect(result.hint).toMatch(/Check the spelling of the host name/);
    expect(outcomes(result)).toBe('settings:ok secrets:ok dns:failed connect:skipped tls:skipped auth:skipped send:skipped');
  });

  it('gives up on a lookup that never answers after the connect timeout', async () => {
    const started = Date.now();
    const result = failed(
      await diagnoseEmail({ settings: settingsFor({ host: 'smtp.slow.example', port: 587 }), secrets: secrets(), to: RECIPIENT, lookup: () => new Promise(() => {}), timeoutsMs: { ...FAST, connect: 300 } }),
    );
    expect(result.error).toBe('dns_failed');
    expect(result.message).toMatch(/could not be resolved \(ETIMEOUT\)/);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe.skipIf(!ca)('diagnoseEmail: certificates are checked against the configured host name', () => {
  it('connects to the resolved address and accepts a certificate that names the configured host', async () => {
    const server = await startSmtp({ tls: trusted });
    closers.push(server.close);
    const dns = loopbackDns();
    const result = await diagnoseEmail({ settings: settingsFor(server, { host: 'localhost' }), secrets: secrets(), to: RECIPIENT, lookup: dns.lookup });
    expect(outcomes(result)).toBe('settings:ok secrets:ok dns:ok connect:ok tls:ok auth:ok send:ok');
    expect(result.stages[2]!.detail).toBe('localhost → 127.0.0.1');
    expect(dns.asked).toEqual(['localhost']);
    expect(server.messages).toHaveLength(1);
  });

  it('tries every address the name resolves to, in order, and uses the one that answers', async () => {
    const server = await startSmtp({ tls: trusted });
    closers.push(server.close);
    const lookup = async (): Promise<{ address: string; family: number }[]> => [
      { address: '127.0.0.3', family: 4 },
      { address: '127.0.0.1', family: 4 },
    ];
    const result = await diagnoseEmail({ settings: settingsFor(server, { host: 'localhost' }), secrets: secrets(), to: RECIPIENT, lookup });
    expect(outcomes(result)).toBe('settings:ok secrets:ok dns:ok connect:ok tls:ok auth:ok send:ok');
    expect(result.stages[2]!.detail).toBe('localhost → 127.0.0.3, 127.0.0.1');
    expect(result.stages[3]!.detail).toMatch(/^connected to 127\.0\.0\.1:/);
    expect(server.messages).toHaveLength(1);
  });

  it('refuses a certificate for other names and says which names it carries, before any AUTH', async () => {
    const server = await startSmtp({ tls: trusted });
    closers.push(server.close);
    const result = failed(await diagnoseEmail({ settings: settingsFor(server, { host: 'smtp.example.test' }), secrets: secrets(), to: RECIPIENT, lookup: loopbackDns().lookup }));
    expect(result.error).toBe('tls_failed');
    expect(result.message).toBe('The certificate of smtp.example.test is for IP Address:127.0.0.1, DNS:localhost, not smtp.example.test.');
    expect(result.hint).toMatch(/^Use the host name the certificate was issued for/);
    expect(server.auths).toEqual([]);
  });
});

describe('diagnoseEmail: SSL off (opportunistic STARTTLS)', () => {
  it('never sends a password in clear to a host that is not loopback', async () => {
    const server = await startSmtp({ smtp: { disabledCommands: ['STARTTLS'], allowInsecureAuth: true } });
    closers.push(server.close);
    const result = failed(
      await diagnoseEmail({ settings: settingsFor(server, { host: 'relay.example.test', sslEnabled: false }), secrets: secrets(), to: RECIPIENT, lookup: loopbackDns().lookup }),
    );
    expect(result.error).toBe('tls_failed');
    expect(result.message).toBe('relay.example.test:' + server.port + ' does not offer STARTTLS, and Gatehouse never sends a password unencrypted to a host that is not loopback. Nothing was sent.');
    expect(result.hint).toMatch(/leave the password secret name empty/);
    expect(server.auths).toEqual([]);
    expect(server.mailFrom).toEqual([]);
  });

  it('sends without TLS to a non-loopback relay when there is no password, and says the mail is unencrypted', async () => {
    const server = await startSmtp({ smtp: { disabledCommands: ['STARTTLS', 'AUTH'], authOptional: true } });
    closers.push(server.close);
    const result = await diagnoseEmail({
      settings: settingsFor(server, { host: 'relay.example.test', sslEnabled: false, passwordSecretName: null }),
      secrets: secrets(),
      to: RECIPIENT,
      lookup: loopbackDns().lookup,
    });
    expect(outcomes(result)).toBe('settings:ok secrets:ok dns:ok connect:ok tls:ok auth:skipped send:ok');
    expect(result.stages[4]!.detail).toBe('not encrypted: the server offers no STARTTLS; allowed because no password is sent (the mail itself travels unencrypted)');
    expect(server.messages).toHaveLength(1);
  });

  it.skipIf(!ca)('uses STARTTLS when the server offers it, and then still checks the certificate', async () => {
    const server = await startSmtp({ tls: ca ? { key: ca.untrustedKey, cert: ca.untrustedCert } : undefined });
    closers.push(server.close);
    const result = failed(await diagnoseEmail({ settings: settingsFor(server, { sslEnabled: false }), secrets: secrets(), to: RECIPIENT }));
    expect(result.error).toBe('tls_failed');
    expect(result.hint).toMatch(/NODE_EXTRA_CA_CERTS/);
    expect(server.auths).toEqual([]);
  });
});

describe('diagnoseEmail: servers that do not answer', () => {
  for (const sslEnabled of [false, true]) {
    it(`times out on a server that accepts and never greets (SSL ${sslEnabled ? 'on' : 'off'})`, async () => {
      const silent = await startSilentServer();
      closers.push(silent.close);
      const started = Date.now();
      const result = failed(await diagnoseEmail({ settings: settingsFor({ host: '127.0.0.1', port: silent.port }, { sslEnabled }), secrets: secrets(), to: RECIPIENT, timeoutsMs: FAST }));
      expect(result.error).toBe('connect_failed');
      expect(result.message).toBe(`Connected to 127.0.0.1:${silent.port}, but the server sent no SMTP greeting within 0.6 s: timed out.`);
      expect(result.hint).toMatch(/does not speak SMTP/);
      expect(Date.now() - started).toBeLessThan(2500);
    });
  }

  for (const [kind, { banner, telltales }] of Object.entries(NOT_SMTP_BANNERS)) {
    for (const sslEnabled of [true, false]) {
      it(`says "does not speak SMTP" to a ${kind} banner (SSL ${sslEnabled ? 'on' : 'off'}) and shows none of its bytes`, async () => {
        const server = await startBannerServer(() => banner);
        closers.push(server.close);
        const result = failed(await diagnoseEmail({ settings: settingsFor(server, { sslEnabled }), secrets: secrets(), to: RECIPIENT, timeoutsMs: FAST }));
        expect(result.error).toBe('connect_failed');
        expect(result.message).toBe(`127.0.0.1:${server.port} does not speak SMTP.`);
        expect(result.hint).toMatch(/^Something answers on this port, but it is not a mail server\. Check the host and the port\./);
        expect(outcomes(result)).toBe('settings:ok secrets:ok dns:ok connect:failed tls:skipped auth:skipped send:skipped');
        const shown = JSON.stringify(result);
        for (const telltale of telltales) expect(shown).not.toContain(telltale);
      });
    }
  }

  it('says "does not speak SMTP" on port 465 (implicit TLS) too, without the banner', async () => {
    // Port 465 needs root here; 127.0.0.41 is this test's own address.
    const server = await startBannerServer(() => NOT_SMTP_BANNERS.ssh.banner, { host: '127.0.0.41', port: 465 });
    closers.push(server.close);
    const result = failed(await diagnoseEmail({ settings: settingsFor(server), secrets: secrets(), to: RECIPIENT, timeoutsMs: FAST }));
    expect(result.error).toBe('connect_failed');
    expect(result.message).toBe('127.0.0.41:465 does not speak SMTP.');
    for (const telltale of NOT_SMTP_BANNERS.ssh.telltales) expect(JSON.stringify(result)).not.toContain(telltale);
  });

  it('shows nothing of a peer that greets like a mail server for the check but not when the message is sent', async () => {
    // The hand-made steps see SMTP; nodemailer's own connection then meets an SSH server.
    const server = await startBannerServer((n) => (n === 1 ? '220 relay.example ESMTP\r\n' : NOT_SMTP_BANNERS.ssh.banner), {
      replies: (_n, line) => (/^EHLO/i.test(line) ? '250-relay.example\r\n250 8BITMIME\r\n' : /^QUIT/i.test(line) ? '221 bye\r\n' : undefined),
    });
    closers.push(server.close);
    const result = failed(
      await diagnoseEmail({ settings: settingsFor(server, { sslEnabled: false, passwordSecretName: null }), secrets: secrets(), to: RECIPIENT, timeoutsMs: FAST }),
    );
    expect(outcomes(result)).toBe('settings:ok secrets:ok dns:ok connect:ok tls:ok auth:skipped send:failed');
    expect(result.error).toBe('connect_failed');
    expect(result.message).toBe(`127.0.0.1:${server.port} does not speak SMTP.`);
    for (const telltale of NOT_SMTP_BANNERS.ssh.telltales) expect(JSON.stringify(result)).not.toContain(telltale);
    expect(server.connections).toBe(2);
  });

  it('still quotes a mail server that refuses the session in SMTP (554 greeting)', async () => {
    const server = await startBannerServer(() => '554 5.7.1 Client host 127.0.0.1 blocked using zen.spamhaus.org\r\n');
    closers.push(server.close);
    const result = failed(await diagnoseEmail({ settings: settingsFor(server), secrets: secrets(), to: RECIPIENT, timeoutsMs: FAST }));
    expect(result.error).toBe('connect_failed');
    expect(result.message).toBe(`127.0.0.1:${server.port} refused the session before any command: "554 5.7.1 Client host 127.0.0.1 blocked using zen.spamhaus.org".`);
  });
});

describe('diagnoseEmail: secrets', () => {
  it('never reads a secret whose name is outside MAIL_SECRET_NAME_PATTERN: secret_not_found, with a hint naming the variable', async () => {
    const reads: string[] = [];
    const inner = createMemorySecretStore({ ...SECRETS, 'billing-db-password': 'the billing database password' });
    const store: SecretStore = { ...inner, get: async (name) => (reads.push(name), inner.get(name)) };
    for (const overrides of [{ passwordSecretName: 'billing-db-password' }, { emailSecretName: 'billing-db-password' }]) {
      reads.length = 0;
      const result = failed(await diagnoseEmail({ settings: settingsFor({ host: '127.0.0.1', port: 1 }, overrides), secrets: store, to: RECIPIENT }));
      expect(result.error).toBe('secret_not_found');
      expect(result.message).toBe('The secret "billing-db-password" was not read: email settings can only use secrets whose names match ^(smtp|mail)-.');
      expect(result.hint).toMatch(/MAIL_SECRET_NAME_PATTERN \(\^\(smtp\|mail\)-\)/);
      expect(outcomes(result)).toBe('settings:ok secrets:failed dns:skipped connect:skipped tls:skipped auth:skipped send:skipped');
      expect(reads).not.toContain('billing-db-password');
      expect(JSON.stringify(result)).not.toContain('the billing database password');
    }
    const custom = failed(await diagnoseEmail({ settings: settingsFor({ host: '127.0.0.1', port: 1 }), secrets: store, to: RECIPIENT, secretNamePattern: /^outbound-/ }));
    expect(custom.message).toBe('The secret "smtp-from" was not read: email settings can only use secrets whose names match ^outbound-.');
  });

  it('turns a secret-store outage into secret_not_found with the store\'s message', async () => {
    const store: SecretStore = {
      ...createMemorySecretStore(),
      kind: 'azure-keyvault',
      get: async () => {
        throw new SecretStoreUnavailableError('Azure Key Vault did not answer (503)');
      },
    };
    const result = failed(await diagnoseEmail({ settings: settingsFor({ host: '127.0.0.1', port: 587 }), secrets: store, to: RECIPIENT }));
    expect(result.error).toBe('secret_not_found');
    expect(result.message).toBe('The azure-keyvault secret store could not be read for "smtp-from": Azure Key Vault did not answer (503)');
  });

  it('refuses an email secret that holds no address, without echoing what it holds', async () => {
    const store = createMemorySecretStore({ 'smtp-from': PASSWORD, 'smtp-password': PASSWORD });
    const result = failed(await diagnoseEmail({ settings: settingsFor({ host: '127.0.0.1', port: 587 }), secrets: store, to: RECIPIENT }));
    expect(result.error).toBe('secret_not_found');
    expect(result.message).toBe('The secret "smtp-from" does not hold one email address.');
    expect(JSON.stringify(result)).not.toContain(PASSWORD);
  });

  it('leaves its own text alone when the password happens to appear in it (only server replies are blanked)', async () => {
    const store = createMemorySecretStore({ 'smtp-from': SENDER, 'smtp-password': 'smtp-pass' });
    const result = failed(await diagnoseEmail({ settings: settingsFor({ host: '127.0.0.1', port: 1 }), secrets: store, to: RECIPIENT }));
    expect(result.stages[1]!.detail).toBe(`sender ${SENDER}; password from secret "smtp-password"`);
  });

  it('names the environment variable when the env store lacks the password', async () => {
    const store: SecretStore = { ...createMemorySecretStore({ 'smtp-from': SENDER }), kind: 'env' };
    const result = failed(await diagnoseEmail({ settings: settingsFor({ host: '127.0.0.1', port: 587 }), secrets: store, to: RECIPIENT }));
    expect(result.message).toBe('The secret "smtp-password" (the password) was not found in the env secret store.');
    expect(result.hint).toMatch(/^Set the environment variable GATEHOUSE_SECRET_SMTP_PASSWORD /);
  });
});

describe.skipIf(!ca)('diagnoseEmail: AUTH', () => {
  it('fails when a password is set but the server offers no AUTH, instead of silently skipping it', async () => {
    const server = await startSmtp({ tls: trusted, smtp: { disabledCommands: ['AUTH'], authOptional: true } });
    closers.push(server.close);
    const result = failed(await diagnoseEmail({ settings: settingsFor(server), secrets: secrets(), to: RECIPIENT }));
    expect(result.error).toBe('auth_failed');
    expect(result.message).toBe(`127.0.0.1:${server.port} does not offer AUTH over TLS, so the password cannot be used.`);
    expect(server.mailFrom).toEqual([]);
  });

  it('never returns the password, even when a server echoes it back', async () => {
    const server = await startSmtp({ tls: trusted, authError: { code: 535, text: `5.7.8 Bad password ${PASSWORD} for ${SENDER}` } });
    closers.push(server.close);
    const result = failed(await diagnoseEmail({ settings: settingsFor(server), secrets: secrets(), to: RECIPIENT }));
    expect(result.error).toBe('auth_failed');
    expect(result.message).toBe(`The server refused the sign-in: "535 5.7.8 Bad password [redacted] for ${SENDER}".`);
    expect(JSON.stringify(result)).not.toContain(PASSWORD);
  });
});

describe('formatStage', () => {
  it('prints one line per stage with a mark, the name and the detail', () => {
    expect(formatStage({ name: 'dns', outcome: 'ok', detail: 'smtp.example.com → 127.0.0.1', ms: 3 })).toBe('✓ dns  smtp.example.com → 127.0.0.1');
    expect(formatStage({ name: 'tls', outcome: 'failed', detail: 'no STARTTLS', ms: 3 })).toBe('✗ tls  no STARTTLS');
    expect(formatStage({ name: 'send', outcome: 'skipped', detail: 'not run', ms: 0 })).toBe('– send  not run');
  });
});
