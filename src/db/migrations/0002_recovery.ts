import { type Kysely, PostgresAdapter } from 'kysely';

// Frozen in time: this file imports no application code and is never edited once released.

export async function up(db: Kysely<unknown>): Promise<void> {
  const ms = db.getExecutor().adapter instanceof PostgresAdapter ? 'bigint' : 'integer';

  await db.schema
    .createTable('mail_outbox')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.references('users.id').onDelete('cascade'))
    .addColumn('lookup_email', 'text')
    .addColumn('to_address', 'text')
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt_at', ms, (c) => c.notNull())
    .addColumn('locked_until', ms)
    .addColumn('last_error', 'text')
    .addColumn('requested_at', ms, (c) => c.notNull())
    .addColumn('not_after', ms)
    .addColumn('give_up_at', ms, (c) => c.notNull())
    .addColumn('sent_at', ms)
    .addColumn('ip', 'text')
    .addColumn('actor_id', 'text')
    .addColumn('updated_at', ms, (c) => c.notNull())
    .execute();
  await db.schema.createIndex('mail_outbox_due').on('mail_outbox').columns(['status', 'next_attempt_at']).execute();
  await db.schema.createIndex('mail_outbox_requested').on('mail_outbox').column('requested_at').execute();

  await db.schema
    .createTable('reset_tokens')
    .addColumn('token_hash', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
    .addColumn('delivery_id', 'text')
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('created_at', ms, (c) => c.notNull())
    .addColumn('expires_at', ms, (c) => c.notNull())
    .addColumn('bound_password_changed_at', ms, (c) => c.notNull())
    .addColumn('bound_email', 'text')
    .execute();
  await db.schema.createIndex('reset_tokens_user_id').on('reset_tokens').column('user_id').execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable('reset_tokens').execute();
  await db.schema.dropTable('mail_outbox').execute();
}
