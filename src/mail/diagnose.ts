import dns from 'node:dns';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import nodemailer from 'nodemailer';
import { parseEmail } from '../accounts/identifiers.js';
import { envVariableForSecret } from '../secrets/env.js';
import type { SecretStore } from '../secrets/store.js';
import { type EmailSettings, type TlsMode, isLoopbackHost, isMailSecretName, tlsModeOf, validateEmailSettings } from './settings.js';
import type { SmtpCredentials } from './sender-secrets.js';
import { credentialForms, NOT_SMTP_DETAIL, scrub, serverErrorText, smtpTransportOptions } from './transport.js';

/*
 * The staged email check behind the Settings page's "Send test email" and `gatehouse mail test`.
 * The early stages speak SMTP by hand (greeting, EHLO, STARTTLS) so that a failure can say what
 * the server really speaks; AUTH and the test message then go through nodemailer with the same
 * options the outbox uses, so a check that passes means real mail will go out.
 */

export type DiagnoseStageName = 'settings' | 'secrets' | 'dns' | 'connect' | 'tls' | 'auth' | 'send';
export const DIAGNOSE_STAGES: readonly DiagnoseStageName[] = ['settings', 'secrets', 'dns', 'connect', 'tls', 'auth', 'send'];

export interface DiagnoseStage {
  name: DiagnoseStageName;
  outcome: 'ok' | 'failed' | 'skipped';
  detail: string;
  ms: number;
}

export type DiagnoseErrorCode = 'not_configured' | 'secret_not_found' | 'dns_failed' | 'connect_failed' | 'tls_failed' | 'auth_failed' | 'rejected';

export type DiagnoseResult =
  | { ok: true; stages: DiagnoseStage[] }
  | { ok: false; error: DiagnoseErrorCode; message: string; hint: string; stages: DiagnoseStage[] };

export interface DiagnoseTimeoutsMs {
  connect: number;
  greeting: number;
  socket: number;
}

export const DEFAULT_DIAGNOSE_TIMEOUTS_MS: DiagnoseTimeoutsMs = { connect: 10_000, greeting: 10_000, socket: 20_000 };

export interface DiagnoseInput {
  settings: EmailSettings | undefined;
  secrets: SecretStore;
  /** MAIL_SECRET_NAME_PATTERN: a secret outside it is never read */
  secretNamePattern: RegExp;
  /** one valid address (the caller parses it) */
  to: string;
  timeoutsMs?: DiagnoseTimeoutsMs;
  /** test seam for DNS only (one address or several, in order); defaults to dns.promises.lookup */
  lookup?: (host: string) => Promise<LookupAddress | LookupAddress[]>;
}

export interface LookupAddress {
  address: string;
  family: number;
}

export const TEST_MESSAGE_SUBJECT = 'Gatehouse test email';

