import { createHash, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type nodemailer from 'nodemailer';
import type { SMTPTransportOptions, Transporter } from 'nodemailer';
import type { SecretStore } from '../secrets/store.js';
import { DEFAULT_GRAPH_BASE_URL, DEFAULT_MAIL_POOL_SIZE, DEFAULT_MAIL_SECRET_NAME_PATTERN } from '../config.js';
import { createTokenSource, GRAPH_SCOPE, OUTLOOK_SCOPE, TokenError, type TokenSource } from './entra.js';
import { GraphError, graphSendMail, type GraphSituation } from './graph.js';
import { readSenderSecrets, type MailCredentials } from './sender-secrets.js';
import { type EmailSettings, isLoopbackHost, tlsModeOf } from './settings.js';

const require = createRequire(import.meta.url);

/**
 * nodemailer, loaded at its first use: the request thread of a running dashboard sends nothing
 * itself (the delivery thread does), so it never holds nodemailer's code unless an admin runs a
 * check from the Settings page.
 */
export function mailer(): typeof nodemailer {
  return require('nodemailer') as typeof nodemailer;
}

export interface OutgoingMessage {
  to: string;
  subject: string;
  text: string;
  html: string;
}

/** The port every sender implements: one method. */
export interface Mailer {
  send(message: OutgoingMessage): Promise<void>;
}

/** A send that failed; `transient` ones are retried with backoff, the others fail the delivery. */
export class MailSendError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
    readonly code: string,
    /** the server asked to wait this long before the next try (Graph's 429) */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'MailSendError';
  }
}

export class MailNotConfiguredError extends MailSendError {
  constructor(message: string) {
    super(message, true, 'not_configured');
  }
}

/** The display name on every email; the address is the email secret's. */
export const SENDER_NAME = 'Gatehouse';

/**
 * What every email Gatehouse sends carries besides its content: `Auto-Submitted: auto-generated`
 * (RFC 3834), so auto-responders and out-of-office replies leave it alone, and a Message-ID in
 * the dashboard's own domain (PUBLIC_URL's host) rather than the sending machine's name.
 */
export function envelopeFields(messageIdDomain: string): { messageId: string; headers: Record<string, string> } {
  return { messageId: `<${randomUUID()}@${messageIdDomain}>`, headers: { 'Auto-Submitted': 'auto-generated' } };
}

let composer: Transporter | undefined;

/** The message as MIME bytes, exactly as nodemailer would put it on the wire: text part first, then HTML. */
export async function composeMime(from: { name: string; address: string }, message: OutgoingMessage, messageIdDomain: string): Promise<Buffer> {
  composer ??= mailer().createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  const info = await composer.sendMail({ from, ...message, ...envelopeFields(messageIdDomain), disableFileAccess: true, disableUrlAccess: true });
  return info.message as Buffer;
}

/**
 * The sender's credentials for a send; a missing or blank secret is a configuration error, and
 * so is a name outside MAIL_SECRET_NAME_PATTERN, which is never read.
 */
async function resolveCredentials(settings: EmailSettings, secrets: SecretStore, secretNamePattern: RegExp): Promise<MailCredentials> {
  const read = await readSenderSecrets(settings, secrets, secretNamePattern);
  if (read.ok) return read.credentials;
  switch (read.problem) {
    case 'outside-pattern':
      throw new MailNotConfiguredError(`secret "${read.name}" was not read: its name does not match MAIL_SECRET_NAME_PATTERN (${secretNamePattern.source})`);
    case 'unreadable':
      throw read.cause;
    case 'missing':
      throw new MailNotConfiguredError(`secret "${read.name}" was not found`);
    case 'not-an-address':
      throw new MailNotConfiguredError(read.name === 'senderAddress' ? 'the sender address is not one email address' : `secret "${read.name}" does not hold one email address`);
    case 'not-a-pem-certificate':
      throw new MailNotConfiguredError(`secret "${read.name}" does not hold a certificate and its private key in PEM`);
  }
}

/**
 * Every form in which the password could come back in a server's reply (as is, base64, and the
 * base64 of an AUTH PLAIN exchange), longest first, so a reply can be scrubbed before it is
 * stored or shown.
 */
