import { type Kysely, sql } from 'kysely';

// Frozen in time: this file imports no application code and is never edited once released.

// At most one live reset token per account, held by the schema: two mints running at once on
// PostgreSQL (READ COMMITTED) each deleted the other's older rows and both inserted theirs.

export async function up(db: Kysely<unknown>): Promise<void> {
  // Keep the newest token of each user (ties broken by hash, so exactly one survives).
  await sql`
    delete from reset_tokens
    where exists (
      select 1 from reset_tokens newer
      where newer.user_id = reset_tokens.user_id
        and (newer.created_at > reset_tokens.created_at
          or (newer.created_at = reset_tokens.created_at and newer.token_hash > reset_tokens.token_hash))
    )
  `.execute(db);
  await db.schema.dropIndex('reset_tokens_user_id').execute();
  await db.schema.createIndex('reset_tokens_one_per_user').unique().on('reset_tokens').column('user_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropIndex('reset_tokens_one_per_user').execute();
  await db.schema.createIndex('reset_tokens_user_id').on('reset_tokens').column('user_id').execute();
}