/** An expected failure: which stage's code, what happened, and what to do about it. */
class Failure extends Error {
  constructor(
    readonly error: DiagnoseErrorCode,
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

const NATURAL_CODE: Record<DiagnoseStageName, DiagnoseErrorCode> = {
  settings: 'not_configured',
  secrets: 'secret_not_found',
  dns: 'dns_failed',
  connect: 'connect_failed',
  tls: 'tls_failed',
  auth: 'auth_failed',
  send: 'rejected',
};

const PORT_ADVICE = 'Use port 587 with SSL enabled (STARTTLS) or port 465 with SSL enabled (implicit TLS).';

/**
 * Something answered that is not a mail server. None of its bytes are shown: quoting them would
 * turn the Settings page into a tool that reads the banners of any host and port it can reach.
 */
function notSmtp(where: string): Failure {
  return new Failure('connect_failed', `${where} does not speak SMTP.`, `Something answers on this port, but it is not a mail server. Check the host and the port. ${PORT_ADVICE}`);
}

export async function diagnoseEmail(input: DiagnoseInput): Promise<DiagnoseResult> {
  const timeouts = input.timeoutsMs ?? DEFAULT_DIAGNOSE_TIMEOUTS_MS;
  const stages: DiagnoseStage[] = [];
  // What a server says after AUTH is shown with the password (and its base64) blanked out, in
  // case it echoes them; our own text never holds the password.
  let redact: string[] = [];
  const hide = (text: string): string => scrub(text, redact);
  const cleanup: (() => void)[] = [];

  async function stage<T>(name: DiagnoseStageName, fn: () => Promise<[T, string]>): Promise<T> {
    const startedAt = performance.now();
    try {
      const [value, detail] = await fn();
      stages.push({ name, outcome: 'ok', detail, ms: msSince(startedAt) });
      return value;
    } catch (err) {
      const failure = err instanceof Failure ? err : new Failure(NATURAL_CODE[name], `Unexpected error: ${oneLine(errorText(err))}`, 'Try again; if it keeps failing, check the server logs.');
      stages.push({ name, outcome: 'failed', detail: failure.message, ms: msSince(startedAt) });
      throw failure;
    }
  }

  try {
    const settings = await stage('settings', async () => {
      const s = input.settings;
      if (s === undefined) {
        throw new Failure('not_configured', 'Email settings are not saved yet.', 'Open Settings, fill in the "Forgot password" email form (host, port, secret names, SSL) and save it.');
      }
      // Names outside MAIL_SECRET_NAME_PATTERN are the secrets step's to report, with its own hint.
      const problems = validateEmailSettings(s, null);
      if (Object.keys(problems).length > 0) {
        throw new Failure('not_configured', `The saved email settings are not valid (${Object.keys(problems).join(', ')}).`, 'Open Settings, correct the email form and save it again.');
      }
      return [s, `${s.host}:${s.port}, ${describeMode(tlsModeOf(s), s.port)}`];
    });
    const mode = tlsModeOf(settings);
    const host = bareHost(settings.host);
    const where = `${settings.host}:${settings.port}`;

    const credentials = await stage('secrets', async () => {
      for (const name of [settings.emailSecretName, settings.passwordSecretName]) {
        if (name !== null && !isMailSecretName(name, input.secretNamePattern)) {
          // Not read at all: the store holds other secrets too, and this check would send them to the host above.
          throw new Failure(
            'secret_not_found',
            `The secret "${name}" was not read: email settings can only use secrets whose names match ${input.secretNamePattern.source}.`,
            `Store the sender address and its password under names that match MAIL_SECRET_NAME_PATTERN (${input.secretNamePattern.source}), for example "smtp-sender" and "smtp-password", and save the settings with those names (or change MAIL_SECRET_NAME_PATTERN).`,
          );
        }
      }
      const fromValue = await readSecret(input.secrets, settings.emailSecretName, 'the sender address');
      const from = parseEmail(fromValue);
      if (from === null) {
        // Never echoed: a value that is not an address may well be a password pasted into the wrong secret.
        throw new Failure(
          'secret_not_found',
          `The secret "${settings.emailSecretName}" does not hold one email address.`,
          `The email secret holds the sender address (e.g. alerts@example.com) and the password secret holds its password: check that "${settings.emailSecretName}" holds the address.`,
        );
      }
      let pass: string | null = null;
      if (settings.passwordSecretName !== null) {
        pass = await readSecret(input.secrets, settings.passwordSecretName, 'the password');
      }
      const creds: SmtpCredentials = { from, user: from, pass };
      redact = credentialForms(creds);
      const passDetail = settings.passwordSecretName === null ? 'no password (a relay without AUTH)' : `password from secret "${settings.passwordSecretName}"`;
      return [creds, `sender ${from}; ${passDetail}`];
    });
    const sendsPassword = credentials.pass !== null;

    const addresses = await stage('dns', async () => {
      if (net.isIP(host) !== 0) return [[host], `${settings.host} is an IP address`];
      // Every address, in the resolver's order: "localhost" may list ::1 before 127.0.0.1.
      const lookup = input.lookup ?? ((name: string) => dns.promises.lookup(name, { all: true }));
      const addressesOf = async (name: string): Promise<string[]> => [await lookup(name)].flat().map((a) => a.address);
      try {
        const found = await withTimeout(addressesOf(host), timeouts.connect, () => Object.assign(new Error('DNS lookup timed out'), { code: 'ETIMEOUT' }));
        if (found.length === 0) throw Object.assign(new Error('no address'), { code: 'ENODATA' });
        return [found, `${settings.host} → ${found.join(', ')}`];
      } catch (err) {
        throw dnsFailure(err, settings.host);
      }
    });

    const transportOptions = smtpTransportOptions({ settings, credentials, timeoutsMs: timeouts });
    const servername = transportOptions.tls?.servername;
    // The address that answers; the certificate is still checked against the configured host.
    const tlsTarget: TlsTarget = { address: addresses[0]!, port: settings.port, host, servername, base: transportOptions.tls ?? {} };

    const opened = await stage<{ wire: Wire; greeting: Reply | 'speaks-tls' | undefined }>('connect', async () => {
      const socket = await connectFirst(addresses, settings.port, timeouts.connect, where);
      const address = socket.remoteAddress ?? addresses[0]!;
      tlsTarget.address = address;
      const wire = new Wire(socket);
      cleanup.push(() => wire.current.destroy(), () => socket.destroy());
      if (mode === 'implicit') return [{ wire, greeting: undefined }, `connected to ${address}:${settings.port}`];
      const greeting = await awaitGreeting(wire, tlsTarget, timeouts, where, cleanup);
      if (greeting === 'speaks-tls') {
        return [{ wire, greeting }, `connected to ${address}:${settings.port}; no plain-text greeting, but the port answers a TLS handshake`];
      }
      return [{ wire, greeting }, `connected to ${address}:${settings.port}; greeting "${clip(greeting.text, 120)}"`];
    });

    const session = await stage('tls', async () => {
      const { wire, greeting } = opened;
      if (mode === 'implicit') {
        let secured: TlsInfo;
        try {
          secured = await startTls(wire, tlsTarget, timeouts.greeting);
        } catch (err) {
          throw await implicitTlsFailure(err, tlsTarget, timeouts, where);
        }
        await readGreetingOverTls(wire, timeouts.greeting, where);
        const ehlo = await ehloOrFail(wire, timeouts.socket, where);
        return [{ secured: true, ehlo }, `implicit TLS, ${secured.describe}`];
      }
      if (greeting === 'speaks-tls') {
        throw new Failure(
          'tls_failed',
          `${where} expects TLS from the first byte (implicit TLS) and sends no plain-text greeting, but ${mode === 'opportunistic' ? 'SSL is off' : `"SSL enabled" on port ${settings.port} means STARTTLS`}.`,
          mode === 'opportunistic'
            ? 'This port expects implicit TLS — turn SSL on and use port 465.'
            : 'This port expects implicit TLS — use port 465 (with SSL enabled); for STARTTLS use the server\'s submission port, usually 587.',
        );
      }
      let ehlo = await wire.command(`EHLO ${ehloName(wire.localAddress)}`, timeouts.socket).catch((err: unknown) => {
        throw lostConnection(err, where, 'EHLO');
      });
      if (ehlo.code !== 250) {
        if (mode === 'starttls-required') {
          throw new Failure('tls_failed', `The server refused EHLO, so it cannot offer STARTTLS: "${clip(ehlo.text)}".`, PORT_ADVICE);
        }
        ehlo = { code: 250, lines: [], text: '' };
      }
      if (!offers(ehlo, 'STARTTLS')) {
        if (mode === 'starttls-required') {
          throw new Failure(
            'tls_failed',
            `${where} does not offer STARTTLS, and "SSL enabled" on port ${settings.port} requires it. Nothing was sent: the credentials never left this machine.`,
            'Use a port where this server offers TLS: 587 (STARTTLS) or 465 (implicit TLS). Only for a relay on your own network without TLS: turn SSL off and leave the password secret name empty.',
          );
        }
        if (sendsPassword && !isLoopbackHost(settings.host)) {
          throw new Failure(
            'tls_failed',
            `${where} does not offer STARTTLS, and Gatehouse never sends a password unencrypted to a host that is not loopback. Nothing was sent.`,
            'Turn SSL on and use a port where the server offers TLS (587 with STARTTLS, or 465), or, for a relay that needs no password, leave the password secret name empty.',
          );
        }
        const why = isLoopbackHost(settings.host) ? `${settings.host} is a loopback host` : 'no password is sent (the mail itself travels unencrypted)';
        return [{ secured: false, ehlo }, `not encrypted: the server offers no STARTTLS; allowed because ${why}`];
      }
      const reply = await wire.command('STARTTLS', timeouts.socket).catch((err: unknown) => {
        throw lostConnection(err, where, 'STARTTLS');
      });
      if (reply.code !== 220) {
        throw new Failure('tls_failed', `The server advertised STARTTLS but refused it: "${clip(reply.text)}".`, `Check the mail server's TLS configuration. ${PORT_ADVICE}`);
      }
      let secured: TlsInfo;
      try {
        secured = await startTls(wire, tlsTarget, timeouts.greeting);
      } catch (err) {
        throw tlsFailure(err, tlsTarget);
      }
      const again = await ehloOrFail(wire, timeouts.socket, where);
      return [{ secured: true, ehlo: again }, `STARTTLS, ${secured.describe}`];
    });
    opened.wire.quit();

    // One transport for AUTH and the message, with the options the outbox uses; it connects to
    // the address found above (the certificate is still checked against the configured host).
    const transporter = nodemailer.createTransport({ ...transportOptions, host: tlsTarget.address });
    cleanup.push(() => transporter.close());

    if (!sendsPassword) {
      stages.push({ name: 'auth', outcome: 'skipped', detail: 'no password secret is set: sending without AUTH', ms: 0 });
    } else {
      await stage('auth', async () => {
        if (!offers(session.ehlo, 'AUTH')) {
          throw new Failure(
            'auth_failed',
            `${where} does not offer AUTH${session.secured ? ' over TLS' : ''}, so the password cannot be used.`,
            'This server takes mail without signing in here (a relay), or only on its submission port. For a relay that needs no password, leave the password secret name empty; to sign in, use port 587 or 465.',
          );
        }
        try {
          await transporter.verify();
        } catch (err) {
          throw transportFailure(err, { where, settings, credentials, to: input.to, during: 'auth', hide });
        }
        return [undefined, `signed in as ${credentials.user}`];
      });
    }

    await stage('send', async () => {
      try {
        const info = await transporter.sendMail({
          from: credentials.from,
          to: input.to,
          subject: TEST_MESSAGE_SUBJECT,
          text: [
            'This is a test message from Gatehouse.',
            '',
            'If you can read it, the sender email settings work: password-reset emails can be delivered.',
          ].join('\n'),
        });
        return [undefined, `accepted for ${input.to}: "${clip(hide(String(info.response ?? '')), 160)}"`];
      } catch (err) {
        throw transportFailure(err, { where, settings, credentials, to: input.to, during: 'send', hide });
      }
    });
    return { ok: true, stages };
  } catch (err) {
    if (!(err instanceof Failure)) throw err;
    for (const name of DIAGNOSE_STAGES) {
      if (!stages.some((s) => s.name === name)) stages.push({ name, outcome: 'skipped', detail: 'not run: an earlier step failed', ms: 0 });
    }
    return { ok: false, error: err.error, message: err.message, hint: err.hint, stages };
  } finally {
    for (const fn of cleanup) {
      try {
        fn();
      } catch {
        // already closed
      }
    }
  }
}

/** One line per stage, as `gatehouse mail test` prints them. */
export function formatStage(stage: DiagnoseStage): string {
  const mark = stage.outcome === 'ok' ? '✓' : stage.outcome === 'failed' ? '✗' : '–';
  return `${mark} ${stage.name}  ${stage.detail}`;
}

// ---------------------------------------------------------------------------------------------
// secrets and DNS

async function readSecret(secrets: SecretStore, name: string, holds: string): Promise<string> {
  let value: string | undefined;
  try {
    value = await secrets.get(name);
  } catch (err) {
    throw new Failure(
      'secret_not_found',
      `The ${secrets.kind} secret store could not be read for "${name}": ${oneLine(errorText(err))}`,
      'Check the secret store configuration (SECRETS_PROVIDER) and that Gatehouse may read it, then try again.',
    );
  }
  if (value === undefined || value.trim() === '') {
    throw new Failure('secret_not_found', `The secret "${name}" (${holds}) was not found in the ${secrets.kind} secret store.`, missingSecretHint(secrets.kind, name));
  }
  return value;
}

function missingSecretHint(kind: SecretStore['kind'], name: string): string {
  const check = 'or correct the name on the Settings page';
  const cache = 'A secret added just now is seen by a running server within SECRETS_CACHE_SECONDS (30 s by default).';
  switch (kind) {
    case 'local':
      return `Add it with "gatehouse secrets set ${name}" (the value is read from stdin), ${check}. ${cache}`;
    case 'env':
      return `Set the environment variable ${envVariableForSecret(name)} for the Gatehouse process and restart it, ${check}.`;
    case 'azure-keyvault':
      return `Create a secret named "${name}" in the key vault (names are case-insensitive) and let Gatehouse's identity read secrets, ${check}. ${cache}`;
    default:
      return `Add the secret "${name}" to the secret store, ${check}.`;
  }
}

function dnsFailure(err: unknown, host: string): Failure {
  const code = (err as { code?: string }).code ?? 'ERROR';
  if (code === 'ENOTFOUND' || code === 'ENODATA' || code === 'EAI_NONAME') {
    return new Failure(
      'dns_failed',
      `The host ${host} was not found (${code}).`,
      'Check the spelling of the host name (for example smtp.gmail.com or smtp.office365.com), without a scheme or port, and that this machine\'s DNS can resolve it.',
    );
  }
  return new Failure(
    'dns_failed',
    `The host ${host} could not be resolved (${code}): ${oneLine(errorText(err))}`,
    'The DNS server did not answer in time or failed. Check this machine\'s DNS configuration and try again.',
  );
}

// ---------------------------------------------------------------------------------------------
// TCP, greeting, STARTTLS

/** Tries each address in turn; the failure of the first one is the one reported. */
async function connectFirst(addresses: string[], port: number, timeoutMs: number, where: string): Promise<net.Socket> {
  let first: unknown;
  for (const address of addresses) {
    try {
      return await connectTcp(address, port, timeoutMs, where);
    } catch (err) {
      first ??= err;
    }
  }
  if (first instanceof Failure && addresses.length > 1) {
    throw new Failure(first.error, `${first.message} (tried ${addresses.join(', ')})`, first.hint);
  }
  throw first;
}

function connectTcp(address: string, port: number, timeoutMs: number, where: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Failure(
          'connect_failed',
          `No answer from ${where} within ${seconds(timeoutMs)}: the connection timed out.`,
          'A firewall may drop outgoing SMTP (many cloud providers block port 25 and some block 465/587), or the host or port is wrong.',
        ),
      );
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      // Until a reader attaches, a late error must not crash the process.
      socket.on('error', () => {});
      resolve(socket);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      socket.destroy();
      if (err.code === 'ECONNREFUSED') {
        reject(
          new Failure(
            'connect_failed',
            `Connection refused by ${where}: nothing is listening on that port.`,
            `Check the host and the port (587 for STARTTLS, 465 for implicit TLS, 25 for a relay) and that the mail server is running.`,
          ),
        );
      } else if (err.code === 'EHOSTUNREACH' || err.code === 'ENETUNREACH') {
        reject(new Failure('connect_failed', `${where} cannot be reached from this machine (${err.code}).`, 'Check the host and this machine\'s network and firewall rules.'));
      } else {
        reject(new Failure('connect_failed', `Connecting to ${where} failed (${err.code ?? 'error'}): ${oneLine(err.message)}`, 'Check the host, the port and the network between this machine and the mail server.'));
      }
    });
  });
}

