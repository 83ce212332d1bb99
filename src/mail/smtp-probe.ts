import net from 'node:net';
import os from 'node:os';
import type { Transporter } from 'nodemailer';
import { clip, errorText, fail, Failure, oneLine, refusalAdvice, seconds, signInAdvice, type SecretNames } from './advice.js';
import type { DiagnoseTimeoutsMs, ProbeContext, ProbeSession, TransportCheck } from './transport-check.js';
import { type TlsMode, type TlsModeChoice, isLoopbackHost, tlsModeOf } from './settings.js';
import { connectFirst, connectTcp } from './net-probe.js';
import { isNotTls, speaksTls, type TlsTarget, tlsFailure, upgradeToTls } from './tls-probe.js';
import { credentialForms, envelopeFields, mailer, NOT_SMTP_DETAIL, scrub, serverErrorText, smtpTransportOptions } from './transport.js';

/*
 * The staged check's SMTP probe. The early steps speak SMTP by hand (greeting, EHLO, STARTTLS)
 * so that a failure can say what the server really speaks; AUTH and the test message then go
 * through nodemailer with the same options the outbox uses, so a check that passes means real
 * mail will go out. Nothing a peer says is quoted unless it is an SMTP reply: else the Settings
 * page would read the banners of any host and port it can reach.
 */

const TEST_MESSAGE_SUBJECT = 'Gatehouse test email';

export const smtpCheck: TransportCheck = {
  stages: ['connect', 'tls', 'auth', 'send'],
  describe: (settings) =>
    `${settings.host}:${settings.port}, ${describeMode(tlsModeOf(settings), settings.port)}${settings.transport === 'smtp-oauth2' ? `; XOAUTH2 with an Entra ID token (app ${settings.clientId ?? 'managed identity'})` : ''}`,
  open: openSmtpProbe,
};

/** How the Settings page names a TLS mode. */
function tlsModeName(mode: TlsModeChoice): string {
  return mode === 'auto' ? '"Automatic"' : mode === 'starttls' ? '"STARTTLS"' : '"Implicit TLS"';
}

function describeMode(mode: TlsMode, port: number): string {
  if (mode === 'implicit') return `SSL enabled: implicit TLS on port ${port}`;
  if (mode === 'starttls-required') return `SSL enabled: STARTTLS required on port ${port}`;
  return 'SSL off: STARTTLS when offered, never a password in clear to a non-loopback host';
}

