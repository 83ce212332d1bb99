import { type Kysely, PostgresAdapter } from 'kysely';

// Frozen in time: this file imports no application code and is never edited once released.

export async function up(db: Kysely<unknown>): Promise<void> {
  const ms = db.getExecutor().adapter instanceof PostgresAdapter ? 'bigint' : 'integer';

  await db.schema.alterTable('users').addColumn('locked_at', ms).execute();

  await db.schema
    .createTable('trusted_devices')
    .addColumn('token_hash', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('last_used_at', ms, (c) => c.notNull())
    .addColumn('expires_at', ms, (c) => c.notNull())
    .addColumn('failed_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addPrimaryKeyConstraint('trusted_devices_pkey', ['token_hash', 'user_id'])
    .execute();
  await db.schema.createIndex('trusted_devices_user_id').on('trusted_devices').column('user_id').execute();

  await db.schema
    .createTable('sign_in_locks')
    .addColumn('login_key', 'text', (c) => c.primaryKey())
    .addColumn('locked_at', ms, (c) => c.notNull())
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('sign_in_locks').execute();
  await db.schema.dropTable('trusted_devices').execute();
  await db.schema.alterTable('users').dropColumn('locked_at').execute();
}