interface Reply {
  code: number;
  lines: string[];
  text: string;
}

/** The server's first bytes were not an SMTP reply. */
class NotSmtpError extends Error {
  // What the server said is not kept: nothing of a peer that does not speak SMTP is ever shown.
  constructor() {
    super('not an SMTP reply');
  }
}

class TimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
}

/** Reads SMTP replies off a socket, which STARTTLS may swap for its TLS successor. */
class Wire {
  /** bytes received on any socket of this session */
  received = 0;
  private socket: net.Socket;
  private buffer = '';
  private lines: string[] = [];
  private queue: (Reply | Error)[] = [];
  private waiter: ((item: Reply | Error) => void) | undefined;
  private closed = false;

  constructor(socket: net.Socket) {
    this.socket = socket;
    this.attach(socket);
  }

  get localAddress(): string | undefined {
    return this.socket.localAddress;
  }

  get current(): net.Socket {
    return this.socket;
  }

  attach(socket: net.Socket): void {
    this.socket = socket;
    this.closed = false;
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('close', this.onClose);
  }

  /** Stops reading; whatever arrived in plain text before TLS is dropped (RFC 3207 §6). */
  detach(): net.Socket {
    this.socket.off('data', this.onData);
    this.socket.off('error', this.onError);
    this.socket.off('close', this.onClose);
    this.buffer = '';
    this.lines = [];
    this.queue = [];
    return this.socket;
  }

