import type { Kysely } from 'kysely';

// Frozen in time: this file imports no application code and is never edited once released.

// Where each email went (or was last tried): 'dev-mailbox', 'smtp', 'smtp-oauth2' or 'graph'.
// Rows sent before this column stay null ("not recorded"). The delivery target itself
// (dev mailbox or the mail server) is a row of the settings table, key 'delivery': no schema change.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('mail_outbox').addColumn('delivered_via', 'text').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable('mail_outbox').dropColumn('delivered_via').execute();
  await (db as unknown as Kysely<{ settings: { key: string } }>).deleteFrom('settings').where('key', '=', 'delivery').execute();
}
