import type { Clock } from '../clock.js';
import type { Db } from '../db/index.js';
import { parseEmail } from '../accounts/identifiers.js';
import { isValidSecretName } from '../secrets/store.js';

export const MAIL_TRANSPORTS = ['smtp', 'smtp-oauth2', 'graph'] as const;
/** smtp: a password (or none, for a relay); smtp-oauth2: XOAUTH2 with an Entra ID token; graph: Microsoft Graph sendMail. */
export type MailTransport = (typeof MAIL_TRANSPORTS)[number];

export const TLS_MODES = ['auto', 'starttls', 'implicit'] as const;
/** auto: "SSL enabled" as always (465 → implicit TLS, other ports → STARTTLS); the others say it outright. */
export type TlsModeChoice = (typeof TLS_MODES)[number];

export const ENTRA_CREDENTIALS = ['client-secret', 'certificate', 'managed-identity'] as const;
/** How the Entra ID app proves who it is: a client secret, a certificate (both by secret name), or no secret at all. */
export type EntraCredentialKind = (typeof ENTRA_CREDENTIALS)[number];

/**
 * The sender email settings of the Settings page. Only secret *names* are stored: the sender
 * address (unless given as `senderAddress`), its password and the Entra ID app's client secret or
 * certificate are read from the secret store at send time.
 */
export interface EmailSettings {
  transport: MailTransport;
  /** smtp and smtp-oauth2: the server */
  host: string;
  port: number;
  /** off: plain SMTP with opportunistic STARTTLS (never a password in clear to a non-loopback host) */
  sslEnabled: boolean;
  /** with SSL enabled: how TLS starts */
  tlsMode: TlsModeChoice;
  /** the sender mailbox as a plain field; null: the secret `emailSecretName` holds it */
  senderAddress: string | null;
  emailSecretName: string | null;
  /** smtp: null is a relay that takes mail without AUTH */
  passwordSecretName: string | null;
  /** smtp-oauth2 and graph: the Entra ID app registration */
  tenantId: string | null;
  /** the app's client id; with managed identity, a user-assigned identity's client id (null: system-assigned) */
  clientId: string | null;
  entraCredential: EntraCredentialKind | null;
  clientSecretName: string | null;
  /** a Key Vault certificate's name (its PEM is read as the secret of the same name) */
  certificateName: string | null;
}

export const DEFAULT_EMAIL_SETTINGS: EmailSettings = {
  transport: 'smtp',
  host: '',
  port: 587,
  sslEnabled: true,
  tlsMode: 'auto',
  senderAddress: null,
  emailSecretName: '',
  passwordSecretName: null,
  tenantId: null,
  clientId: null,
  entraCredential: null,
  clientSecretName: null,
  certificateName: null,
};

/** Microsoft 365's SMTP submission endpoint: what smtp-oauth2 starts from. */
export const OFFICE365_SMTP = { host: 'smtp.office365.com', port: 587 } as const;

/** What each transport needs from the form: the secret names it reads and whether it talks SMTP. */
export function usesSmtp(settings: Pick<EmailSettings, 'transport'>): boolean {
  return settings.transport !== 'graph';
}

export function usesEntra(settings: Pick<EmailSettings, 'transport'>): boolean {
  return settings.transport !== 'smtp';
}

/**
 * Settings as stored by any version: rows saved before the transport choice hold only host, port,
 * the two secret names and SSL (migration 0005 adds the rest; this keeps a row written by an
 * older instance during a rolling upgrade readable too).
 */
export function normalizeEmailSettings(stored: Partial<EmailSettings>): EmailSettings {
  return { ...DEFAULT_EMAIL_SETTINGS, ...stored };
}

const KEY = 'email';

export async function findEmailSettings(db: Db): Promise<EmailSettings | undefined> {
  const row = await db.selectFrom('settings').select('value').where('key', '=', KEY).executeTakeFirst();
  return row === undefined ? undefined : normalizeEmailSettings(JSON.parse(row.value) as Partial<EmailSettings>);
}

export async function saveEmailSettings(db: Db, clock: Clock, settings: EmailSettings, actorId: string | null): Promise<void> {
  await saveSettingsRow(db, clock, KEY, settings, actorId);
}

/** One row of the settings table, as JSON, inserted or replaced; who changed it and when. */
export async function saveSettingsRow(db: Db, clock: Clock, key: string, content: unknown, actorId: string | null): Promise<void> {
  const value = JSON.stringify(content);
  const at = clock.now().getTime();
  await db
    .insertInto('settings')
    .values({ key, value, updated_at: at, updated_by: actorId })
    .onConflict((oc) => oc.column('key').doUpdateSet({ value, updated_at: at, updated_by: actorId }))
    .execute();
}