  read(timeoutMs: number): Promise<Reply> {
    const next = this.queue.shift();
    if (next !== undefined) return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    if (this.closed) return Promise.reject(Object.assign(new Error('the server closed the connection'), { code: 'ECLOSED' }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new TimeoutError('timed out'));
      }, timeoutMs);
      this.waiter = (item) => {
        clearTimeout(timer);
        if (item instanceof Error) reject(item);
        else resolve(item);
      };
    });
  }

  command(line: string, timeoutMs: number): Promise<Reply> {
    this.socket.write(`${line}\r\n`);
    return this.read(timeoutMs);
  }

  quit(): void {
    if (this.closed) return;
    this.socket.end('QUIT\r\n');
    this.detach();
    this.socket.on('error', () => {});
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private push(item: Reply | Error): void {
    const waiter = this.waiter;
    if (waiter !== undefined) {
      this.waiter = undefined;
      waiter(item);
    } else {
      this.queue.push(item);
    }
  }

  private readonly onData = (chunk: Buffer): void => {
    this.received += chunk.length;
    this.buffer += chunk.toString('latin1');
    if (this.buffer.length > 64 * 1024) {
      this.push(new NotSmtpError());
      this.buffer = '';
      return;
    }
    for (let end = this.buffer.indexOf('\n'); end >= 0; end = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, end).replace(/\r$/, '');
      this.buffer = this.buffer.slice(end + 1);
      const m = /^(\d{3})(?:([ -])(.*))?$/.exec(line);
      if (m === null) {
        this.push(new NotSmtpError());
        continue;
      }
      this.lines.push(m[3] ?? '');
      if (m[2] !== '-') {
        const code = Number(m[1]);
        this.push({ code, lines: this.lines, text: this.lines.map((l, i) => (i === 0 ? `${code} ${l}` : l)).join(' ') });
        this.lines = [];
      }
    }
  };

  private readonly onError = (err: Error): void => {
    this.push(err);
  };

  private readonly onClose = (): void => {
    this.closed = true;
    this.push(Object.assign(new Error('the server closed the connection'), { code: 'ECLOSED' }));
  };
}

