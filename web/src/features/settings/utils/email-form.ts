import type { EmailSettings, EmailSettingsState } from '../../../types/api';

/*
 * The "Forgot password" email form as plain data: what its fields hold, what a save sends, and
 * which fields a transport shows. The component renders this; the rules mirror the server's
 * (src/mail/settings.ts), which has the last word.
 */

export type Transport = EmailSettings['transport'];
export type TlsModeChoice = EmailSettings['tlsMode'];
export type EntraCredential = NonNullable<EmailSettings['entraCredential']>;
/** Where the sender address comes from: typed into the form, or read from a secret. */
export type SenderSource = 'address' | 'secret';

/** Microsoft 365's SMTP submission endpoint: what "SMTP with OAuth2" starts from. */
export const OFFICE365_SMTP = { host: 'smtp.office365.com', port: 587 } as const;

export interface EmailFormValues {
  transport: Transport;
  host: string;
  port: string;
  sslEnabled: boolean;
  tlsMode: TlsModeChoice;
  senderSource: SenderSource;
  senderAddress: string;
  emailSecretName: string;
  passwordSecretName: string;
  tenantId: string;
  clientId: string;
  /** '' until one is chosen */
  entraCredential: EntraCredential | '';
  clientSecretName: string;
  certificateName: string;
  currentPassword: string;
}

/** Every field that can carry a message, in the order the form shows them (and focus goes). */
export type EmailFieldName =
  | 'transport'
  | 'host'
  | 'port'
  | 'sslEnabled'
  | 'tlsMode'
  | 'senderAddress'
  | 'emailSecretName'
  | 'passwordSecretName'
  | 'entraCredential'
  | 'tenantId'
  | 'clientId'
  | 'clientSecretName'
  | 'certificateName'
  | 'currentPassword';

export const EMAIL_FIELD_ORDER: readonly EmailFieldName[] = [
  'transport',
  'host',
  'port',
  'sslEnabled',
  'tlsMode',
  'senderAddress',
  'emailSecretName',
  'passwordSecretName',
  'entraCredential',
  'tenantId',
  'clientId',
  'clientSecretName',
  'certificateName',
  'currentPassword',
];

export const usesSmtp = (transport: Transport): boolean => transport !== 'graph';
export const usesEntra = (transport: Transport): boolean => transport !== 'smtp';

export function emailFormValues(settings: EmailSettings): EmailFormValues {
  return {
    transport: settings.transport,
    host: settings.host,
    port: String(settings.port),
    sslEnabled: settings.sslEnabled,
    tlsMode: settings.tlsMode,
    senderSource: settings.senderAddress !== null ? 'address' : 'secret',
    senderAddress: settings.senderAddress ?? '',
    emailSecretName: settings.emailSecretName ?? '',
    passwordSecretName: settings.passwordSecretName ?? '',
    tenantId: settings.tenantId ?? '',
    clientId: settings.clientId ?? '',
    entraCredential: settings.entraCredential ?? '',
    clientSecretName: settings.clientSecretName ?? '',
    certificateName: settings.certificateName ?? '',
    currentPassword: '',
  };
}

/** The fields this choice of transport, sender and credential shows. */
export function visibleFields(values: EmailFormValues, needsPassword: boolean): EmailFieldName[] {
  const smtp = usesSmtp(values.transport);
  const entra = usesEntra(values.transport);
  const shown: Record<EmailFieldName, boolean> = {
    transport: true,
    host: smtp,
    port: smtp,
    sslEnabled: smtp,
    tlsMode: smtp && values.sslEnabled,
    senderAddress: values.senderSource === 'address',
    emailSecretName: values.senderSource === 'secret',
    passwordSecretName: values.transport === 'smtp',
    entraCredential: entra,
    tenantId: entra && values.entraCredential !== 'managed-identity',
    clientId: entra,
    clientSecretName: entra && values.entraCredential === 'client-secret',
    certificateName: entra && values.entraCredential === 'certificate',
    currentPassword: needsPassword,
  };
  return EMAIL_FIELD_ORDER.filter((name) => shown[name]);
}

const text = (value: string): string | null => {
  const trimmed = value.trim();
  return trimmed === '' ? null : trimmed;
};

/**
 * What a save sends: the fields the transport uses as typed (trimmed, blank as none), the others
 * empty. Graph sends no SMTP server: the saved host, port and TLS choice stay as they were.
 */
export function settingsFromValues(values: EmailFormValues, loaded: EmailSettings): EmailSettings {
  const smtp = usesSmtp(values.transport);
  const entra = usesEntra(values.transport);
  const credential = entra && values.entraCredential !== '' ? values.entraCredential : null;
  const portText = values.port.trim();
  return {
    transport: values.transport,
    host: smtp ? values.host.trim() : loaded.host,
    port: smtp ? (/^\d{1,5}$/.test(portText) ? Number(portText) : NaN) : loaded.port,
    sslEnabled: smtp ? values.sslEnabled : loaded.sslEnabled,
    // With SSL off the choice is hidden, and only "auto" is valid.
    tlsMode: smtp ? (values.sslEnabled ? values.tlsMode : 'auto') : loaded.tlsMode,
    senderAddress: values.senderSource === 'address' ? text(values.senderAddress) : null,
    emailSecretName: values.senderSource === 'secret' ? text(values.emailSecretName) : null,
    // Empty means a relay without AUTH.
    passwordSecretName: values.transport === 'smtp' ? text(values.passwordSecretName) : null,
    tenantId: entra && credential !== 'managed-identity' ? text(values.tenantId) : null,
    clientId: entra ? text(values.clientId) : null,
    entraCredential: credential,
    clientSecretName: credential === 'client-secret' ? text(values.clientSecretName) : null,
    certificateName: credential === 'certificate' ? text(values.certificateName) : null,
  };
}

