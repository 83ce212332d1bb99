import { randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';

// Frozen in time: this file imports no application code and is never edited once released.

// Sessions already keep ip, user_agent and last_seen_at (0001). "My account" lists them and signs
// one out by a public id: an opaque random value, never the token's hash (which the cookie's
// owner could otherwise match, and which no page should ever carry). Sessions signed in before
// this release get one here.

export async function up(db: Kysely<unknown>): Promise<void> {
  const sessions = db as unknown as Kysely<{ sessions: { token_hash: string; public_id: string | null } }>;
  await db.schema.alterTable('sessions').addColumn('public_id', 'text').execute();
  const rows = await sessions.selectFrom('sessions').select('token_hash').execute();
  for (const row of rows) {
    await sessions.updateTable('sessions').set({ public_id: randomUUID() }).where('token_hash', '=', row.token_hash).execute();
  }
  await db.schema.createIndex('sessions_public_id').on('sessions').column('public_id').unique().execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('sessions_public_id').execute();
  await db.schema.alterTable('sessions').dropColumn('public_id').execute();
}
