import { sql } from 'kysely';
import { dialectOf, type Db } from '../../../src/db/index.js';
import type { Random } from '../../../src/random.js';

/** A value that must never be written anywhere the contract does not say. */
export interface Secret {
  label: string;
  value: string;
}

/**
 * The spellings under which a value could be written: as is, JSON-escaped (log lines are JSON),
 * URL-encoded, base64 (SMTP AUTH), and — for long values — its first and last 16 characters, so a
 * truncated token or password is caught too.
 */
export function spellings(value: string): string[] {
  const forms = new Set([value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value), Buffer.from(value).toString('base64')]);
  if (value.length >= 24) {
    forms.add(value.slice(0, 16));
    forms.add(value.slice(-16));
  }
  return [...forms].filter((f) => f.length >= 8);
}

export interface Hit {
  secret: string;
  where: string;
  excerpt: string;
}

/** Every secret found in text, with where it was found and the text around it. */
export function findSecrets(text: string, secrets: readonly Secret[], where: string): Hit[] {
  const hits: Hit[] = [];
  for (const secret of secrets) {
    for (const form of spellings(secret.value)) {
      const at = text.indexOf(form);
      if (at < 0) continue;
      hits.push({ secret: secret.label, where, excerpt: text.slice(Math.max(0, at - 60), at + form.length + 60) });
      break;
    }
  }
  return hits;
}

/** Searches raw bytes (a database file, free pages included) for each secret's UTF-8 spellings. */
export function findSecretsInBytes(bytes: Buffer, secrets: readonly Secret[], where: string): Hit[] {
  const hits: Hit[] = [];
  for (const secret of secrets) {
    for (const form of spellings(secret.value)) {
      const at = bytes.indexOf(Buffer.from(form));
      if (at < 0) continue;
      hits.push({ secret: secret.label, where, excerpt: bytes.subarray(Math.max(0, at - 40), at + form.length + 40).toString('latin1') });
      break;
    }
  }
  return hits;
}

export function describeHits(hits: readonly Hit[]): string {
  return hits.map((h) => `${h.secret} in ${h.where}: …${h.excerpt}…`).join('\n');
}

/** Every table the database itself lists (not the app's idea of its schema), and all of its rows. */
export async function dumpAllTables(db: Db): Promise<{ table: string; rows: Record<string, unknown>[] }[]> {
  const names =
    dialectOf(db) === 'postgres'
      ? (
          await sql<{ name: string }>`select table_name as name from information_schema.tables where table_schema = current_schema() and table_type = 'BASE TABLE' order by 1`.execute(db)
        ).rows
      : (await sql<{ name: string }>`select name from sqlite_master where type = 'table' order by 1`.execute(db)).rows;
  const out: { table: string; rows: Record<string, unknown>[] }[] = [];
  for (const { name } of names) {
    const { rows } = await sql<Record<string, unknown>>`select * from ${sql.table(name)}`.execute(db);
    out.push({ table: name, rows });
  }
  return out;
}

/** A row as text: every column's value, whatever its type. */
export function rowText(row: Record<string, unknown>): string {
  return Object.entries(row)
    .map(([column, value]) => `${column}=${Buffer.isBuffer(value) ? `${value.toString('utf8')} ${value.toString('hex')}` : typeof value === 'object' ? JSON.stringify(value) : String(value)}`)
    .join(' | ');
}

/**
 * Wraps a Random so every value it hands out that is long enough to be a secret (session and
 * reset tokens, the first admin's password, the dummy password) is known to the test, including
 * tokens that were minted and voided without ever leaving the server.
 */
export function recordingRandom(inner: Random): Random & { secrets(): Secret[] } {
  const seen: Buffer[] = [];
  return {
    bytes(length) {
      const b = inner.bytes(length);
      if (length >= 16) seen.push(Buffer.from(b));
      return b;
    },
    uuid: () => inner.uuid(),
    secrets: () =>
      seen.flatMap((b, i) => [
        { label: `random value #${i + 1} (${b.length} bytes) as base64url`, value: b.toString('base64url') },
        { label: `random value #${i + 1} (${b.length} bytes) as base64`, value: b.toString('base64') },
        { label: `random value #${i + 1} (${b.length} bytes) as hex`, value: b.toString('hex') },
      ]),
  };
}
