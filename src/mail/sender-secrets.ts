import { parseEmail } from '../accounts/identifiers.js';
import type { SecretStore } from '../secrets/store.js';
import { type EmailSettings, isMailSecretName } from './settings.js';

/** The sender address (also the AUTH user name) and its password; null: a relay without AUTH. */
export interface SmtpCredentials {
  from: string;
  user: string;
  pass: string | null;
}

/** Why the sender's secrets could not be used; each caller words it for its reader. */
export type SenderSecretsProblem =
  | { problem: 'outside-pattern'; name: string }
  | { problem: 'unreadable'; name: string; cause: unknown }
  | { problem: 'missing'; name: string; holds: 'address' | 'password' }
  | { problem: 'not-an-address'; name: string };

export type SenderSecrets = { ok: true; credentials: SmtpCredentials } | ({ ok: false } & SenderSecretsProblem);

/**
 * Reads the sender address and password named by the settings: the one reading that both the
 * real transport and the staged check use, so the check passes exactly when mail can go out.
 * A blank value (empty or white space only) counts as missing, for either secret: an env or
 * vault entry left empty is a placeholder, and an empty AUTH password only earns a 535 later.
 */
export async function readSenderSecrets(settings: EmailSettings, secrets: SecretStore, secretNamePattern: RegExp): Promise<SenderSecrets> {
  for (const name of [settings.emailSecretName, settings.passwordSecretName]) {
    // Not read at all: the store holds other secrets too, and mail would carry them to whatever host the settings name.
    if (name !== null && !isMailSecretName(name, secretNamePattern)) return { ok: false, problem: 'outside-pattern', name };
  }
  const address = await readValue(secrets, settings.emailSecretName, 'address');
  if (typeof address !== 'string') return { ok: false, ...address };
  // Never echoed by any caller: a value that is not an address may be a password pasted into the wrong secret.
  const from = parseEmail(address);
  if (from === null) return { ok: false, problem: 'not-an-address', name: settings.emailSecretName };
  let pass: string | null = null;
  if (settings.passwordSecretName !== null) {
    const password = await readValue(secrets, settings.passwordSecretName, 'password');
    if (typeof password !== 'string') return { ok: false, ...password };
    pass = password;
  }
  return { ok: true, credentials: { from, user: from, pass } };
}

async function readValue(secrets: SecretStore, name: string, holds: 'address' | 'password'): Promise<string | SenderSecretsProblem> {
  let value: string | undefined;
  try {
    value = await secrets.get(name);
  } catch (cause) {
    return { problem: 'unreadable', name, cause };
  }
  if (value === undefined || value.trim() === '') return { problem: 'missing', name, holds };
  return value;
}
