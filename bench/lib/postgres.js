// PostgreSQL for the bench: one template database made once, a copy per scenario
// (CREATE DATABASE … TEMPLATE …), and every database the bench made dropped at the end, on
// Ctrl-C and on error. All are named gatehouse_bench_<random>.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { onCleanup } from './children.js';

/** The maintenance database the bench connects to (trust auth on this machine). */
export const ADMIN_URL = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** @type {Set<string>} databases this run created and has not dropped */
const created = new Set();
let cleanupInstalled = false;

/** The URL of database `name` on the same server as ADMIN_URL. */
export function databaseUrl(name) {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.href;
}

async function withAdmin(fn) {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** { ok: true, version } when the server answers, else { ok: false, reason }. */
export async function probe() {
  try {
    const version = await withAdmin(async (c) => (await c.query('show server_version')).rows[0].server_version);
    return { ok: true, version };
  } catch (err) {
    return { ok: false, reason: `PostgreSQL at ${redacted(ADMIN_URL)} is unreachable (${err instanceof Error ? err.message : String(err)})` };
  }
}

const redacted = (url) => url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@');

/** A new, empty database (or a copy of `template`); returns its name and URL. */
export async function createDatabase(template) {
  installCleanup();
  const name = `gatehouse_bench_${randomBytes(6).toString('hex')}`;
  // A copy needs the template to have no connection left: a server just stopped may still hold one.
  for (let attempt = 1; ; attempt++) {
    try {
      await withAdmin((c) => c.query(`create database ${name}${template ? ` template ${template}` : ''}`));
      break;
    } catch (err) {
      if (attempt >= 20 || !/being accessed by other users/.test(String(err?.message))) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  created.add(name);
  return { name, url: databaseUrl(name) };
}

export async function dropDatabase(name) {
  // FORCE (PostgreSQL 13+) ends connections a killed server may have left behind.
  await withAdmin((c) => c.query(`drop database if exists ${name} with (force)`));
  created.delete(name);
}

export async function dropAll() {
  for (const name of [...created]) await dropDatabase(name);
}

/** The names still to drop (the JSON records that none is left). */
export const leftOver = () => [...created];

function installCleanup() {
  if (cleanupInstalled) return;
  cleanupInstalled = true;
  onCleanup(dropAll, dropAllSync);
}

/** On an exit that cannot wait: a short-lived node process drops them. */
function dropAllSync() {
  if (created.size === 0) return;
  const script = `
    const pg = require('pg');
    const c = new pg.Client({ connectionString: process.argv[1], connectionTimeoutMillis: 3000 });
    c.connect().then(async () => { for (const n of process.argv.slice(2)) await c.query('drop database if exists ' + n + ' with (force)'); await c.end(); });`;
  spawnSync(process.execPath, ['-e', script, ADMIN_URL, ...created], { stdio: 'ignore', timeout: 10_000, cwd: new URL('..', import.meta.url).pathname });
  created.clear();
}

/** Outbox rows by status in a Gatehouse database (the same shape as gatehouse.js's outboxCounts). */
export async function pgOutboxCounts(url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  await client.connect();
  try {
    const rows = (await client.query('select status, count(*)::int as n from mail_outbox group by status')).rows;
    return { outbox: Object.fromEntries(rows.map((r) => [r.status, r.n])), audit: {} };
  } finally {
    await client.end();
  }
}