interface TlsTarget {
  address: string;
  port: number;
  /** the configured host without brackets: the name the certificate must carry */
  host: string;
  servername: string | undefined;
  base: tls.ConnectionOptions;
}

/**
 * Waits for the greeting. A server that stays silent may be waiting for a TLS ClientHello
 * (implicit TLS on a port set up for STARTTLS): after a short pause a second connection tries a
 * handshake, so the check can say so instead of only "timed out".
 */
async function awaitGreeting(wire: Wire, target: TlsTarget, timeouts: DiagnoseTimeoutsMs, where: string, cleanup: (() => void)[]): Promise<Reply | 'speaks-tls'> {
  const greeting = wire.read(timeouts.greeting);
  greeting.catch(() => {});
  let sniffTimer: NodeJS.Timeout | undefined;
  const sniff = new Promise<'speaks-tls'>((resolve) => {
    sniffTimer = setTimeout(() => {
      // Only a server that has sent nothing at all: a slow multi-line greeting is still SMTP.
      if (wire.received > 0) return;
      const probe = speaksTls(target, timeouts.greeting);
      cleanup.push(probe.cancel);
      void probe.result.then((yes) => {
        if (yes) resolve('speaks-tls');
      });
    }, Math.min(1500, Math.floor(timeouts.greeting / 3)));
  });
  try {
    const first = await Promise.race([greeting, sniff]);
    if (first === 'speaks-tls') return first;
    if (first.code === 220) return first;
    // 421 and 554 are the refusals a mail server may greet with (RFC 5321 §3.1, §4.2.5); any other
    // reply is not from a mail server, and is not quoted.
    if (first.code !== 421 && first.code !== 554) throw notSmtp(where);
    const temporary = first.code === 421;
    throw new Failure(
      'connect_failed',
      `${where} refused the session before any command: "${clip(first.text)}".`,
      temporary
        ? 'The server is busy or limiting connections; try again in a few minutes.'
        : 'The server turns this machine away (its IP address may be blocked or not allowed to send). Ask the mail server\'s admin.',
    );
  } catch (err) {
    if (err instanceof Failure) throw err;
    if (err instanceof TimeoutError) {
      throw new Failure(
        'connect_failed',
        `Connected to ${where}, but the server sent no SMTP greeting within ${seconds(timeouts.greeting)}: timed out.`,
        `Something accepts connections on this port but does not speak SMTP (or is overloaded). Check the port: ${PORT_ADVICE} A firewall or proxy may be intercepting it.`,
      );
    }
    throw notSmtpOrClosed(err, where);
  } finally {
    clearTimeout(sniffTimer);
  }
}

function notSmtpOrClosed(err: unknown, where: string): Failure {
  if (err instanceof NotSmtpError) return notSmtp(where);
  return lostConnection(err, where, 'the greeting');
}

function lostConnection(err: unknown, where: string, during: string): Failure {
  if (err instanceof Failure) return err;
  if (err instanceof TimeoutError) {
    return new Failure('connect_failed', `${where} stopped answering during ${during}: timed out.`, 'The server or a firewall in between stalls the session; try again, and check the port.');
  }
  if (err instanceof NotSmtpError) return notSmtpOrClosed(err, where);
  return new Failure('connect_failed', `${where} closed the connection during ${during} (${oneLine(errorText(err))}).`, `Check the port and SSL setting. ${PORT_ADVICE}`);
}

async function readGreetingOverTls(wire: Wire, timeoutMs: number, where: string): Promise<Reply> {
  let reply: Reply;
  try {
    reply = await wire.read(timeoutMs);
  } catch (err) {
    if (err instanceof TimeoutError) {
      throw new Failure('connect_failed', `TLS works on ${where}, but no SMTP greeting followed within ${seconds(timeoutMs)}.`, 'The port speaks TLS but perhaps not SMTP: check the host and port.');
    }
    throw notSmtpOrClosed(err, where);
  }
  if (reply.code === 421 || reply.code === 554) {
    throw new Failure('connect_failed', `${where} refused the session before any command: "${clip(reply.text)}".`, 'The server turns this machine away; ask the mail server\'s admin.');
  }
  if (reply.code !== 220) throw notSmtp(where);
  return reply;
}

async function ehloOrFail(wire: Wire, timeoutMs: number, where: string): Promise<Reply> {
  const reply = await wire.command(`EHLO ${ehloName(wire.localAddress)}`, timeoutMs).catch((err: unknown) => {
    throw lostConnection(err, where, 'EHLO');
  });
  if (reply.code !== 250) throw new Failure('connect_failed', `The server refused EHLO over TLS: "${clip(reply.text)}".`, 'Check the mail server\'s configuration.');
  return reply;
}

function offers(ehlo: Reply, extension: string): boolean {
  return ehlo.lines.slice(1).some((line) => line.trim().split(/\s+/)[0]?.toUpperCase() === extension);
}