export function credentialForms(credentials: MailCredentials, accessToken?: string): string[] {
  const forms: string[] = [];
  const { user, pass } = credentials;
  if (pass !== null && pass !== '') {
    forms.push(pass, Buffer.from(pass).toString('base64'), Buffer.from(`\0${user}\0${pass}`).toString('base64'), Buffer.from(`${user}\0${user}\0${pass}`).toString('base64'));
  }
  if (accessToken !== undefined && accessToken !== '') {
    forms.push(accessToken, Buffer.from(`user=${user}\x01auth=Bearer ${accessToken}\x01\x01`).toString('base64'));
  }
  if (credentials.entra?.kind === 'client-secret') forms.push(credentials.entra.secret);
  return forms.sort((a, b) => b.length - a.length);
}

export function scrub(text: string, forms: string[]): string {
  return forms.reduce((t, secret) => t.split(secret).join('[redacted]'), text);
}

export interface TransportOptionsInput {
  settings: EmailSettings;
  credentials: MailCredentials | null;
  /** smtp-oauth2: the Entra ID token AUTH XOAUTH2 presents instead of a password */
  accessToken?: string;
  timeoutsMs?: { connect: number; greeting: number; socket: number };
}

/** nodemailer options that implement "SSL enabled" and never let a password cross the network in clear. */
export function smtpTransportOptions(input: TransportOptionsInput): SMTPTransportOptions {
  const { settings, credentials } = input;
  const mode = tlsModeOf(settings);
  const oauth2 = credentials !== null && input.accessToken !== undefined;
  // A token is a password too: it never crosses the network in clear either.
  const sendsPassword = (credentials !== null && credentials.pass !== null) || oauth2;
  const t = input.timeoutsMs ?? { connect: 10_000, greeting: 10_000, socket: 30_000 };
  return {
    // "[::1]" is how a user writes an IPv6 literal; sockets want it without brackets.
    host: settings.host.replace(/^\[(.*)\]$/, '$1'),
    port: settings.port,
    secure: mode === 'implicit',
    // Opportunistic STARTTLS would fall back to plain text when the server does not offer it;
    // with a password to send to a host that is not loopback, that fallback is not allowed.
    requireTLS: mode === 'starttls-required' || (mode === 'opportunistic' && sendsPassword && !isLoopbackHost(settings.host)),
    ignoreTLS: false,
    auth: oauth2
      ? { type: 'OAuth2', user: credentials.user, accessToken: input.accessToken }
      : sendsPassword
        ? { user: credentials!.user, pass: credentials!.pass! }
        : undefined,
    tls: { rejectUnauthorized: true, minVersion: 'TLSv1.2', servername: isIpLiteral(settings.host) ? undefined : settings.host },
    connectionTimeout: t.connect,
    greetingTimeout: t.greeting,
    socketTimeout: t.socket,
    disableFileAccess: true,
    disableUrlAccess: true,
  };
}

