import type { Kysely } from 'kysely';

// Frozen in time: this file imports no application code and is never edited once released.

export async function up(_db: Kysely<unknown>): Promise<void> {}

export async function down(_db: Kysely<unknown>): Promise<void> {}