/** What nodemailer says in EHLO: the machine's name when it is qualified, else its address literal. */
function ehloName(localAddress: string | undefined): string {
  let name = '';
  try {
    name = os.hostname();
  } catch {
    name = '';
  }
  if (name.includes('.') && /^[A-Za-z0-9.-]+$/.test(name) && net.isIP(name) === 0) return name;
  if (localAddress !== undefined && net.isIPv4(localAddress.replace(/^::ffff:/, ''))) return `[${localAddress.replace(/^::ffff:/, '')}]`;
  return '[127.0.0.1]';
}

interface TlsInfo {
  describe: string;
}

/** The handshake could not start or complete; `code` as Node or OpenSSL gave it. */
class TlsHandshakeError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly certificate?: tls.PeerCertificate,
  ) {
    super(message);
  }
}

/**
 * Upgrades the wire's socket to TLS (implicit TLS or after STARTTLS). Verification is done here,
 * by hand, only so that the failure can name the certificate it saw; this connection never
 * carries credentials or mail — nodemailer, which does, verifies with rejectUnauthorized: true.
 */
function startTls(wire: Wire, target: TlsTarget, timeoutMs: number): Promise<TlsInfo> {
  const plain = wire.detach();
  plain.on('error', () => {});
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ ...target.base, socket: plain, host: target.address, servername: target.servername, rejectUnauthorized: false });
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new TlsHandshakeError('the TLS handshake timed out', 'ETIMEDOUT'));
    }, timeoutMs);
    const onError = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(new TlsHandshakeError(err.message, err.code ?? 'ERROR'));
    };
    socket.once('error', onError);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket.off('error', onError);
      const certificate = socket.getPeerCertificate();
      if (!socket.authorized) {
        const reason = socket.authorizationError as unknown as string | (Error & { code?: string }) | null;
        const code = typeof reason === 'string' ? reason : (reason?.code ?? reason?.message ?? 'UNABLE_TO_VERIFY_LEAF_SIGNATURE');
        socket.destroy();
        reject(new TlsHandshakeError(code, code, certificate));
        return;
      }
      const mismatch = tls.checkServerIdentity(target.host, certificate);
      if (mismatch !== undefined) {
        socket.destroy();
        reject(new TlsHandshakeError(mismatch.message, (mismatch as Error & { code?: string }).code ?? 'ERR_TLS_CERT_ALTNAME_INVALID', certificate));
        return;
      }
      wire.attach(socket);
      resolve({ describe: `${socket.getProtocol() ?? 'TLS'}; ${describeCertificate(certificate)}` });
    });
  });
}

const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'CERT_CHAIN_TOO_LONG',
]);

function isNotTls(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return (
    e.code === 'ERR_SSL_WRONG_VERSION_NUMBER' ||
    e.code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' ||
    e.code === 'ERR_SSL_HTTP_REQUEST' ||
    e.code === 'ECONNRESET' ||
    e.code === 'EPIPE' ||
    /wrong version number|packet length too long|unknown protocol|record layer failure|before secure TLS connection/i.test(e.message ?? '')
  );
}

function tlsFailure(err: unknown, target: TlsTarget): Failure {
  const e = err as TlsHandshakeError;
  const code = e.code ?? 'ERROR';
  const cert = e.certificate !== undefined && Object.keys(e.certificate).length > 0 ? e.certificate : undefined;
  const seen = cert ? ` It presented ${describeCertificate(cert)}.` : '';
  if (UNTRUSTED.has(code)) {
    return new Failure(
      'tls_failed',
      `The certificate of ${target.host} is not trusted (${code}: ${untrustedReason(code)}).${seen}`,
      'The server\'s certificate is self-signed or issued by an unknown CA. If the server uses a private CA, give Gatehouse that CA: start it with NODE_EXTRA_CA_CERTS=/path/to/ca.pem. Certificate verification is never turned off. If the issuer is a firewall or antivirus product, it is intercepting TLS.',
    );
  }
  if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') {
    return new Failure(
      'tls_failed',
      `The certificate of ${target.host} ${code === 'CERT_HAS_EXPIRED' ? 'has expired' : 'is not valid yet'}.${seen}`,
      'The mail server\'s certificate must be renewed by its admin (or this machine\'s clock is wrong).',
    );
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return new Failure(
      'tls_failed',
      `The certificate of ${target.host} is for ${cert?.subjectaltname ?? 'other names'}, not ${target.host}.`,
      'Use the host name the certificate was issued for (for example smtp.office365.com rather than an IP address or an alias).',
    );
  }
  if (code === 'ERR_SSL_UNSUPPORTED_PROTOCOL' || code === 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' || /unsupported protocol|protocol version/i.test(e.message ?? '')) {
    return new Failure('tls_failed', `${target.host} offers only TLS older than 1.2, which Gatehouse refuses.`, 'Upgrade the mail server\'s TLS configuration, or send through another relay.');
  }
  if (code === 'ETIMEDOUT') {
    return new Failure('tls_failed', `The TLS handshake with ${target.host} timed out.`, `The server accepted the connection but did not complete TLS. ${PORT_ADVICE}`);
  }
  return new Failure('tls_failed', `The TLS handshake with ${target.host} failed (${code}): ${oneLine(e.message ?? '')}`, `Check that the port and the SSL setting match the server. ${PORT_ADVICE}`);
}

