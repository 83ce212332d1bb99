import type net from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { diagnoseEmail } from '../../src/mail/diagnose.js';
import { tlsModeOf } from '../../src/mail/settings.js';
import { createConfiguredMailer, createLoopbackMailer } from '../../src/mail/transport.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { PASSWORD, RECIPIENT, SECRETS, SENDER, settingsFor, trustedCaOrSkip } from './fixtures.js';

// Issue 14: TLS mode as its own choice (implicit TLS on any port), and what every email carries:
// Auto-Submitted (RFC 3834), a Message-ID in PUBLIC_URL's domain, the text part first.

const ca = await trustedCaOrSkip('TLS mode and headers');

interface RawServer {
  port: number;
  raws: string[];
  close(): Promise<void>;
}

/** An SMTP server on 127.0.0.1 that keeps each message as it came over the wire. */
async function rawServer(o: { secure: boolean; starttls: boolean }): Promise<RawServer> {
  const raws: string[] = [];
  const server = new SMTPServer({
    key: ca!.serverKey,
    cert: ca!.serverCert,
    secure: o.secure,
    disabledCommands: o.starttls ? [] : ['STARTTLS'],
    // The dev mailbox's sender signs in to nothing; the others sign in anyway.
    authOptional: true,
    logger: false,
    closeTimeout: 200,
    onAuth: (auth, _s, cb) => (auth.username === SENDER && auth.password === PASSWORD ? cb(null, { user: SENDER }) : cb(new Error('535 no'))),
    onData(stream, _s, cb) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        raws.push(Buffer.concat(chunks).toString('utf8'));
        cb();
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.server.address() as net.AddressInfo).port, raws, close: () => new Promise((r) => server.close(() => r())) };
}

const closers: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

describe('tlsModeOf', () => {
  it('auto keeps DESIGN §1 (465 implicit, others STARTTLS); starttls and implicit say it outright; SSL off is opportunistic', () => {
    expect(tlsModeOf({ sslEnabled: true, tlsMode: 'auto', port: 465 })).toBe('implicit');
    expect(tlsModeOf({ sslEnabled: true, tlsMode: 'auto', port: 587 })).toBe('starttls-required');
    expect(tlsModeOf({ sslEnabled: true, tlsMode: 'implicit', port: 2465 })).toBe('implicit');
    expect(tlsModeOf({ sslEnabled: true, tlsMode: 'starttls', port: 465 })).toBe('starttls-required');
    expect(tlsModeOf({ sslEnabled: false, tlsMode: 'auto', port: 465 })).toBe('opportunistic');
  });
});

describe.runIf(ca !== undefined)('implicit TLS on a port other than 465', () => {
  it('works end to end with TLS mode "Implicit TLS": the check passes and the outbox mailer delivers', async () => {
    const server = await rawServer({ secure: true, starttls: false });
    closers.push(() => server.close());
    const settings = settingsFor({ host: '127.0.0.1', port: server.port }, { tlsMode: 'implicit' });
    const result = await diagnoseEmail({ settings, secrets: createMemorySecretStore(SECRETS), secretNamePattern: /^(smtp|mail)-/, to: RECIPIENT, messageIdDomain: 'dash.example.org' });
    expect(result.ok, JSON.stringify(result)).toBe(true);
    expect(result.stages.find((s) => s.name === 'tls')?.detail).toMatch(/^implicit TLS, TLSv1\.[23]/);
    const mailer = createConfiguredMailer(async () => settings, createMemorySecretStore(SECRETS));
    closers.push(() => mailer.close());
    await mailer.send({ to: RECIPIENT, subject: 'over implicit TLS', text: 'plain', html: '<p>html</p>' });
    expect(server.raws).toHaveLength(2);
  });

  it('with TLS mode "Automatic" the check fails at tls and its hint names the mode to pick', async () => {
    const server = await rawServer({ secure: true, starttls: false });
    closers.push(() => server.close());
    const result = await diagnoseEmail({ settings: settingsFor({ host: '127.0.0.1', port: server.port }), secrets: createMemorySecretStore(SECRETS), secretNamePattern: /^(smtp|mail)-/, to: RECIPIENT });
    expect(result).toMatchObject({ ok: false, error: 'tls_failed' });
    if (result.ok) return;
    expect(result.message).toContain(`TLS mode "Automatic" on port ${server.port} means STARTTLS`);
    expect(result.hint).toMatch(/set TLS mode to "Implicit TLS"/);
    expect(server.raws).toEqual([]);
  });

  it('TLS mode "STARTTLS" on a STARTTLS server passes', async () => {
    const server = await rawServer({ secure: false, starttls: true });
    closers.push(() => server.close());
    const result = await diagnoseEmail({ settings: settingsFor({ host: '127.0.0.1', port: server.port }, { tlsMode: 'starttls' }), secrets: createMemorySecretStore(SECRETS), secretNamePattern: /^(smtp|mail)-/, to: RECIPIENT });
    expect(result.ok, JSON.stringify(result)).toBe(true);
  });
});

