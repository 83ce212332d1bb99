import type { Kysely } from 'kysely';

// Frozen in time: this file imports no application code and is never edited once released.

// Email settings saved before the transport choice held host, port, the two secret names and
// SSL. They keep their meaning: SMTP with a password, TLS as "SSL enabled" always meant, the
// sender from the email secret, no Entra ID app.
const ADDED = {
  transport: 'smtp',
  tlsMode: 'auto',
  senderAddress: null,
  tenantId: null,
  clientId: null,
  entraCredential: null,
  clientSecretName: null,
  certificateName: null,
};

interface SettingsTable {
  settings: { key: string; value: string };
}

export async function up(db: Kysely<unknown>): Promise<void> {
  const typed = db as unknown as Kysely<SettingsTable>;
  const row = await typed.selectFrom('settings').select('value').where('key', '=', 'email').executeTakeFirst();
  if (row === undefined) return;
  const saved = JSON.parse(row.value) as Record<string, unknown>;
  const value = JSON.stringify({ ...ADDED, ...saved });
  await typed.updateTable('settings').set({ value }).where('key', '=', 'email').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  const typed = db as unknown as Kysely<SettingsTable>;
  const row = await typed.selectFrom('settings').select('value').where('key', '=', 'email').executeTakeFirst();
  if (row === undefined) return;
  const saved = JSON.parse(row.value) as Record<string, unknown>;
  const { host, port, emailSecretName, passwordSecretName, sslEnabled } = saved;
  await typed.updateTable('settings').set({ value: JSON.stringify({ host, port, emailSecretName, passwordSecretName, sslEnabled }) }).where('key', '=', 'email').execute();
}
