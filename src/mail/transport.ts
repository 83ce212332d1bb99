import { createHash } from 'node:crypto';
import nodemailer, { type SMTPTransportOptions, type Transporter } from 'nodemailer';
import type { SecretStore } from '../secrets/store.js';
import { DEFAULT_MAIL_SECRET_NAME_PATTERN } from '../config.js';
import { readSenderSecrets, type SmtpCredentials } from './sender-secrets.js';
import { type EmailSettings, isLoopbackHost, tlsModeOf } from './settings.js';

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
 * The sender's credentials for a send; a missing or blank secret is a configuration error, and
 * so is a name outside MAIL_SECRET_NAME_PATTERN, which is never read.
 */
async function resolveCredentials(settings: EmailSettings, secrets: SecretStore, secretNamePattern: RegExp): Promise<SmtpCredentials> {
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
      throw new MailNotConfiguredError(`secret "${read.name}" does not hold one email address`);
  }
}

/**
 * Every form in which the password could come back in a server's reply (as is, base64, and the
 * base64 of an AUTH PLAIN exchange), longest first, so a reply can be scrubbed before it is
 * stored or shown.
 */
export function credentialForms(credentials: SmtpCredentials): string[] {
  if (credentials.pass === null || credentials.pass === '') return [];
  const { user, pass } = credentials;
  const forms = [pass, Buffer.from(pass).toString('base64'), Buffer.from(`\0${user}\0${pass}`).toString('base64'), Buffer.from(`${user}\0${user}\0${pass}`).toString('base64')];
  return forms.sort((a, b) => b.length - a.length);
}

export function scrub(text: string, forms: string[]): string {
  return forms.reduce((t, secret) => t.split(secret).join('[redacted]'), text);
}

export interface TransportOptionsInput {
  settings: EmailSettings;
  credentials: SmtpCredentials | null;
  timeoutsMs?: { connect: number; greeting: number; socket: number };
}

/** nodemailer options that implement "SSL enabled" and never let a password cross the network in clear. */
export function smtpTransportOptions(input: TransportOptionsInput): SMTPTransportOptions {
  const { settings, credentials } = input;
  const mode = tlsModeOf(settings);
  const sendsPassword = credentials !== null && credentials.pass !== null;
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
    auth: sendsPassword ? { user: credentials.user, pass: credentials.pass! } : undefined,
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
export interface SmtpSender {
  send(settings: EmailSettings, message: OutgoingMessage): Promise<void>;
  close(): void;
}

interface Pool {
  key: string;
  transporter: Transporter;
  from: string;
  /** sends under way on this pool */
  sending: number;
}

/**
 * Reads the credentials at send time (cached by the secret store) and keeps one pooled transport
 * per settings + credentials, replaced when either changes. A replaced pool is closed once the
 * sends already on it are done: a concurrent send under other settings must not cut them off.
 */
export function createSmtpSender(secrets: SecretStore, options: { secretNamePattern?: RegExp } = {}): SmtpSender {
  const secretNamePattern = options.secretNamePattern ?? new RegExp(DEFAULT_MAIL_SECRET_NAME_PATTERN);
  let current: Pool | undefined;
  const open = new Set<Pool>();
  const closePool = (pool: Pool): void => {
    open.delete(pool);
    pool.transporter.close();
  };
  const closeIfIdle = (pool: Pool): void => {
    if (pool !== current && pool.sending === 0 && open.has(pool)) closePool(pool);
  };
  return {
    async send(settings, message) {
      const credentials = await resolveCredentials(settings, secrets, secretNamePattern);
      const key = createHash('sha256').update(JSON.stringify([settings, credentials])).digest('hex');
      if (current?.key !== key) {
        const replaced = current;
        const transporter = nodemailer.createTransport({ ...smtpTransportOptions({ settings, credentials }), pool: true, maxConnections: 3, maxMessages: 100 });
        current = { key, transporter, from: credentials.from, sending: 0 };
        open.add(current);
        if (replaced !== undefined) closeIfIdle(replaced);
      }
      const pool = current;
      pool.sending += 1;
      try {
        await pool.transporter.sendMail({ from: { name: SENDER_NAME, address: pool.from }, ...message });
      } catch (err) {
        // A provider's reply is stored as the delivery's last error: it must not carry the password.
        const failure = classifySendError(err);
        throw new MailSendError(scrub(failure.message, credentialForms(credentials)), failure.transient, failure.code);
      } finally {
        pool.sending -= 1;
        closeIfIdle(pool);
      }
    },
    close() {
      current = undefined;
      for (const pool of [...open]) closePool(pool);
    },
  };
}

/** Sends with the settings `loadSettings` gives at each send. */
export function createSmtpMailer(
  loadSettings: () => Promise<EmailSettings | undefined>,
  secrets: SecretStore,
  options: { secretNamePattern?: RegExp } = {},
): Mailer & { close(): void } {
  const sender = createSmtpSender(secrets, options);
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
export function createLoopbackMailer(port: number, from: string): Mailer & { close(): void } {
  const transporter = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true, pool: true });
  return {
    async send(message) {
      try {
        await transporter.sendMail({ from, ...message });
      } catch (err) {
        throw classifySendError(err);
      }
    },
    close: () => transporter.close(),
  };
}
