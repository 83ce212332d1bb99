import { parseEmail } from '../accounts/identifiers.js';
import type { SecretStore } from '../secrets/store.js';
import { type EmailSettings, isMailSecretName, secretNamesOf } from './settings.js';

/** What the Entra ID app signs in with: a client secret, a certificate with its key (PEM), or nothing (managed identity). */
export type EntraSecret = { kind: 'client-secret'; secret: string } | { kind: 'certificate'; pem: string } | { kind: 'managed-identity' };

/**
 * The sender address (also the SMTP user name), its password (smtp; null: a relay without AUTH),
 * and the Entra ID app's secret (smtp-oauth2 and graph).
 */
export interface MailCredentials {
  from: string;
  user: string;
  pass: string | null;
  entra: EntraSecret | null;
}

export type SecretHolds = 'address' | 'password' | 'client-secret' | 'certificate';

/** Why the sender's secrets could not be used; each caller words it for its reader. */
export type SenderSecretsProblem =
  | { problem: 'outside-pattern'; name: string }
  | { problem: 'unreadable'; name: string; cause: unknown }
  | { problem: 'missing'; name: string; holds: SecretHolds }
  | { problem: 'not-an-address'; name: string }
  | { problem: 'not-a-pem-certificate'; name: string };

export type SenderSecrets = { ok: true; credentials: MailCredentials } | ({ ok: false } & SenderSecretsProblem);

/**
 * Reads what the settings name for their transport: the one reading that both the real transports
 * and the staged check use, so the check passes exactly when mail can go out. A blank value (empty
 * or white space only) counts as missing: an env or vault entry left empty is a placeholder, and
 * an empty AUTH password only earns a 535 later.
 */
export async function readSenderSecrets(settings: EmailSettings, secrets: SecretStore, secretNamePattern: RegExp): Promise<SenderSecrets> {
  for (const name of secretNamesOf(settings)) {
    // Not read at all: the store holds other secrets too, and mail would carry them to whatever host the settings name.
    if (!isMailSecretName(name, secretNamePattern)) return { ok: false, problem: 'outside-pattern', name };
  }
  let from: string;
  if (settings.senderAddress !== null) {
    const parsed = parseEmail(settings.senderAddress);
    if (parsed === null) return { ok: false, problem: 'not-an-address', name: 'senderAddress' };
    from = parsed;
  } else {
    const name = settings.emailSecretName ?? '';
    const address = await readValue(secrets, name, 'address');
    if (typeof address !== 'string') return { ok: false, ...address };
    // Never echoed by any caller: a value that is not an address may be a password pasted into the wrong secret.
    const parsed = parseEmail(address);
    if (parsed === null) return { ok: false, problem: 'not-an-address', name };
    from = parsed;
  }
  let pass: string | null = null;
  let entra: EntraSecret | null = null;
  if (settings.transport === 'smtp') {
    if (settings.passwordSecretName !== null) {
      const password = await readValue(secrets, settings.passwordSecretName, 'password');
      if (typeof password !== 'string') return { ok: false, ...password };
      pass = password;
    }
  } else if (settings.entraCredential === 'client-secret') {
    const secret = await readValue(secrets, settings.clientSecretName ?? '', 'client-secret');
    if (typeof secret !== 'string') return { ok: false, ...secret };
    entra = { kind: 'client-secret', secret: secret.trim() };
  } else if (settings.entraCredential === 'certificate') {
    const name = settings.certificateName ?? '';
    const pem = await readValue(secrets, name, 'certificate');
    if (typeof pem !== 'string') return { ok: false, ...pem };
    // Key Vault hands a certificate out as the secret of the same name, in the certificate's
    // content type: PEM holds the key and the certificate; PKCS#12 would need a password-less PFX parser.
    if (!/-----BEGIN CERTIFICATE-----/.test(pem) || !/-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/.test(pem)) return { ok: false, problem: 'not-a-pem-certificate', name };
    entra = { kind: 'certificate', pem };
  } else {
    entra = { kind: 'managed-identity' };
  }
  return { ok: true, credentials: { from, user: from, pass, entra } };
}

async function readValue(secrets: SecretStore, name: string, holds: SecretHolds): Promise<string | SenderSecretsProblem> {
  let value: string | undefined;
  try {
    value = await secrets.get(name);
  } catch (cause) {
    return { problem: 'unreadable', name, cause };
  }
  if (value === undefined || value.trim() === '') return { problem: 'missing', name, holds };
  return value;
}