function openSmtpProbe(ctx: ProbeContext): ProbeSession {
  const { settings, credentials, addresses, timeouts, to, accessToken } = ctx;
  const mode = tlsModeOf(settings);
  const where = `${settings.host}:${settings.port}`;
  const oauth2 = accessToken !== undefined;
  const sendsPassword = credentials.pass !== null || oauth2;
  // What a server says after AUTH is shown with the password (and its base64) blanked out, in
  // case it echoes them; our own text never holds the password.
  const redact = credentialForms(credentials, accessToken);
  const hide = (text: string): string => scrub(text, redact);
  const cleanup: (() => void)[] = [];
  const transportOptions = smtpTransportOptions({ settings, credentials, accessToken, timeoutsMs: timeouts });
  // The address that answers; the certificate is still checked against the configured host.
  const tlsTarget: TlsTarget = { address: addresses[0]!, port: settings.port, host: ctx.host, servername: transportOptions.tls?.servername, base: transportOptions.tls ?? {} };
  let opened: { wire: Wire; greeting: Reply | 'speaks-tls' | undefined } | undefined;
  let session: { secured: boolean; ehlo: Reply } | undefined;
  let transporter: Transporter | undefined;
  // One transport for AUTH and the message, with the options the outbox uses, to the address that answered.
  const transport = (): Transporter => {
    if (transporter === undefined) {
      const t = mailer().createTransport({ ...transportOptions, host: tlsTarget.address });
      cleanup.push(() => t.close());
      transporter = t;
    }
    return transporter;
  };
  const failedWhile = (during: 'auth' | 'send') => (err: unknown) => transportFailure(err, { where, host: settings.host, names: settings, oauth2, from: credentials.from, to, during, hide });

  return {
    async connect() {
      const socket = await connectFirst(addresses, settings.port, timeouts.connect, where);
      const address = socket.remoteAddress ?? addresses[0]!;
      tlsTarget.address = address;
      const wire = new Wire(socket);
      cleanup.push(() => wire.current.destroy(), () => socket.destroy());
      if (mode === 'implicit') {
        opened = { wire, greeting: undefined };
        return `connected to ${address}:${settings.port}`;
      }
      const greeting = await awaitGreeting(wire, tlsTarget, timeouts, where, cleanup);
      opened = { wire, greeting };
      if (greeting === 'speaks-tls') return `connected to ${address}:${settings.port}; no plain-text greeting, but the port answers a TLS handshake`;
      return `connected to ${address}:${settings.port}; greeting "${clip(greeting.text, 120)}"`;
    },

    async tls() {
      const { wire, greeting } = opened!;
      const [secured, detail] = await secure(wire, greeting);
      session = secured;
      wire.quit();
      return detail;
    },

    async auth() {
      if (!sendsPassword) return { skipped: 'no password secret is set: sending without AUTH' };
      if (!offers(session!.ehlo, 'AUTH')) {
        throw fail('no-auth-offered', `${where} does not offer AUTH${session!.secured ? ' over TLS' : ''}, so the ${oauth2 ? 'token' : 'password'} cannot be used.`);
      }
      if (oauth2 && !authMechanisms(session!.ehlo).includes('XOAUTH2')) {
        throw fail('xoauth2-not-offered', `${where} offers AUTH ${authMechanisms(session!.ehlo).join(' ') || '(no mechanism)'} but not XOAUTH2.`);
      }
      await transport().verify().catch((err: unknown) => {
        throw failedWhile('auth')(err);
      });
      return oauth2 ? `signed in as ${credentials.user} with an Entra ID token (XOAUTH2)` : `signed in as ${credentials.user}`;
    },

    async send() {
      const info = await transport()
        .sendMail({
          from: credentials.from,
          to,
          ...envelopeFields(ctx.messageIdDomain),
          subject: TEST_MESSAGE_SUBJECT,
          text: ['This is a test message from Gatehouse.', '', 'If you can read it, the sender email settings work: password-reset emails can be delivered.'].join('\n'),
        })
        .catch((err: unknown) => {
          throw failedWhile('send')(err);
        });
      return `accepted for ${to}: "${clip(hide(String(info.response ?? '')), 160)}"`;
    },

    close() {
      for (const fn of cleanup) {
        try {
          fn();
        } catch {
          // already closed
        }
      }
    },
  };

  /** The tls step: implicit TLS, STARTTLS, or plain text where that is allowed. */
  async function secure(wire: Wire, greeting: Reply | 'speaks-tls' | undefined): Promise<[{ secured: boolean; ehlo: Reply }, string]> {
    if (mode === 'implicit') {
      let described: string;
      try {
        described = await startTls(wire, tlsTarget, timeouts.greeting);
      } catch (err) {
        throw await implicitTlsFailure(err, tlsTarget, timeouts, where);
      }
      await readGreetingOverTls(wire, timeouts.greeting, where);
      const ehlo = await ehloOrFail(wire, timeouts.socket, where);
      return [{ secured: true, ehlo }, `implicit TLS, ${described}`];
    }
    if (greeting === 'speaks-tls') {
      throw fail(
        mode === 'opportunistic' ? 'implicit-tls-with-ssl-off' : 'implicit-tls-on-starttls-port',
        `${where} expects TLS from the first byte (implicit TLS) and sends no plain-text greeting, but ${mode === 'opportunistic' ? 'SSL is off' : `TLS mode ${tlsModeName(settings.tlsMode)} on port ${settings.port} means STARTTLS`}.`,
      );
    }
    let ehlo = await wire.command(`EHLO ${ehloName(wire.localAddress)}`, timeouts.socket).catch((err: unknown) => {
      throw lostConnection(err, where, 'EHLO');
    });
    if (ehlo.code !== 250) {
      if (mode === 'starttls-required') throw fail('ehlo-refused-before-starttls', `The server refused EHLO, so it cannot offer STARTTLS: "${clip(ehlo.text)}".`);
      ehlo = { code: 250, lines: [], text: '' };
    }
    if (!offers(ehlo, 'STARTTLS')) {
      if (mode === 'starttls-required') {
        throw fail('no-starttls', `${where} does not offer STARTTLS, and TLS mode ${tlsModeName(settings.tlsMode)} on port ${settings.port} requires it. Nothing was sent: the credentials never left this machine.`);
      }
      if (sendsPassword && !isLoopbackHost(settings.host)) {
        throw fail('no-starttls-for-password', `${where} does not offer STARTTLS, and Gatehouse never sends a password unencrypted to a host that is not loopback. Nothing was sent.`);
      }
      const why = isLoopbackHost(settings.host) ? `${settings.host} is a loopback host` : 'no password is sent (the mail itself travels unencrypted)';
      return [{ secured: false, ehlo }, `not encrypted: the server offers no STARTTLS; allowed because ${why}`];
    }
    const reply = await wire.command('STARTTLS', timeouts.socket).catch((err: unknown) => {
      throw lostConnection(err, where, 'STARTTLS');
    });
    if (reply.code !== 220) throw fail('starttls-refused', `The server advertised STARTTLS but refused it: "${clip(reply.text)}".`);
    let described: string;
    try {
      described = await startTls(wire, tlsTarget, timeouts.greeting);
    } catch (err) {
      throw tlsFailure(err, tlsTarget);
    }
    const again = await ehloOrFail(wire, timeouts.socket, where);
    return [{ secured: true, ehlo: again }, `STARTTLS, ${described}`];
  }
}

