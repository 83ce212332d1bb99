import type { Clock } from '../clock.js';
import type { Db } from '../db/index.js';
import { isValidSecretName } from '../secrets/store.js';

/**
 * The sender email settings of the Settings page. Only secret *names* are stored: the sender
 * address and its password are read from the secret store at send time.
 */
export interface EmailSettings {
  host: string;
  port: number;
  emailSecretName: string;
  /** null: a relay that takes mail without AUTH */
  passwordSecretName: string | null;
  /** 465 → implicit TLS; any other port → STARTTLS required */
  sslEnabled: boolean;
}

export const DEFAULT_EMAIL_SETTINGS: EmailSettings = {
  host: '',
  port: 587,
  emailSecretName: '',
  passwordSecretName: null,
  sslEnabled: true,
};

const KEY = 'email';

export async function findEmailSettings(db: Db): Promise<EmailSettings | undefined> {
  const row = await db.selectFrom('settings').select('value').where('key', '=', KEY).executeTakeFirst();
  return row === undefined ? undefined : (JSON.parse(row.value) as EmailSettings);
}

export async function saveEmailSettings(db: Db, clock: Clock, settings: EmailSettings, actorId: string | null): Promise<void> {
  const value = JSON.stringify(settings);
  const at = clock.now().getTime();
  await db
    .insertInto('settings')
    .values({ key: KEY, value, updated_at: at, updated_by: actorId })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: at, updated_by: actorId }))
    .execute();
}

// A host name or an IP literal; no scheme, no port, no path.
const HOST = /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$|^\[?[0-9A-Fa-f:.]+\]?$/;

/**
 * Field → message for every problem; empty when the settings are valid. With a secret name
 * pattern (MAIL_SECRET_NAME_PATTERN), names outside it are problems too; null checks the form
 * alone (the staged check reports such names at its secrets step).
 */
export function validateEmailSettings(input: EmailSettings, secretNamePattern: RegExp | null): Record<string, string> {
  const fields: Record<string, string> = {};
  if (!HOST.test(input.host)) fields.host = 'Enter a host name such as smtp.gmail.com (no scheme, no port).';
  if (!Number.isInteger(input.port) || input.port < 1 || input.port > 65535) fields.port = 'Enter a port from 1 to 65535.';
  const secretName = (name: string): string | undefined => {
    if (!isValidSecretName(name)) return 'A secret name holds 1 to 127 letters, digits and dashes.';
    if (secretNamePattern !== null && !secretNamePattern.test(name)) return outsidePatternMessage(secretNamePattern);
    return undefined;
  };
  const email = secretName(input.emailSecretName);
  if (email !== undefined) fields.emailSecretName = email;
  const password = input.passwordSecretName === null ? undefined : secretName(input.passwordSecretName);
  if (password !== undefined) fields.passwordSecretName = password;
  return fields;
}

/**
 * Whether the email settings may use the secret with this name. The secret store holds other
 * secrets too (database passwords, API keys): a name outside MAIL_SECRET_NAME_PATTERN is never
 * read for mail, or "Send test email" would hand any of them to whatever host an admin typed.
 */
export function isMailSecretName(name: string, secretNamePattern: RegExp): boolean {
  return isValidSecretName(name) && secretNamePattern.test(name);
}

export function outsidePatternMessage(secretNamePattern: RegExp): string {
  return `Email settings can only use secrets whose names match ${secretNamePattern.source} (MAIL_SECRET_NAME_PATTERN).`;
}

/** Where mail goes and with which credentials: changing any of these asks for the admin's password again. */
export const REAUTHENTICATED_FIELDS = ['host', 'port', 'emailSecretName', 'passwordSecretName'] as const satisfies readonly (keyof EmailSettings)[];

/** Loopback hosts may receive credentials without TLS (a local relay); nothing else may. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export type TlsMode = 'implicit' | 'starttls-required' | 'opportunistic';

/** What "SSL enabled" means (DESIGN §1): 465 → implicit TLS, other ports → STARTTLS required. */
export function tlsModeOf(settings: Pick<EmailSettings, 'port' | 'sslEnabled'>): TlsMode {
  if (!settings.sslEnabled) return 'opportunistic';
  return settings.port === 465 ? 'implicit' : 'starttls-required';
}