describe.runIf(ca !== undefined)('what every email carries', () => {
  /** The headers of a raw message (unfolded), and the order of its parts' content types. */
  function inspect(raw: string): { headers: Map<string, string>; partTypes: string[] } {
    const head = raw.split(/\r\n\r\n/)[0]!.replace(/\r\n[ \t]+/g, ' ');
    const headers = new Map(head.split('\r\n').map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()] as [string, string]));
    const partTypes = [...raw.matchAll(/^Content-Type: (text\/(?:plain|html))/gim)].map((m) => m[1]!.toLowerCase());
    return { headers, partTypes };
  }

  it('the outbox mailer: Auto-Submitted: auto-generated, a Message-ID in the PUBLIC_URL host, text part before HTML', async () => {
    const server = await rawServer({ secure: false, starttls: true });
    closers.push(() => server.close());
    const mailer = createConfiguredMailer(async () => settingsFor({ host: '127.0.0.1', port: server.port }), createMemorySecretStore(SECRETS), { messageIdDomain: 'dash.example.org' });
    closers.push(() => mailer.close());
    await mailer.send({ to: RECIPIENT, subject: 'Reset your password', text: 'the text part', html: '<p>the html part</p>' });
    await mailer.send({ to: RECIPIENT, subject: 'again', text: 't', html: '<p>h</p>' });
    const [first, second] = server.raws.map(inspect);
    expect(first!.headers.get('auto-submitted')).toBe('auto-generated');
    expect(first!.headers.get('message-id')).toMatch(/^<[0-9a-f-]{36}@dash\.example\.org>$/);
    expect(second!.headers.get('message-id')).not.toBe(first!.headers.get('message-id'));
    expect(first!.partTypes).toEqual(['text/plain', 'text/html']);
  });

  it('the staged check and the dev mailbox sender carry them too', async () => {
    const server = await rawServer({ secure: false, starttls: true });
    closers.push(() => server.close());
    const result = await diagnoseEmail({ settings: settingsFor({ host: '127.0.0.1', port: server.port }), secrets: createMemorySecretStore(SECRETS), secretNamePattern: /^(smtp|mail)-/, to: RECIPIENT, messageIdDomain: 'dash.example.org' });
    expect(result.ok).toBe(true);
    const loopback = createLoopbackMailer(server.port, 'Gatehouse <no-reply@gatehouse.localhost>', 'dash.example.org');
    closers.push(() => loopback.close());
    // The dev mailbox listens without TLS; this server offers STARTTLS, which the loopback sender ignores.
    await loopback.send({ to: RECIPIENT, subject: 'dev', text: 't', html: '<p>h</p>' });
    for (const raw of server.raws) {
      const { headers } = inspect(raw);
      expect(headers.get('auto-submitted')).toBe('auto-generated');
      expect(headers.get('message-id')).toMatch(/@dash\.example\.org>$/);
    }
    expect(server.raws).toHaveLength(2);
  });
});
