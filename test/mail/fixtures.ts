import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { simpleParser, type ParsedMail } from 'mailparser';
import { normalizeEmailSettings, type EmailSettings } from '../../src/mail/settings.js';
import type { TestCa } from '../helpers/tls.js';

const run = promisify(execFile);

export const SENDER = 'gatehouse-sender@example.com';
export const PASSWORD = 'S3cret-app-passw0rd!';
export const SECRETS = { 'smtp-from': SENDER, 'smtp-password': PASSWORD };
export const RECIPIENT = 'admin@example.com';

/** What a test SMTP server saw. */
export interface SmtpFixture {
  host: string;
  port: number;
  auths: { username: string; password: string }[];
  mailFrom: string[];
  messages: { rcpt: string[]; parsed: ParsedMail }[];
  close(): Promise<void>;
}

export interface SmtpFixtureOptions {
  host?: string;
  port?: number;
  /** a certificate for STARTTLS or implicit TLS */
  tls?: { key: string; cert: string };
  smtp?: Partial<SMTPServerOptions>;
  /** the reply to every AUTH, as a provider sends it */
  authError?: { code: number; text: string };
  mailFromError?: { code: number; text: string };
  rcptError?: { code: number; text: string };
  dataError?: { code: number; text: string };
}

function smtpError(e: { code: number; text: string }): Error {
  return Object.assign(new Error(e.text), { responseCode: e.code });
}

interface Listener {
  on(event: 'error', listener: (err: Error) => void): unknown;
  once(event: 'error', listener: (err: Error) => void): unknown;
  listen(port: number, host: string, callback: () => void): unknown;
}

/** Listens on `o.host` (127.0.0.1 unless told) and `o.port` (any free one unless told); the host. */
async function listen(server: Listener, o: { host?: string; port?: number }): Promise<string> {
  server.on('error', () => {});
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, host, () => resolve());
  });
  return host;
}