// A host name or an IP literal; no scheme, no port, no path.
const HOST = /^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$|^\[?[0-9A-Fa-f:.]+\]?$/;

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
// A tenant is named by its id or one of its domains (contoso.onmicrosoft.com).
const TENANT_DOMAIN = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/**
 * Field → message for every problem; empty when the settings are valid. Only the fields the
 * transport uses are checked. With a secret name pattern (MAIL_SECRET_NAME_PATTERN), names
 * outside it are problems too; null checks the form alone (the staged check reports such names
 * at its secrets step).
 */
export function validateEmailSettings(input: EmailSettings, secretNamePattern: RegExp | null): Record<string, string> {
  const fields: Record<string, string> = {};
  const secretName = (field: keyof EmailSettings, name: string | null, required: string | null): void => {
    if (name === null || name === '') {
      if (required !== null) fields[field] = required;
      return;
    }
    if (!isValidSecretName(name)) fields[field] = 'A secret name holds 1 to 127 letters, digits and dashes.';
    else if (secretNamePattern !== null && !secretNamePattern.test(name)) fields[field] = outsidePatternMessage(secretNamePattern);
  };

  if (usesSmtp(input)) {
    if (!HOST.test(input.host)) fields.host = 'Enter a host name such as smtp.gmail.com (no scheme, no port).';
    if (!Number.isInteger(input.port) || input.port < 1 || input.port > 65535) fields.port = 'Enter a port from 1 to 65535.';
    if (!input.sslEnabled && input.tlsMode !== 'auto') fields.tlsMode = 'Turn SSL on to choose how TLS starts.';
    if (input.transport === 'smtp-oauth2' && !input.sslEnabled) fields.sslEnabled = 'SMTP with OAuth2 sends a token: turn SSL on.';
  }

  // The sender: a plain address, or the secret holding it; never both.
  if (input.senderAddress !== null) {
    if (parseEmail(input.senderAddress) === null) fields.senderAddress = 'Enter one email address, like alerts@example.com.';
    else if (input.emailSecretName !== null && input.emailSecretName !== '') fields.emailSecretName = 'Give the sender as an address or as a secret name, not both.';
  } else {
    secretName('emailSecretName', input.emailSecretName, 'Enter the name of the secret holding the sender address, or the address itself.');
  }

  if (input.transport === 'smtp') {
    secretName('passwordSecretName', input.passwordSecretName, null);
  } else {
    const managed = input.entraCredential === 'managed-identity';
    if (input.entraCredential === null) fields.entraCredential = 'Choose how the app signs in: a client secret, a certificate, or managed identity.';
    // Managed identity needs no tenant; the client id then names a user-assigned identity (optional).
    if (!managed && (input.tenantId === null || !(GUID.test(input.tenantId) || TENANT_DOMAIN.test(input.tenantId)))) {
      fields.tenantId = 'Enter the directory (tenant) id, a GUID, or a domain such as contoso.onmicrosoft.com.';
    }
    if (input.clientId === null ? !managed : !GUID.test(input.clientId)) fields.clientId = "Enter the application (client) id: a GUID from the app's Overview page.";
    if (input.entraCredential === 'client-secret') secretName('clientSecretName', input.clientSecretName, "Enter the name of the secret holding the app's client secret.");
    if (input.entraCredential === 'certificate') secretName('certificateName', input.certificateName, "Enter the name of the Key Vault certificate (or secret) holding the app's certificate and key, in PEM.");
  }
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
export const REAUTHENTICATED_FIELDS = [
  'transport',
  'host',
  'port',
  'senderAddress',
  'emailSecretName',
  'passwordSecretName',
  'tenantId',
  'clientId',
  'entraCredential',
  'clientSecretName',
  'certificateName',
] as const satisfies readonly (keyof EmailSettings)[];

/** The secret names the settings read for their transport, in the order the secrets step reads them. */
export function secretNamesOf(settings: EmailSettings): string[] {
  const names: (string | null)[] = [settings.senderAddress === null ? settings.emailSecretName : null];
  if (settings.transport === 'smtp') names.push(settings.passwordSecretName);
  else if (settings.entraCredential === 'client-secret') names.push(settings.clientSecretName);
  else if (settings.entraCredential === 'certificate') names.push(settings.certificateName);
  return names.filter((n): n is string => n !== null && n !== '');
}

/** Loopback hosts may receive credentials without TLS (a local relay); nothing else may. */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export type TlsMode = 'implicit' | 'starttls-required' | 'opportunistic';

/**
 * How TLS starts. "SSL enabled" with tlsMode auto is DESIGN §1's rule (465 → implicit TLS, other
 * ports → STARTTLS required); starttls and implicit say it outright, for a service such as
 * implicit TLS on 2465. SSL off is plain SMTP with STARTTLS when offered.
 */
export function tlsModeOf(settings: Pick<EmailSettings, 'port' | 'sslEnabled' | 'tlsMode'>): TlsMode {
  if (!settings.sslEnabled) return 'opportunistic';
  if (settings.tlsMode === 'implicit') return 'implicit';
  if (settings.tlsMode === 'starttls') return 'starttls-required';
  return settings.port === 465 ? 'implicit' : 'starttls-required';
}