/**
 * Something answered that is not a mail server. None of its bytes are shown: quoting them would
 * turn the Settings page into a tool that reads the banners of any host and port it can reach.
 */
function notSmtp(where: string): Failure {
  return fail('not-smtp', `${where} does not speak SMTP.`);
}

// ---------------------------------------------------------------------------------------------
// TCP, greeting, STARTTLS

/** Tries each address in turn; the failure of the first one is the one reported. */


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
    throw fail(first.code === 421 ? 'greeting-busy' : 'greeting-refused', `${where} refused the session before any command: "${clip(first.text)}".`);
  } catch (err) {
    if (err instanceof Failure) throw err;
    if (err instanceof TimeoutError) {
      throw fail('no-greeting', `Connected to ${where}, but the server sent no SMTP greeting within ${seconds(timeouts.greeting)}: timed out.`);
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
  if (err instanceof TimeoutError) return fail('session-stalled', `${where} stopped answering during ${during}: timed out.`);
  if (err instanceof NotSmtpError) return notSmtpOrClosed(err, where);
  return fail('session-closed', `${where} closed the connection during ${during} (${oneLine(errorText(err))}).`);
}

async function readGreetingOverTls(wire: Wire, timeoutMs: number, where: string): Promise<Reply> {
  let reply: Reply;
  try {
    reply = await wire.read(timeoutMs);
  } catch (err) {
    if (err instanceof TimeoutError) throw fail('no-greeting-over-tls', `TLS works on ${where}, but no SMTP greeting followed within ${seconds(timeoutMs)}.`);
    throw notSmtpOrClosed(err, where);
  }
  if (reply.code === 421 || reply.code === 554) throw fail('greeting-refused-over-tls', `${where} refused the session before any command: "${clip(reply.text)}".`);
  if (reply.code !== 220) throw notSmtp(where);
  return reply;
}

async function ehloOrFail(wire: Wire, timeoutMs: number, where: string): Promise<Reply> {
  const reply = await wire.command(`EHLO ${ehloName(wire.localAddress)}`, timeoutMs).catch((err: unknown) => {
    throw lostConnection(err, where, 'EHLO');
  });
  if (reply.code !== 250) throw fail('ehlo-refused-over-tls', `The server refused EHLO over TLS: "${clip(reply.text)}".`);
  return reply;
}

function offers(ehlo: Reply, extension: string): boolean {
  return ehlo.lines.slice(1).some((line) => line.trim().split(/\s+/)[0]?.toUpperCase() === extension);
}

/** The mechanisms of the EHLO reply's AUTH line, upper-cased. */
function authMechanisms(ehlo: Reply): string[] {
  const line = ehlo.lines.slice(1).find((l) => l.trim().split(/\s+/)[0]?.toUpperCase() === 'AUTH');
  return line === undefined ? [] : line.trim().split(/\s+/).slice(1).map((m) => m.toUpperCase());
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

/** Swaps the wire's socket for its TLS successor (implicit TLS or after STARTTLS); the certificate's description. */
async function startTls(wire: Wire, target: TlsTarget, timeoutMs: number): Promise<string> {
  const { socket, describe } = await upgradeToTls(wire.detach(), target, timeoutMs);
  wire.attach(socket);
  return describe;
}

/** Implicit TLS failed: when the port is not speaking TLS at all, find out what it does speak. */
async function implicitTlsFailure(err: unknown, target: TlsTarget, timeouts: DiagnoseTimeoutsMs, where: string): Promise<Failure> {
  const code = (err as { code?: string }).code;
  const silent = code === 'ETIMEDOUT';
  if (!isNotTls(err) && !silent) return tlsFailure(err, target);
  const plain = await sniffPlainSmtp(target, timeouts);
  if (plain === 'not-smtp') return notSmtp(where);
  if (plain !== undefined) {
    const starttls = plain.offersStarttls ? ' and offers STARTTLS' : '';
    const saw = code === 'ERR_SSL_WRONG_VERSION_NUMBER' ? '"wrong version number"' : silent ? 'a timeout' : code;
    return fail(
      'plain-smtp-on-implicit-port',
      `Port ${target.port} is set for implicit TLS, but ${where} answers in plain text ("${clip(plain.greeting, 80)}")${starttls}: the TLS handshake failed with ${saw}.`,
      { port: target.port },
    );
  }
  if (silent) {
    return fail('neither-tls-nor-smtp', `Connected to ${where}, but the server answered neither a TLS handshake nor with an SMTP greeting within ${seconds(timeouts.greeting)}: timed out.`);
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

// ---------------------------------------------------------------------------------------------
// AUTH and sending (nodemailer errors)

interface TransportContext {
  where: string;
  host: string;
  names: SecretNames;
  /** XOAUTH2 with an Entra ID token rather than a password */
  oauth2: boolean;
  from: string;
  to: string;
  during: 'auth' | 'send';
  /** blanks out the password in server text */
  hide: (text: string) => string;
}

/** A refused sign-in or message, or a connection lost on the way, as nodemailer reports it. */
function transportFailure(err: unknown, ctx: TransportContext): Failure {
  const e = err as { code?: string; responseCode?: number; command?: string; message?: string };
  // nodemailer connects anew: whatever answers this time may not be the mail server seen above.
  const text = serverErrorText(err);
  if (text === NOT_SMTP_DETAIL) return notSmtp(ctx.where);
  const reply = ctx.hide(oneLine(text));
  const doing = ctx.during === 'auth' ? 'signing in' : 'sending';

  // A token Exchange Online refuses: not a password problem, whatever the reply says.
  if (ctx.oauth2 && ctx.during === 'auth' && (e.code === 'EAUTH' || typeof e.responseCode === 'number')) {
    return fail('xoauth2-refused', `The server refused the token: "${clip(reply)}".`);
  }
  // Authentication problems, whichever command they surface on.
  const signIn = e.code === 'EAUTH' || typeof e.responseCode === 'number' ? signInAdvice(reply, ctx.host, ctx.names, { afterAuth: e.code === 'EAUTH' }) : undefined;
  if (signIn !== undefined) {
    const message = e.code === 'EAUTH' ? `The server refused the sign-in: "${clip(reply)}".` : `The server wants a sign-in: it refused ${e.command ?? 'the message'} with "${clip(reply)}".`;
    return new Failure(signIn.error, message, signIn.hint);
  }
  if (e.code === 'ETLS') return fail('tls-failed-while-sending', `TLS failed while ${doing}: ${clip(reply)}`);
  if (e.code === 'EDNS') return fail('dns-failed-while-sending', `The host could not be resolved: ${clip(reply)}`);
  if (e.code === 'EENVELOPE' || e.code === 'EMESSAGE' || typeof e.responseCode === 'number') {
    const command = e.command ?? (e.code === 'EMESSAGE' ? 'DATA' : 'the envelope');
    const refusal = refusalAdvice({ command, reply, error: e.message ?? '', responseCode: e.responseCode }, ctx.names);
    const what = refusal.refused === 'sender' ? `the sender ${ctx.from} at ${command}` : refusal.refused === 'recipient' ? `the recipient ${ctx.to}` : `the test message at ${command}`;
    return new Failure(refusal.error, `The server refused ${what}: "${clip(reply)}".`, refusal.hint);
  }
  if (e.code === 'ETIMEDOUT') return fail('stalled-while-sending', `${ctx.where} stopped answering while ${doing}: timed out.`);
  return fail('failed-while-sending', `The connection to ${ctx.where} failed while ${doing}: ${clip(reply)}`);
}

// ---------------------------------------------------------------------------------------------
// Reading SMTP replies

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