function isIpLiteral(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

/** The first line of an SMTP reply: three digits, then a space, a dash or nothing. */
const SMTP_REPLY = /^\d{3}(?:[ -]|$)/;

export const NOT_SMTP_DETAIL = 'the server does not speak SMTP';

/**
 * What an error may tell of the server: its SMTP reply, or our own words. A peer that does not
 * speak SMTP (an SSH or HTTP banner) is never quoted, else the mail settings would be a port
 * scanner that reads banners of the internal network. nodemailer puts the raw reply in both
 * `response` and `message`, so with a response the message is not used.
 */
export function serverErrorText(err: unknown): string {
  const e = err as { response?: unknown; message?: unknown };
  if (typeof e.response === 'string' && e.response.trim() !== '') return SMTP_REPLY.test(e.response.trim()) ? e.response : NOT_SMTP_DETAIL;
  return typeof e.message === 'string' && e.message !== '' ? e.message : 'unknown error';
}

/** SMTP replies and socket errors → transient (retry) or permanent. */
export function classifySendError(err: unknown): MailSendError {
  if (err instanceof MailSendError) return err;
  const e = err as { code?: string; responseCode?: number; response?: string; message?: string; command?: string };
  const detail = serverErrorText(err).split('\n')[0]!.slice(0, 300);
  if (detail === NOT_SMTP_DETAIL) return new MailSendError(detail, true, 'connect_failed');
  // TLS first: a refused STARTTLS carries an SMTP reply code, but it is a TLS problem, and no credentials were sent.
  if (e.code === 'ETLS' && e.command === 'STARTTLS') return new MailSendError(`STARTTLS was refused or not offered (${detail})`, true, 'tls_failed');
  if (typeof e.responseCode === 'number') {
    return new MailSendError(`${detail}`, e.responseCode < 500, e.code === 'EAUTH' ? 'auth_failed' : 'rejected');
  }
  const code = e.code ?? 'ERROR';
  if (code === 'EAUTH') return new MailSendError(detail, false, 'auth_failed');
  if (code === 'ETLS' || /certificate|self.signed|wrong version number|SSL routines/i.test(detail)) return new MailSendError(detail, true, 'tls_failed');
  if (code === 'EDNS' || /ENOTFOUND|EAI_AGAIN/.test(detail)) return new MailSendError(detail, true, 'dns_failed');
  return new MailSendError(detail, true, 'connect_failed');
}

/** Sends each message with the settings it is given; what `chooseMailer` binds a Mailer to. */
export interface MailSender {
  send(settings: EmailSettings, message: OutgoingMessage): Promise<void>;
  close(): void;
}

export interface MailSenderOptions {
  /** MAIL_SECRET_NAME_PATTERN: a secret outside it is never read */
  secretNamePattern?: RegExp;
  /** the Message-ID's domain: PUBLIC_URL's host */
  messageIdDomain?: string;
  /** Entra ID tokens for smtp-oauth2 and graph */
  tokens?: TokenSource;
  /** GRAPH_BASE_URL */
  graphBaseUrl?: string;
  /** MAIL_POOL_SIZE: SMTP connections open at once (each sends one message at a time) */
  poolSize?: number;
}

interface Pool {
  key: string;
  transporter: Transporter;
  from: string;
  /** sends under way on this pool */
  sending: number;
}

/**
 * Reads the credentials at send time (cached by the secret store) and sends by the settings'
 * transport. SMTP keeps one pooled transport per settings + credentials (+ token), replaced when
 * any changes; a replaced pool is closed once the sends already on it are done: a concurrent send
 * under other settings must not cut them off.
 */
export function createMailSender(secrets: SecretStore, options: MailSenderOptions = {}): MailSender {
  const secretNamePattern = options.secretNamePattern ?? new RegExp(DEFAULT_MAIL_SECRET_NAME_PATTERN);
  const messageIdDomain = options.messageIdDomain ?? 'localhost';
  const tokens = options.tokens ?? createTokenSource();
  const graphBaseUrl = options.graphBaseUrl ?? DEFAULT_GRAPH_BASE_URL;
  const poolSize = options.poolSize ?? DEFAULT_MAIL_POOL_SIZE;
  let current: Pool | undefined;
  const open = new Set<Pool>();
  const closePool = (pool: Pool): void => {
    open.delete(pool);
    pool.transporter.close();
  };
  const closeIfIdle = (pool: Pool): void => {
    if (pool !== current && pool.sending === 0 && open.has(pool)) closePool(pool);
  };

  /** A token for the scope, or the send's failure: a refused credential is the settings' to fix, not the SMTP server's. */
  async function tokenFor(settings: EmailSettings, credentials: MailCredentials, scope: string): Promise<string> {
    try {
      return await tokens.get(settings, credentials.entra!, scope);
    } catch (err) {
      if (!(err instanceof TokenError)) throw err;
      throw new MailSendError(err.message, err.transient, err.situation === 'entra-unreachable' ? 'connect_failed' : 'auth_failed');
    }
  }

  async function sendSmtp(settings: EmailSettings, credentials: MailCredentials, message: OutgoingMessage): Promise<void> {
    const accessToken = settings.transport === 'smtp-oauth2' ? await tokenFor(settings, credentials, OUTLOOK_SCOPE) : undefined;
    const key = createHash('sha256').update(JSON.stringify([settings, credentials, accessToken ?? null])).digest('hex');
    if (current?.key !== key) {
      const replaced = current;
      const transporter = mailer().createTransport({ ...smtpTransportOptions({ settings, credentials, accessToken }), pool: true, maxConnections: poolSize, maxMessages: 100 });
      current = { key, transporter, from: credentials.from, sending: 0 };
      open.add(current);
      if (replaced !== undefined) closeIfIdle(replaced);
    }
    const pool = current;
    pool.sending += 1;
    try {
      // Composed whole, then written to the connection in one piece: nodemailer streams a message
      // it builds itself part by part, one socket write per encoded chunk (12% of the delivery
      // thread's time).
      const raw = await composeMime({ name: SENDER_NAME, address: pool.from }, message, messageIdDomain);
      await pool.transporter.sendMail({ envelope: { from: pool.from, to: [message.to] }, raw });
    } catch (err) {
      // A provider's reply is stored as the delivery's last error: it must not carry the password or the token.
      const failure = classifySendError(err);
      if (accessToken !== undefined && failure.code === 'auth_failed') tokens.forget(accessToken);
      throw new MailSendError(scrub(failure.message, credentialForms(credentials, accessToken)), failure.transient, failure.code);
    } finally {
      pool.sending -= 1;
      closeIfIdle(pool);
    }
  }

  async function sendGraph(settings: EmailSettings, credentials: MailCredentials, message: OutgoingMessage): Promise<void> {
    const token = await tokenFor(settings, credentials, GRAPH_SCOPE);
    const mime = await composeMime({ name: SENDER_NAME, address: credentials.from }, message, messageIdDomain);
    try {
      await graphSendMail({ baseUrl: graphBaseUrl, sender: credentials.from, token, mime });
    } catch (err) {
      if (err instanceof GraphError) {
        // A token Graph refuses is not used again: the next try gets a fresh one, which carries
        // permissions granted since (a 403 until an admin grants Mail.Send, say).
        if (err.situation === 'graph-token-refused' || err.situation === 'graph-access-denied') tokens.forget(token);
        throw new MailSendError(err.message, err.transient, GRAPH_SEND_CODES[err.situation], err.retryAfterSeconds);
      }
      throw classifyHttpError(err);
    }
  }

  return {
    async send(settings, message) {
      const credentials = await resolveCredentials(settings, secrets, secretNamePattern);
      if (settings.transport === 'graph') await sendGraph(settings, credentials, message);
      else await sendSmtp(settings, credentials, message);
    },
    close() {
      current = undefined;
      for (const pool of [...open]) closePool(pool);
    },
  };
}

/** The delivery's error code for each way Graph refuses. */
const GRAPH_SEND_CODES: Record<GraphSituation, string> = {
  'graph-bad-request': 'rejected',
  'graph-token-refused': 'auth_failed',
  'graph-access-denied': 'permission_denied',
  'graph-no-mailbox': 'rejected',
  'graph-throttled': 'rejected',
  'graph-unavailable': 'connect_failed',
  'graph-unexpected': 'rejected',
};

/** A fetch that failed before any answer: DNS, the connection, TLS or the time limit. Always worth another try. */
export function classifyHttpError(err: unknown): MailSendError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (err as { code?: string }).code ?? '';
  const detail = oneLine(`${(err as Error).message ?? 'fetch failed'}${cause?.message === undefined ? '' : `: ${cause.message}`}`).slice(0, 300);
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new MailSendError(detail, true, 'dns_failed');
  if (/CERT|SSL|TLS|self.signed/i.test(code) || /certificate|self.signed|SSL routines/i.test(detail)) return new MailSendError(detail, true, 'tls_failed');
  return new MailSendError(detail, true, 'connect_failed');
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** Sends with the settings `loadSettings` gives at each send. */
export function createConfiguredMailer(
  loadSettings: () => Promise<EmailSettings | undefined>,
  secrets: SecretStore,
  options: MailSenderOptions = {},
): Mailer & { close(): void } {
  const sender = createMailSender(secrets, options);
  return {
    async send(message) {
      const settings = await loadSettings();
      if (settings === undefined) throw new MailNotConfiguredError('email settings are not saved');
      await sender.send(settings, message);
    },
    close: () => sender.close(),
  };
}

export const DEV_INBOX_FROM = 'Gatehouse <no-reply@gatehouse.localhost>';

/** Plain SMTP to a server on this machine (the dev mailbox): nothing to encrypt, nothing to sign in to. */
export function createLoopbackMailer(port: number, from: string, messageIdDomain = 'localhost'): Mailer & { close(): void } {
  const transporter = mailer().createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, pool: true });
  return {
    async send(message) {
      try {
        await transporter.sendMail({ from, ...message, ...envelopeFields(messageIdDomain) });
      } catch (err) {
        throw classifySendError(err);
      }
    },
    close: () => transporter.close(),
  };
}