/** Implicit TLS failed: when the port is not speaking TLS at all, find out what it does speak. */
async function implicitTlsFailure(err: unknown, target: TlsTarget, timeouts: DiagnoseTimeoutsMs, where: string): Promise<Failure> {
  const silent = (err as TlsHandshakeError).code === 'ETIMEDOUT';
  if (!isNotTls(err) && !silent) return tlsFailure(err, target);
  const plain = await sniffPlainSmtp(target, timeouts);
  if (plain === 'not-smtp') return notSmtp(where);
  if (plain !== undefined) {
    const starttls = plain.offersStarttls ? ' and offers STARTTLS' : '';
    const code = (err as TlsHandshakeError).code;
    const saw = code === 'ERR_SSL_WRONG_VERSION_NUMBER' ? '"wrong version number"' : silent ? 'a timeout' : code;
    return new Failure(
      'tls_failed',
      `Port ${target.port} is set for implicit TLS, but ${where} answers in plain text ("${clip(plain.greeting, 80)}")${starttls}: the TLS handshake failed with ${saw}.`,
      `Port ${target.port} expects implicit TLS but this server speaks plain SMTP — it likely wants STARTTLS: use port 587 with SSL enabled.`,
    );
  }
  if (silent) {
    return new Failure(
      'connect_failed',
      `Connected to ${where}, but the server answered neither a TLS handshake nor with an SMTP greeting within ${seconds(timeouts.greeting)}: timed out.`,
      `Something accepts connections on this port but does not speak SMTP. Check the host and port. ${PORT_ADVICE}`,
    );
  }
  return tlsFailure(err, target);
}

/**
 * A fresh plain connection: does the port greet in plain SMTP, and does it offer STARTTLS?
 * 'not-smtp' when it greets with something else (an SSH banner); undefined when it says nothing.
 */
async function sniffPlainSmtp(target: TlsTarget, timeouts: DiagnoseTimeoutsMs): Promise<{ greeting: string; offersStarttls: boolean } | 'not-smtp' | undefined> {
  let socket: net.Socket | undefined;
  try {
    socket = await connectTcp(target.address, target.port, timeouts.connect, '');
    const wire = new Wire(socket);
    const greeting = await wire.read(timeouts.greeting).catch((err: unknown) => {
      if (err instanceof NotSmtpError) return 'not-smtp' as const;
      throw err;
    });
    if (greeting === 'not-smtp') return greeting;
    if (greeting.code !== 220) return greeting.code === 421 || greeting.code === 554 ? undefined : 'not-smtp';
    const ehlo = await wire.command(`EHLO ${ehloName(socket.localAddress)}`, timeouts.socket).catch(() => undefined);
    wire.quit();
    return { greeting: greeting.text, offersStarttls: ehlo !== undefined && ehlo.code === 250 && offers(ehlo, 'STARTTLS') };
  } catch {
    return undefined;
  } finally {
    setTimeout(() => socket?.destroy(), 1000).unref();
  }
}

/** A side connection that only tries a TLS handshake; nothing is ever sent over it. */
function speaksTls(target: TlsTarget, timeoutMs: number): { result: Promise<boolean>; cancel: () => void } {
  let socket: tls.TLSSocket | undefined;
  const result = new Promise<boolean>((resolve) => {
    // No certificate check: this asks only "is it TLS?", and the connection is closed right away.
    socket = tls.connect({ host: target.address, port: target.port, servername: target.servername, rejectUnauthorized: false });
    socket.on('error', () => {});
    const timer = setTimeout(() => {
      socket?.destroy();
      resolve(false);
    }, timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      socket?.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      clearTimeout(timer);
      socket?.destroy();
      resolve(false);
    });
  });
  return { result, cancel: () => socket?.destroy() };
}