/** Where mail goes and with which credentials (the server's REAUTHENTICATED_FIELDS): a change asks for the password. */
const WHERE_MAIL_GOES = [
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

/** Whether saving these values needs the admin's current password: on the first save, or when where mail goes changes. */
export function changesWhereMailGoes(values: EmailFormValues, settings: EmailSettingsState): boolean {
  if (!settings.configured) return true;
  const next = settingsFromValues(values, settings);
  return WHERE_MAIL_GOES.some((k) => next[k] !== settings[k]);
}

/** Whether the form holds anything other than the saved settings (what "Send test email" then tests). */
export function differsFromSaved(values: EmailFormValues, settings: EmailSettings): boolean {
  const next = settingsFromValues(values, settings);
  return (Object.keys(next) as (keyof EmailSettings)[]).some((k) => next[k] !== settings[k]);
}

// The server's rule (Azure Key Vault's), checked here too so a typo is caught before saving.
const SECRET_NAME = /^[A-Za-z0-9-]{1,127}$/;
const SECRET_NAME_RULE = 'A secret name holds 1 to 127 letters, digits and dashes.';
export const REAUTHENTICATE = 'Enter your current password to change where mail is sent.';

/**
 * The form's own check of the fields it shows: what is missing or plainly malformed. Formats only
 * the server knows well (a tenant, a client id, a secret name outside MAIL_SECRET_NAME_PATTERN)
 * are left to it; its messages come back under `fields`.
 */
export function checkEmailForm(values: EmailFormValues, needsPassword: boolean): Partial<Record<EmailFieldName, string>> {
  const fields: Partial<Record<EmailFieldName, string>> = {};
  const shown = new Set(visibleFields(values, needsPassword));
  const secretName = (field: EmailFieldName, value: string, missing: string | null): void => {
    if (!shown.has(field)) return;
    const name = value.trim();
    if (name === '') {
      if (missing !== null) fields[field] = missing;
    } else if (!SECRET_NAME.test(name)) {
      fields[field] = SECRET_NAME_RULE;
    }
  };

  if (shown.has('host')) {
    const host = values.host.trim();
    if (host === '') fields.host = 'Enter the SMTP host, such as smtp.gmail.com.';
    else if (/[\s/:]/.test(host)) fields.host = 'Enter the host name alone, such as smtp.gmail.com (no scheme, no port).';
  }
  if (shown.has('port')) {
    const port = values.port.trim();
    if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) fields.port = 'Enter a port from 1 to 65535, such as 587.';
  }
  if (values.transport === 'smtp-oauth2' && !values.sslEnabled) fields.sslEnabled = 'SMTP with OAuth2 sends a token: turn SSL on.';

  if (shown.has('senderAddress')) {
    const address = values.senderAddress.trim();
    if (address === '') fields.senderAddress = 'Enter the sender address, like alerts@example.com.';
    else if (!/^[^\s@]+@[^\s@]+$/.test(address)) fields.senderAddress = 'Enter one email address, like alerts@example.com.';
  }
  secretName('emailSecretName', values.emailSecretName, 'Enter the name of the secret that holds the sender address.');
  secretName('passwordSecretName', values.passwordSecretName, null);

  if (shown.has('entraCredential') && values.entraCredential === '') {
    fields.entraCredential = 'Choose how the app signs in: managed identity, a client secret or a certificate.';
  }
  if (shown.has('tenantId') && values.tenantId.trim() === '') {
    fields.tenantId = 'Enter the directory (tenant) ID, or a domain such as contoso.onmicrosoft.com.';
  }
  if (shown.has('clientId') && values.entraCredential !== 'managed-identity' && values.clientId.trim() === '') {
    fields.clientId = 'Enter the application (client) ID from the app registration’s Overview page.';
  }
  secretName('clientSecretName', values.clientSecretName, 'Enter the name of the secret that holds the app’s client secret.');
  secretName('certificateName', values.certificateName, 'Enter the name of the Key Vault certificate that holds the app’s certificate and key.');

  if (needsPassword && values.currentPassword === '') fields.currentPassword = REAUTHENTICATE;
  return fields;
}

/** The confirmation after a save: whether each secret the settings name was found. */
export function savedSentence(result: EmailSettingsState): string {
  const found = (resolves: boolean): string => (resolves ? 'found in the secret store' : 'not found in the secret store');
  const labels: [keyof EmailSettingsState['secretsResolve'], string][] = [
    ['email', 'Email secret'],
    ['password', 'Password secret'],
    ['clientSecret', 'Client secret'],
    ['certificate', 'Certificate'],
  ];
  const parts = ['Saved.'];
  for (const [key, label] of labels) {
    const resolves = result.secretsResolve[key];
    if (resolves !== null) parts.push(`${label}: ${found(resolves)}.`);
  }
  return parts.join(' ');
}
