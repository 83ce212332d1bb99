import path from 'node:path';

// What the CLI prints when a command fails with an unexpected error: the whole message and its
// causes on one line, scrubbed of credentials, bounded, and for the failures people meet when
// they first start Gatehouse (a native module built for another Node, PostgreSQL out of reach,
// the port taken, a data folder it cannot write) a hint at the fix. Never a stack trace.

/** The longest line describeFailure prints, without its newline. */
export const MAX_FAILURE_LINE = 1000;

type Env = Record<string, string | undefined>;

export interface FailureContext {
  /** where DATA_DIR, DATABASE_URL, HOST and the secrets to hide are read; process.env unless given */
  env?: Env;
  /** what a relative DATA_DIR is resolved against; process.cwd() unless given */
  cwd?: string;
  /** the Node version the rebuild hint names; process.version unless given */
  nodeVersion?: string;
}

interface Resolved {
  env: Env;
  cwd: string;
  nodeVersion: string;
}

/** Whitespace runs (newlines included) and control characters collapsed to one space. */
export function oneLine(text: string): string {
  return text.replace(/[\s\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
}

/** "<message>: caused by <cause>: caused by …" (one line, credentials hidden) plus " — hint: …" for a known failure, at most max characters. */
export function failureText(err: unknown, context: FailureContext = {}, max = MAX_FAILURE_LINE): string {
  const ctx: Resolved = { env: context.env ?? process.env, cwd: context.cwd ?? process.cwd(), nodeVersion: context.nodeVersion ?? process.version };
  const hint = hintFor(err, ctx);
  // The hint keeps its place however long the message: at most half the line, the message the rest.
  const tail = hint === undefined ? '' : clip(` — hint: ${safeLine(hint, ctx.env)}`, Math.floor(max / 2));
  return clip(safeLine(chainText(err), ctx.env), max - tail.length) + tail;
}

/** A message that is already safe to show (a DomainError's, a UsageError's): one line, bounded, credentials hidden all the same. */
export function plainText(message: string, context: FailureContext = {}, max = MAX_FAILURE_LINE): string {
  return clip(safeLine(message, context.env ?? process.env), max);
}

/** Scrubbed before the whitespace is collapsed (a secret may hold a newline) and after (a URL may have been split). */
function safeLine(text: string, env: Env): string {
  return scrub(oneLine(scrub(text, env)), env);
}

// ---------------------------------------------------------------------------------------------
// The message and its causes

const MAX_DEPTH = 8;

/** The error's message, then each `cause` it carries ("…: caused by …"); an AggregateError without a message shows its errors. */
function chainText(err: unknown): string {
  const parts: string[] = [];
  const seen = new Set<unknown>();
  let current: unknown = err;
  for (let depth = 0; depth < MAX_DEPTH && current !== undefined && current !== null && !seen.has(current); depth++) {
    seen.add(current);
    const text = oneLine(ownText(current, seen));
    // Some libraries copy the cause's message into their own: said once is enough.
    if (text !== '' && !parts.some((part) => part.includes(text))) parts.push(text);
    current = typeof current === 'object' && 'cause' in current ? (current as { cause?: unknown }).cause : undefined;
  }
  return parts.length === 0 ? 'unknown error' : parts.join(': caused by ');
}

function ownText(value: unknown, seen: Set<unknown>): string {
  if (typeof value !== 'object' || value === null) return String(value);
  const message = typeof (value as { message?: unknown }).message === 'string' ? (value as { message: string }).message : '';
  const errors = (value as { errors?: unknown }).errors;
  // net's AggregateError (every address of a host refused) has an empty message and the reasons in errors.
  if (message.trim() === '' && Array.isArray(errors) && errors.length > 0) {
    return errors
      .filter((e) => !seen.has(e))
      .slice(0, 4)
      .map((e) => oneLine(ownText(e, seen)))
      .join('; ');
  }
  if (message.trim() !== '') return message;
  const code = (value as { code?: unknown }).code;
  const name = (value as { name?: unknown }).name;
  if (typeof code === 'string') return code;
  if (typeof name === 'string') return name;
  return value instanceof Error ? 'Error' : Object.prototype.toString.call(value);
}

function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, max - 1);
  // Never half a surrogate pair.
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

// ---------------------------------------------------------------------------------------------
// Secrets: never printed

/** Credentials in any scheme://user:password@ URL, and the secret values the environment holds, replaced by ***. */
export function scrub(text: string, env: Env): string {
  // Greedy to the last @ of the token: an unencoded @ in a password must not leave its tail behind.
  let out = text.replace(/\b([a-z][a-z0-9+.-]*:\/\/)\S*@/gi, '$1***@');
  for (const secret of secretValues(env)) out = out.split(secret).join('***');
  return out;
}

function secretValues(env: Env): string[] {
  const values = new Set<string>();
  const add = (value: string | undefined): void => {
    // A very short value would blank out ordinary words; the URL rule above still hides it in a URL.
    if (value !== undefined && value.trim().length >= 4) values.add(value.trim());
  };
  for (const name of ['DATABASE_URL', 'REDIS_URL']) {
    const password = urlPassword(env[name]);
    add(password);
    if (password !== undefined) {
      try {
        add(decodeURIComponent(password));
      } catch {
        // not percent-encoded
      }
    }
  }
  add(env.SECRETS_KEY);
  add(env.AZURE_CLIENT_SECRET);
  for (const [name, value] of Object.entries(env)) if (name.startsWith('GATEHOUSE_SECRET_')) add(value);
  // Longest first, so a secret that contains another is hidden whole.
  return [...values].sort((a, b) => b.length - a.length);
}

function urlPassword(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const match = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*?:([^/?#]*)@/i.exec(raw.trim()) ?? /^[a-z][a-z0-9+.-]*:\/\/[^:@]*:(.*)@/i.exec(raw.trim());
  return match?.[1] === '' ? undefined : match?.[1];
}

// ---------------------------------------------------------------------------------------------
// Hints for the known start-up failures

type ErrorLike = { message: string; code?: unknown; syscall?: unknown; path?: unknown; address?: unknown; port?: unknown; hostname?: unknown };

/** The error, its causes and an AggregateError's errors, breadth first. */
function errorsIn(err: unknown): ErrorLike[] {
  const found: ErrorLike[] = [];
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0 && found.length < 32) {
    const value = queue.shift();
    if (typeof value !== 'object' || value === null || seen.has(value)) continue;
    seen.add(value);
    const message = (value as { message?: unknown }).message;
    found.push({ ...(value as object), message: typeof message === 'string' ? message : '' } as ErrorLike);
    queue.push((value as { cause?: unknown }).cause);
    const errors = (value as { errors?: unknown }).errors;
    if (Array.isArray(errors)) queue.push(...errors.slice(0, 8));
  }
  return found;
}

function hintFor(err: unknown, ctx: Resolved): string | undefined {
  const all = errorsIn(err);
  for (const classify of [nativeModuleHint, listenHint, databaseHint, dataFolderHint]) {
    for (const e of all) {
      const hint = classify(e, ctx);
      if (hint !== undefined) return hint;
    }
  }
  return undefined;
}

/** better-sqlite3 (or another addon) built for another Node: ERR_DLOPEN_FAILED and Node's NODE_MODULE_VERSION message. */
function nativeModuleHint(e: ErrorLike, ctx: Resolved): string | undefined {
  if (e.code !== 'ERR_DLOPEN_FAILED' && !/NODE_MODULE_VERSION|was compiled against a different Node\.js version/.test(e.message)) return undefined;
  const module = moduleNameIn(e.message);
  const rebuild = module === undefined ? 'npm rebuild' : `npm rebuild ${module}`;
  return `run "${rebuild}" (or npm ci) with this Node (${ctx.nodeVersion})`;
}

/** The package a .node file belongs to: the name after the last node_modules in its path. */
function moduleNameIn(message: string): string | undefined {
  const matches = [...message.replace(/\\/g, '/').matchAll(/node_modules\/((?:@[^/'"\s]+\/)?[^/'"\s]+)/g)];
  const name = matches.at(-1)?.[1];
  return name !== undefined && /^(@[a-z0-9._~-]+\/)?[a-z0-9._~-]+$/i.test(name) ? name : undefined;
}

function hostPort(address: unknown, port: unknown): string {
  const host = typeof address === 'string' ? address : '';
  return `${host.includes(':') ? `[${host}]` : host}:${String(port)}`;
}

/** HOST:PORT taken, a privileged port, or HOST not an address of this machine. */
function listenHint(e: ErrorLike, ctx: Resolved): string | undefined {
  if (e.syscall !== 'listen' && e.syscall !== 'bind') return undefined;
  const where = typeof e.port === 'number' ? hostPort(e.address, e.port) : `${ctx.env.HOST?.trim() || '127.0.0.1'}:${ctx.env.PORT?.trim() || '3000'}`;
  if (e.code === 'EADDRINUSE') return `another process listens on ${where}; stop it or set PORT`;
  if (e.code === 'EACCES' || e.code === 'EPERM') return `this user may not listen on ${where} (ports below 1024 need privileges); set PORT to 1024 or more`;
  if (e.code === 'EADDRNOTAVAIL') return `HOST is not an address of this machine (${where}); set HOST, e.g. 127.0.0.1 or 0.0.0.0`;
  return undefined;
}

const UNREACHABLE_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET']);

interface PgTarget {
  host: string;
  port: number;
}

function postgresTarget(env: Env): PgTarget | undefined {
  const raw = env.DATABASE_URL?.trim();
  if (raw === undefined || !/^postgres(ql)?:\/\//i.test(raw)) return undefined;
  try {
    const url = new URL(raw);
    return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port === '' ? 5432 : Number(url.port) };
  } catch {
    return { host: '', port: 5432 };
  }
}

/** PostgreSQL (DATABASE_URL) out of reach, or refusing its user, password or database. */
function databaseHint(e: ErrorLike, ctx: Resolved): string | undefined {
  const target = postgresTarget(ctx.env);
  if (target === undefined) return undefined;
  const at = target.host === '' ? '' : ` at ${hostPort(target.host, target.port)}`;
  const code = typeof e.code === 'string' ? e.code : '';
  if (UNREACHABLE_CODES.has(code)) {
    // Another server's refusal (Redis, SMTP) is not the database's.
    if (typeof e.port === 'number' && e.port !== target.port) return undefined;
    if (typeof e.hostname === 'string' && target.host !== '' && e.hostname !== target.host) return undefined;
    return `check DATABASE_URL: PostgreSQL must be running and reachable${at}`;
  }
  if (/Connection terminated due to connection timeout|timeout expired/i.test(e.message)) return `check DATABASE_URL: PostgreSQL must be running and reachable${at}`;
  if (code === '28P01' || code === '28000' || /password authentication failed|no pg_hba\.conf entry/i.test(e.message)) {
    return `check DATABASE_URL: PostgreSQL${at} must be running, reachable and accept the user and password it names`;
  }
  if (code === '3D000' || /^database ".*" does not exist$/.test(e.message)) {
    return `check DATABASE_URL: PostgreSQL${at} must be running, reachable and hold the database it names (create it, or fix the name)`;
  }
  return undefined;
}

const FOLDER_CODES = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR']);

/** DATA_DIR (or the folder of a sqlite: DATABASE_URL) not a folder this user can write. */
function dataFolderHint(e: ErrorLike, ctx: Resolved): string | undefined {
  const dataDir = path.resolve(ctx.cwd, ctx.env.DATA_DIR?.trim() || './data');
  const sqliteUrl = ctx.env.DATABASE_URL?.trim();
  const sqliteDir = sqliteUrl?.startsWith('sqlite:') ? path.dirname(path.resolve(ctx.cwd, sqliteUrl.slice('sqlite:'.length))) : undefined;
  const dataDirHint = `DATA_DIR (${dataDir}) must be a folder this user can write; set DATA_DIR or fix permissions`;
  const sqliteDirHint = `the folder of the DATABASE_URL file (${sqliteDir}) must be a folder this user can write; set DATABASE_URL or fix permissions`;
  const code = typeof e.code === 'string' ? e.code : '';
  const folderProblem = FOLDER_CODES.has(code) || (code === 'EEXIST' && e.syscall === 'mkdir');
  if (folderProblem && typeof e.path === 'string') {
    const failed = path.resolve(ctx.cwd, e.path);
    // A recursive mkdir may fail on a parent of the folder.
    const mkdir = e.syscall === 'mkdir';
    if (inside(failed, dataDir) || (mkdir && inside(dataDir, failed))) return dataDirHint;
    if (sqliteDir !== undefined && (inside(failed, sqliteDir) || (mkdir && inside(sqliteDir, failed)))) return sqliteDirHint;
    return undefined;
  }
  // better-sqlite3 names no path: the database file is in DATA_DIR unless DATABASE_URL says sqlite:<file>.
  if (/^SQLITE_(CANTOPEN|READONLY)/.test(code) || /^(unable to open database file|attempt to write a readonly database)$/.test(e.message)) {
    return sqliteDir === undefined ? dataDirHint : sqliteDirHint;
  }
  return undefined;
}

/** child is parent or inside it. */
function inside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}