function untrustedReason(code: string): string {
  if (code === 'DEPTH_ZERO_SELF_SIGNED_CERT') return 'self-signed certificate';
  if (code === 'SELF_SIGNED_CERT_IN_CHAIN') return 'self-signed certificate in the chain';
  if (code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' || code === 'UNABLE_TO_GET_ISSUER_CERT') return 'issued by an unknown CA';
  return 'not trusted';
}

function describeCertificate(cert: tls.PeerCertificate): string {
  const subject = nameOf(cert.subject) ?? cert.subjectaltname ?? 'an unnamed subject';
  const issuer = nameOf(cert.issuer) ?? 'an unnamed issuer';
  const validTo = cert.valid_to ? new Date(cert.valid_to) : undefined;
  const until = validTo !== undefined && !Number.isNaN(validTo.getTime()) ? `, valid until ${validTo.toISOString().slice(0, 10)}` : '';
  return `certificate for "${subject}" issued by "${issuer}"${until}`;
}

function nameOf(name: tls.Certificate | undefined): string | undefined {
  if (name === undefined || name === null) return undefined;
  const value = name.CN ?? name.O;
  return Array.isArray(value) ? value.join(', ') : value;
}

// ---------------------------------------------------------------------------------------------
// AUTH and sending (nodemailer errors)

interface TransportContext {
  where: string;
  settings: EmailSettings;
  credentials: SmtpCredentials;
  to: string;
  during: 'auth' | 'send';
  /** blanks out the password in server text */
  hide: (text: string) => string;
}

function transportFailure(err: unknown, ctx: TransportContext): Failure {
  const e = err as { code?: string; responseCode?: number; response?: string; command?: string; message?: string };
  // nodemailer connects anew: whatever answers this time may not be the mail server seen above.
  const text = serverErrorText(err);
  if (text === NOT_SMTP_DETAIL) return notSmtp(ctx.where);
  const reply = ctx.hide(oneLine(text));
  const google = /google|gmail/i.test(reply) || /(^|\.)(gmail|google(mail)?)\.com\.?$/i.test(ctx.settings.host);
  const microsoft = /office365|outlook|microsoft/i.test(ctx.settings.host) || /5\.7\.(139|57|3)\b/.test(reply);

  // Authentication problems, whichever command they surface on (Microsoft's 5.7.57 comes at MAIL FROM).
  const authReply = typeof e.responseCode === 'number' && /5\.7\.(57|139|3|8|9|14)\b|^53[045]\b|authentication required/i.test(reply);
  if (e.code === 'EAUTH' || authReply) {
    return new Failure(
      'auth_failed',
      e.code === 'EAUTH' ? `The server refused the sign-in: "${clip(reply)}".` : `The server wants a sign-in: it refused ${e.command ?? 'the message'} with "${clip(reply)}".`,
      authenticationHint(reply, google) ?? `Check the password in the secret "${ctx.settings.passwordSecretName ?? ''}" and that the sender address in "${ctx.settings.emailSecretName}" is the account's user name.${microsoft ? ' On Microsoft 365, Authenticated SMTP must be on for the mailbox.' : ''}`,
    );
  }
  if (e.code === 'ETLS') return new Failure('tls_failed', `TLS failed while ${ctx.during === 'auth' ? 'signing in' : 'sending'}: ${clip(reply)}`, PORT_ADVICE);
  if (e.code === 'EDNS') return new Failure('dns_failed', `The host could not be resolved: ${clip(reply)}`, 'Check the host name and this machine\'s DNS.');
  if (e.code === 'EENVELOPE' || e.code === 'EMESSAGE' || typeof e.responseCode === 'number') {
    const temporary = typeof e.responseCode === 'number' && e.responseCode >= 400 && e.responseCode < 500 ? 'This is temporary: try again in a few minutes. ' : '';
    const command = e.command ?? (e.code === 'EMESSAGE' ? 'DATA' : 'the envelope');
    if (/^MAIL/i.test(command) || /SendAsDenied|5\.7\.60|5\.2\.252|not (?:allowed|authori[sz]ed|permitted) to send|sender address rejected/i.test(reply)) {
      return new Failure(
        'rejected',
        `The server refused the sender ${ctx.credentials.from} at ${command}: "${clip(reply)}".`,
        `${temporary}The account may not send as this address: the email secret "${ctx.settings.emailSecretName}" must hold the mailbox's own address (or one it is allowed to send as).`,
      );
    }
    if (/^RCPT/i.test(command) || /recipients? (?:were )?rejected/i.test(e.message ?? '')) {
      return new Failure(
        'rejected',
        `The server refused the recipient ${ctx.to}: "${clip(reply)}".`,
        `${temporary}The address may not exist, or the server does not relay to other domains for this account (e.g. "550 5.7.1 relaying denied"). Try an address in the server's own domain, or check its relay rules.`,
      );
    }
    return new Failure(
      'rejected',
      `The server refused the test message at ${command}: "${clip(reply)}".`,
      `${temporary}A content or policy filter refused it (spam check, size limit, SPF/DMARC for the sender's domain). The mail server's logs say which.`,
    );
  }
  if (e.code === 'ETIMEDOUT') {
    return new Failure('connect_failed', `${ctx.where} stopped answering while ${ctx.during === 'auth' ? 'signing in' : 'sending'}: timed out.`, 'The server or a firewall in between stalls the session; try again.');
  }
  return new Failure('connect_failed', `The connection to ${ctx.where} failed while ${ctx.during === 'auth' ? 'signing in' : 'sending'}: ${clip(reply)}`, 'Try again; if it keeps failing, check the port, the SSL setting and the network.');
}

/** Plain-language advice for the replies providers give to a refused sign-in; undefined for other replies. */
function authenticationHint(reply: string, google: boolean): string | undefined {
  if (/5\.7\.139/.test(reply)) {
    return 'Microsoft 365 has basic authentication (SMTP AUTH with a password) turned off for this tenant (Security defaults or an authentication policy). An admin must allow SMTP AUTH for this mailbox, or send through another relay.';
  }
  if (/5\.7\.57/.test(reply)) {
    return 'The server wants the client to sign in before it takes mail (on Microsoft 365, SMTP AUTH is off for the mailbox or tenant). Set a password secret name, and turn on Authenticated SMTP for the mailbox (Microsoft 365 admin center → Users → the mailbox → Mail → Manage email apps).';
  }
  if (/5\.7\.3\b/.test(reply)) {
    return 'Microsoft 365 refused the sign-in: SMTP AUTH is turned off for this mailbox, or the password is wrong. Turn on Authenticated SMTP for the mailbox (Microsoft 365 admin center → Users → the mailbox → Mail → Manage email apps) and check the password secret; with multi-factor sign-in, use an app password.';
  }
  if (google && /5\.7\.(8|9)\b|534|535/.test(reply)) {
    return 'Gmail does not take the account\'s normal password over SMTP: turn on 2-Step Verification for the Google account, create an App Password (myaccount.google.com/apppasswords) and store it in the password secret.';
  }
  if (google && /5\.7\.14/.test(reply)) {
    return 'Google blocked this sign-in: sign in to the account in a browser, review the security alert, then use an App Password (with 2-Step Verification) in the password secret.';
  }
  if (/^4\d\d|\b4\.7\.\d/.test(reply)) return 'The server refused the sign-in for now (too many attempts or a temporary problem): try again in a few minutes.';
  if (/5\.7\.8\b|^535\b/.test(reply)) {
    return 'The server says the user name or password is wrong. Check the password secret; the user name is the sender address held in the email secret.';
  }
  if (/^530\b|authentication required/i.test(reply)) {
    return 'The server wants the client to sign in before it takes mail: set a password secret name on the Settings page.';
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// small helpers

function describeMode(mode: TlsMode, port: number): string {
  if (mode === 'implicit') return 'SSL enabled: implicit TLS';
  if (mode === 'starttls-required') return `SSL enabled: STARTTLS required on port ${port}`;
  return 'SSL off: STARTTLS when offered, never a password in clear to a non-loopback host';
}

function bareHost(host: string): string {
  return host.replace(/^\[|\]$/g, '').replace(/\.$/, '');
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(onTimeout()), timeoutMs);
    }),
  ]).finally(() => clearTimeout(timer));
}

function msSince(startedAt: number): number {
  return Math.round(performance.now() - startedAt);
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

function clip(text: string, max = 300): string {
  const line = oneLine(text);
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}