/** A real smtp-server on a loopback address; AUTH takes SENDER / PASSWORD unless told otherwise. */
export async function startSmtp(o: SmtpFixtureOptions = {}): Promise<SmtpFixture> {
  const seen: Pick<SmtpFixture, 'auths' | 'mailFrom' | 'messages'> = { auths: [], mailFrom: [], messages: [] };
  const server = new SMTPServer({
    ...(o.tls ?? {}),
    logger: false,
    closeTimeout: 200,
    onAuth(auth, _session, callback) {
      seen.auths.push({ username: auth.username ?? '', password: auth.password ?? '' });
      if (o.authError) return callback(smtpError(o.authError));
      if (auth.username === SENDER && auth.password === PASSWORD) return callback(null, { user: auth.username });
      return callback(smtpError({ code: 535, text: '5.7.8 Authentication credentials invalid' }));
    },
    onMailFrom(address, _session, callback) {
      seen.mailFrom.push(address.address);
      return callback(o.mailFromError ? smtpError(o.mailFromError) : null);
    },
    onRcptTo(_address, _session, callback) {
      return callback(o.rcptError ? smtpError(o.rcptError) : null);
    },
    onData(stream, session, callback) {
      simpleParser(stream)
        .then((parsed) => {
          if (o.dataError) return callback(smtpError(o.dataError));
          seen.messages.push({ rcpt: session.envelope.rcptTo.map((r) => r.address), parsed });
          return callback();
        })
        .catch((err: Error) => callback(err));
    },
    ...o.smtp,
  });
  const host = await listen(server, o);
  return {
    host,
    port: (server.server.address() as net.AddressInfo).port,
    ...seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A TCP server that accepts connections and never says a word. */
export async function startSilentServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** What services that are not mail servers say first: each must never be shown back (telltales long enough not to occur by chance, as a "9.6" would in a response time). */
export const NOT_SMTP_BANNERS = {
  ssh: { banner: 'SSH-2.0-OpenSSH_9.6\r\n', telltales: ['SSH-2.0', 'OpenSSH', 'OpenSSH_9.6'] },
  http: {
    banner: 'HTTP/1.1 400 Bad Request\r\nServer: nginx/1.25.3\r\nContent-Type: text/html\r\nContent-Length: 33\r\nConnection: close\r\n\r\n<html>intranet-admin-panel</html>',
    telltales: ['HTTP/1.1', 'Bad Request', 'nginx', '1.25.3', 'intranet-admin-panel'],
  },
  // Three digits, but not a reply a mail server greets with.
  digits: { banner: '200 internal-billing-service v3 ready\r\n', telltales: ['internal-billing', 'billing-service', 'v3 ready'] },
} as const;

/**
 * A raw TCP server that says `banner(n)` to its n-th connection (from 1) and keeps the
 * connection open, as sshd does; `replies` answers lines a client sends (by their first word).
 */
export async function startBannerServer(
  banner: (connection: number) => string,
  o: { host?: string; port?: number; replies?: (connection: number, line: string) => string | undefined } = {},
): Promise<{ host: string; port: number; connections: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0 };
  const server = net.createServer((socket) => {
    const n = ++state.connections;
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.write(banner(n));
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
        const line = buffer.slice(0, end).replace(/\r$/, '');
        buffer = buffer.slice(end + 1);
        const reply = o.replies?.(n, line);
        if (reply !== undefined) socket.write(reply);
        if (/^QUIT/i.test(line)) socket.end();
      }
    });
  });
  const host = await listen(server, o);
  return {
    host,
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return state.connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** A port on 127.0.0.1 that nothing listens on. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A certificate from the trusted test CA for the given IP addresses (the CA's own server cert names only 127.0.0.1). */
export async function issueCertificate(ca: TestCa, ips: string[]): Promise<{ key: string; cert: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-mail-cert-'));
  try {
    await writeFile(join(dir, 'ext'), `subjectAltName = ${ips.map((ip) => `IP:${ip}`).join(', ')}\nextendedKeyUsage = serverAuth\n`);
    await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key'), '-out', join(dir, 'csr'), '-subj', '/CN=gatehouse-mail-test']);
    await run('openssl', [
      'x509', '-req', '-in', join(dir, 'csr'), '-CA', ca.caCertPath, '-CAkey', join(ca.dir, 'ca.key'),
      '-set_serial', `0x${Math.floor(Math.random() * 2 ** 48).toString(16)}`, '-days', '2', '-extfile', join(dir, 'ext'), '-out', join(dir, 'crt'),
    ]);
    return { key: await readFile(join(dir, 'key'), 'utf8'), cert: await readFile(join(dir, 'crt'), 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function settingsFor(server: { host: string; port: number }, overrides: Partial<EmailSettings> = {}): EmailSettings {
  return normalizeEmailSettings({ host: server.host, port: server.port, emailSecretName: 'smtp-from', passwordSecretName: 'smtp-password', sslEnabled: true, ...overrides });
}

/** The exact hint for a plain-SMTP server behind port 465 (quoted in the docs). */
export const PLAIN_ON_465_HINT = 'Port 465 speaks plain SMTP, not implicit TLS — set TLS mode to "STARTTLS" (or "Automatic" on port 587).';

export interface Scenario {
  name: string;
  /** starts what the scenario needs; settings undefined = nothing saved */
  setup(): Promise<{ settings: EmailSettings | undefined; server?: SmtpFixture; close(): Promise<void> }>;
  expected: { ok: true } | { ok: false; error: string; stage: string; message: RegExp; hint: RegExp };
  /** what the server must (not) have seen */
  check?(server: SmtpFixture | undefined): void;
}

/**
 * Every failure mode of the check, each against a real server in the matching mode. Files that
 * bind port 465 pass their own loopback addresses so parallel files never collide.
 */
export function scenarios(o: { ca: TestCa; implicitTls: { key: string; cert: string }; ip465: { ok: string; plain: string } }): Scenario[] {
  const trusted = { key: o.ca.serverKey, cert: o.ca.serverCert };
  const withServer =
    (options: SmtpFixtureOptions, overrides: Partial<EmailSettings> = {}) =>
    async () => {
      const server = await startSmtp({ tls: trusted, ...options });
      return { settings: settingsFor(server, overrides), server, close: () => server.close() };
    };
  const noAuthSeen = (server: SmtpFixture | undefined): void => {
    if (server!.auths.length !== 0) throw new Error(`the server saw AUTH: ${JSON.stringify(server!.auths)}`);
    if (server!.mailFrom.length !== 0) throw new Error('the server saw MAIL FROM');
  };
  return [
    {
      name: 'STARTTLS on a submission port with AUTH succeeds and the message arrives',
      setup: withServer({}),
      expected: { ok: true },
      check(server) {
        expectSent(server!);
      },
    },
    {
      name: 'implicit TLS on port 465 succeeds',
      setup: withServer({ host: o.ip465.ok, port: 465, tls: o.implicitTls, smtp: { secure: true } }),
      expected: { ok: true },
      check(server) {
        expectSent(server!);
      },
    },
    {
      name: 'port 465 with a server that speaks plain SMTP is a TLS failure that says to use STARTTLS on 587',
      setup: withServer({ host: o.ip465.plain, port: 465 }),
      expected: { ok: false, error: 'tls_failed', stage: 'tls', message: /answers in plain text \("220 .*"\) and offers STARTTLS.*wrong version number/, hint: new RegExp(`^${escape(PLAIN_ON_465_HINT)}$`) },
      check: noAuthSeen,
    },
    {
      name: 'STARTTLS configured but the server speaks TLS at once is a TLS failure that says to use port 465',
      setup: withServer({ smtp: { secure: true } }),
      expected: { ok: false, error: 'tls_failed', stage: 'tls', message: /expects TLS from the first byte \(implicit TLS\)/, hint: /^This port expects TLS from the first byte — set TLS mode to "Implicit TLS"/ },
      check: noAuthSeen,
    },
    {
      name: 'SSL enabled and no STARTTLS offered fails before any credential is sent',
      setup: withServer({ smtp: { disabledCommands: ['STARTTLS'], allowInsecureAuth: true } }),
      expected: { ok: false, error: 'tls_failed', stage: 'tls', message: /does not offer STARTTLS.*the credentials never left this machine/, hint: /587 \(STARTTLS\) or 465 \(implicit TLS\)/ },
      check: noAuthSeen,
    },
    {
      name: 'SSL off to a loopback relay without STARTTLS is allowed, password included',
      setup: withServer({ smtp: { disabledCommands: ['STARTTLS'], allowInsecureAuth: true } }, { sslEnabled: false }),
      expected: { ok: true },
      check(server) {
        expectSent(server!);
        if (server!.auths[0]?.password !== PASSWORD) throw new Error('AUTH did not carry the password');
      },
    },
    {
      name: 'an untrusted certificate is a TLS failure that points at NODE_EXTRA_CA_CERTS',
      setup: withServer({ tls: { key: o.ca.untrustedKey, cert: o.ca.untrustedCert } }),
      expected: { ok: false, error: 'tls_failed', stage: 'tls', message: /not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate\)/, hint: /NODE_EXTRA_CA_CERTS=.*never turned off/ },
      check: noAuthSeen,
    },
    {
      name: 'Gmail 535 5.7.8 asks for an app password with 2-Step Verification',
      setup: withServer({ authError: { code: 535, text: '5.7.8 Username and Password not accepted. For more information, go to https://support.google.com/mail/?p=BadCredentials' } }),
      expected: { ok: false, error: 'auth_failed', stage: 'auth', message: /535 5\.7\.8 Username and Password not accepted/, hint: /2-Step Verification.*App Password/ },
    },
    {
      name: 'Microsoft 535 5.7.139 says basic authentication is disabled for the tenant',
      setup: withServer({ authError: { code: 535, text: '5.7.139 Authentication unsuccessful, basic authentication is disabled.' } }),
      expected: { ok: false, error: 'auth_failed', stage: 'auth', message: /5\.7\.139/, hint: /basic authentication .* turned off for this tenant/ },
    },
    {
      name: 'Microsoft 530 5.7.57 at MAIL FROM (no AUTH) says to sign in and turn on Authenticated SMTP',
      setup: withServer({ mailFromError: { code: 530, text: '5.7.57 Client not authenticated to send mail.' }, smtp: { authOptional: true } }, { passwordSecretName: null }),
      expected: { ok: false, error: 'auth_failed', stage: 'send', message: /wants a sign-in: it refused MAIL FROM with "530 5\.7\.57 Client not authenticated/, hint: /Authenticated SMTP/ },
    },
    {
      name: 'Microsoft 535 5.7.3 says SMTP AUTH is off for the mailbox or the password is wrong',
      setup: withServer({ authError: { code: 535, text: '5.7.3 Authentication unsuccessful' } }),
      expected: { ok: false, error: 'auth_failed', stage: 'auth', message: /535 5\.7\.3 Authentication unsuccessful/, hint: /SMTP AUTH is turned off for this mailbox, or the password is wrong/ },
    },
    {
      name: 'a closed port is connection refused',
      async setup() {
        const port = await closedPort();
        return { settings: settingsFor({ host: '127.0.0.1', port }), close: async () => undefined };
      },
      expected: { ok: false, error: 'connect_failed', stage: 'connect', message: /^Connection refused by 127\.0\.0\.1:\d+/, hint: /Check the host and the port/ },
    },
    {
      name: 'a missing secret is named, with how to add it',
      async setup() {
        return { settings: settingsFor({ host: '127.0.0.1', port: 25 }, { emailSecretName: 'smtp-no-such-sender' }), close: async () => undefined };
      },
      expected: { ok: false, error: 'secret_not_found', stage: 'secrets', message: /The secret "smtp-no-such-sender" \(the sender address\) was not found/, hint: /smtp-no-such-sender/ },
    },
    {
      name: 'no saved settings is not_configured',
      async setup() {
        return { settings: undefined, close: async () => undefined };
      },
      expected: { ok: false, error: 'not_configured', stage: 'settings', message: /not saved/, hint: /Open Settings/ },
    },
    {
      name: 'a 5xx on RCPT TO is rejected, naming the recipient',
      setup: withServer({ rcptError: { code: 550, text: '5.1.1 The email account that you tried to reach does not exist.' } }),
      expected: { ok: false, error: 'rejected', stage: 'send', message: /refused the recipient admin@example\.com: "550 5\.1\.1/, hint: /relay/ },
    },
    {
      name: 'a 5xx after DATA is rejected',
      setup: withServer({ dataError: { code: 554, text: '5.7.1 Message rejected as spam' } }),
      expected: { ok: false, error: 'rejected', stage: 'send', message: /at DATA: "554 5\.7\.1 Message rejected as spam"/, hint: /content or policy filter/ },
    },
  ];
}

function expectSent(server: SmtpFixture): void {
  const m = server.messages[0];
  if (m === undefined) throw new Error('the server received no message');
  if (m.parsed.from?.value[0]?.address !== SENDER) throw new Error(`From was ${m.parsed.from?.text}`);
  if (m.parsed.subject !== 'Gatehouse test email') throw new Error(`subject was ${m.parsed.subject}`);
  if (m.rcpt.join() !== RECIPIENT) throw new Error(`RCPT was ${m.rcpt.join()}`);
  if (server.auths.length > 0 && server.auths.some((a) => a.username !== SENDER || a.password !== PASSWORD)) throw new Error('AUTH used other credentials');
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * The trusted test CA, or undefined (with one loud line) when the global setup could not make it.
 * With CI=true a missing CA fails the run instead.
 */
export async function trustedCaOrSkip(suite: string): Promise<TestCa | undefined> {
  const { findTrustedTestCa } = await import('../helpers/tls.js');
  const ca = await findTrustedTestCa();
  if (ca === undefined) {
    const reason = `the test CA is not trusted in this process (install openssl; test/global-setup.ts must run)`;
    if (process.env.CI === 'true') throw new Error(`${suite}: ${reason}`);
    console.warn(`\n!!! SKIPPING ${suite}: ${reason}\n`);
  }
  return ca;
}
