import fs from 'node:fs';
import { parseArgs } from 'node:util';
import dotenv from 'dotenv';
import { ConfigError, loadConfig, type Config } from './config.js';
import type { AppDeps } from './deps.js';
import { createLogger } from './logger.js';
import { createRuntime } from './runtime.js';
import { migrateToLatest } from './db/index.js';
import { ensureFirstAdmin } from './accounts/first-admin.js';
import { deleteExpiredSessions } from './accounts/sessions.js';
import { deleteExpiredDevices } from './accounts/devices.js';
import { deleteOldDeliveries } from './mail/outbox.js';
import { deleteExpiredResetTokens } from './recovery/tokens.js';
import { createUser, setPassword, unlockUser } from './accounts/service.js';
import { auditLabel, recordAudit } from './audit/audit.js';
import { findUserByLogin } from './accounts/users-repo.js';
import { parseEmail, parseUsername } from './accounts/identifiers.js';
import { HttpError } from './http/errors.js';
import { isValidSecretName } from './secrets/store.js';
import { diagnoseEmail, formatStage } from './mail/diagnose.js';
import { findEmailSettings } from './mail/settings.js';

const USAGE = `Usage: gatehouse <command>

  serve                                   migrate, then serve the dashboard
  migrate                                 apply database migrations and exit
  users create [--email E] [--username U] --name N --role system-admin|user
                                          password from stdin (prompted on a terminal)
  users set-password --login L            password from stdin; revokes the user's sessions
  users unlock --login L                  lift the lock that too many failed sign-ins put on an account
  secrets set NAME                        value from stdin (local store only)
  secrets get NAME | list | delete NAME   the configured secret store
  mail test --to E                        check the saved email settings step by step and send E a test message
`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<void> {
  if (fs.existsSync('.env')) dotenv.config({ path: '.env', quiet: true });
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    if (command === undefined) throw new UsageError('a command is required');
    return;
  }
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'migrate':
      return withRuntime(async (deps) => {
        const applied = await migrateToLatest(deps.db);
        process.stdout.write(applied.length > 0 ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
      });
    case 'users':
      return usersCommand(rest);
    case 'secrets':
      return secretsCommand(rest);
    case 'mail':
      return mailCommand(rest);
    default:
      throw new UsageError(`unknown command "${command}" (see gatehouse --help)`);
  }
}

function config(): Config {
  return loadConfig(process.env);
}

async function withRuntime(fn: (deps: AppDeps) => Promise<void>): Promise<void> {
  const runtime = await createRuntime(config(), createLogger('warn'), process.env, { role: 'command' });
  try {
    await fn(runtime.deps);
  } finally {
    await runtime.close();
  }
}

async function serve(args: string[]): Promise<void> {
  if (args.length > 0) throw new UsageError('serve takes no arguments; configure it with environment variables');
  const cfg = config();
  const logger = createLogger(cfg.logLevel);
  const runtime = await createRuntime(cfg, logger, process.env, { role: 'server' });
  const deps = runtime.deps;
  await migrateToLatest(deps.db);
  const bootstrap = await ensureFirstAdmin(deps);
  // Only the server needs the HTTP stack: the one-off commands start faster without it.
  const { buildApp } = await import('./app.js');
  const app = await buildApp(deps);
  await app.listen({ port: cfg.port, host: cfg.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : cfg.port;
  const url = cfg.publicUrlDefaulted ? `http://localhost:${port}` : cfg.publicUrl.href;
  if (bootstrap.created) {
    // The one secret ever printed: a plain banner on stdout, outside the structured log, once.
    process.stdout.write(
      [
        '',
        '================================================================',
        ' Gatehouse first start: an administrator account was created.',
        `   Open:      ${url}`,
        '   Username:  admin',
        `   Password:  ${bootstrap.password}`,
        ' You must change this temporary password at first sign-in.',
        bootstrap.storedInSecrets ? ' It is also kept in the secret store as "tempAdminPassword".' : '',
        ' Add a system admin with a real email so password recovery works.',
        '================================================================',
        '',
      ]
        .filter((line) => line !== '')
        .join('\n') + '\n',
    );
  } else {
    process.stdout.write(`Gatehouse is running at ${url}\n`);
  }

  runtime.mail.worker.start();
  // Hourly housekeeping: expired sessions, trusted devices and tokens, deliveries older than 30 days.
  const sweep = setInterval(() => {
    const nowMs = deps.clock.now().getTime();
    Promise.all([deleteExpiredSessions(deps.db, nowMs), deleteExpiredDevices(deps.db, nowMs), deleteExpiredResetTokens(deps.db, nowMs), deleteOldDeliveries(deps.db, nowMs)]).catch((err: unknown) =>
      logger.warn({ err }, 'housekeeping failed'),
    );
  }, 3_600_000);
  sweep.unref();

  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down');
    clearInterval(sweep);
    app
      .close()
      .then(() => runtime.close())
      .then(() => process.exit(0))
      .catch(() => process.exit(1));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

async function usersCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === 'create') {
    const { values } = parse(rest, { email: { type: 'string' }, username: { type: 'string' }, name: { type: 'string' }, role: { type: 'string' } });
    if (values.name === undefined || values.name.trim() === '') throw new UsageError('--name is required');
    if (values.role !== 'system-admin' && values.role !== 'user') throw new UsageError('--role must be system-admin or user');
    if (values.email === undefined && values.username === undefined) throw new UsageError('give --email, --username or both');
    const email = values.email === undefined ? null : parseEmail(values.email);
    if (values.email !== undefined && email === null) throw new UsageError(`--email "${values.email}" is not one valid address`);
    const username = values.username === undefined ? null : parseUsername(values.username);
    if (values.username !== undefined && username === null) throw new UsageError('--username may hold 1 to 64 letters, digits, dots, dashes or underscores');
    const password = await readSecretInput('Password for the new user: ');
    const role = values.role;
    const name = values.name.trim();
    return withRuntime(async (deps) => {
      await migrateToLatest(deps.db);
      const user = await createUser(deps, { email, username, name, role, password });
      process.stdout.write(`created user ${user.username ?? user.email} (${user.role}) id=${user.id}\n`);
    });
  }
  if (sub === 'set-password') {
    const { values } = parse(rest, { login: { type: 'string' } });
    if (values.login === undefined || values.login.trim() === '') throw new UsageError('--login is required');
    const login = values.login.trim();
    const password = await readSecretInput('New password: ');
    return withRuntime(async (deps) => {
      await migrateToLatest(deps.db);
      const user = await findUserByLogin(deps.db, login);
      if (user === undefined) throw new Error(`no user with login "${login}"`);
      await setPassword(deps, user, password, { mustChange: false });
      process.stdout.write(`password set for ${user.username ?? user.email}; their sessions were signed out\n`);
    });
  }
  if (sub === 'unlock') {
    const { values } = parse(rest, { login: { type: 'string' } });
    if (values.login === undefined || values.login.trim() === '') throw new UsageError('--login is required');
    const login = values.login.trim();
    return withRuntime(async (deps) => {
      await migrateToLatest(deps.db);
      const user = await findUserByLogin(deps.db, login);
      if (user === undefined) throw new Error(`no user with login "${login}"`);
      const unlocked = await unlockUser(deps, user.id);
      await recordAudit(deps.db, deps.clock, { type: 'account_unlocked', target: auditLabel(user), outcome: 'success', detail: { via: 'cli' } });
      process.stdout.write(`${unlocked.username ?? unlocked.email} ${user.locked_at === null ? 'was not locked; its failure count is cleared' : 'is unlocked'}\n`);
    });
  }
  throw new UsageError('usage: gatehouse users create … | users set-password --login L | users unlock --login L');
}

async function secretsCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  const name = rest[0];
  const needsName = sub === 'set' || sub === 'get' || sub === 'delete';
  if (sub === undefined || !['set', 'get', 'list', 'delete'].includes(sub)) throw new UsageError('usage: gatehouse secrets set NAME | get NAME | list | delete NAME');
  if (needsName && (name === undefined || rest.length !== 1)) throw new UsageError(`usage: gatehouse secrets ${sub} NAME`);
  if (sub === 'list' && rest.length > 0) throw new UsageError('usage: gatehouse secrets list');
  if (needsName && !isValidSecretName(name!)) throw new UsageError('a secret name holds 1 to 127 letters, digits and dashes');
  const cfg = config();
  if ((sub === 'set' || sub === 'delete') && cfg.secrets.provider !== 'local') {
    throw new Error(`the ${cfg.secrets.provider} secret store is read-only here: manage it with its own tools`);
  }
  const value = sub === 'set' ? await readSecretInput(`Value for ${name}: `) : undefined;
  const runtime = await createRuntime(cfg, createLogger('warn'), process.env, { role: 'command' });
  const deps = runtime.deps;
  try {
    if (sub === 'set') {
      await deps.secrets.set(name!, value!);
      process.stdout.write(`secret ${name} saved\n`);
      // Saved all the same: the store serves other things than mail.
      if (!cfg.mailSecretNamePattern.test(name!)) {
        process.stderr.write(`note: email settings can only use secrets whose names match ${cfg.mailSecretNamePattern.source} (MAIL_SECRET_NAME_PATTERN)\n`);
      }
    } else if (sub === 'get') {
      const secret = await deps.secrets.get(name!);
      if (secret === undefined) throw new Error(`no secret named "${name}"`);
      process.stdout.write(`${secret}\n`);
    } else if (sub === 'delete') {
      await deps.secrets.delete(name!);
      process.stdout.write(`secret ${name} deleted\n`);
    } else {
      for (const n of await deps.secrets.list()) process.stdout.write(`${n}\n`);
    }
  } finally {
    await runtime.close();
  }
}

async function mailCommand(args: string[]): Promise<void> {
  const [sub, ...rest] = args;
  if (sub !== 'test') throw new UsageError('usage: gatehouse mail test --to E');
  const { values } = parse(rest, { to: { type: 'string' } });
  if (values.to === undefined || values.to.trim() === '') throw new UsageError('--to is required');
  const to = parseEmail(values.to);
  if (to === null) throw new UsageError(`--to "${values.to}" is not one valid address`);
  return withRuntime(async (deps) => {
    await migrateToLatest(deps.db);
    const result = await diagnoseEmail({ settings: await findEmailSettings(deps.db), secrets: deps.secrets, secretNamePattern: deps.config.mailSecretNamePattern, to });
    for (const stage of result.stages) process.stdout.write(`${formatStage(stage)}\n`);
    if (!result.ok) throw new Error(`${result.error}: ${result.message} — ${result.hint}`);
  });
}

function parse<T extends Record<string, { type: 'string' }>>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A password or secret from stdin: prompted without echo on a terminal, else read whole with one trailing newline stripped. */
async function readSecretInput(prompt: string): Promise<string> {
  let value: string;
  if (process.stdin.isTTY) {
    value = await promptHidden(prompt);
  } else {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    value = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  }
  if (value.length === 0) throw new UsageError('an empty value was given on stdin');
  return value;
}

function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    let value = '';
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          done();
          resolve(value);
          return;
        }
        if (ch === '\u0003') {
          done();
          reject(new Error('cancelled'));
          return;
        }
        if (ch === '\u007f') value = value.slice(0, -1);
        else value += ch;
      }
    };
    const done = (): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`gatehouse: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof ConfigError) {
    process.stderr.write(`gatehouse: ${err.message}\n`);
    process.exit(1);
  }
  const message = err instanceof HttpError ? `${err.message}${reasonsOf(err)}` : err instanceof Error ? err.message : String(err);
  process.stderr.write(`gatehouse: ${message.split('\n')[0]}\n`);
  process.exit(1);
});

function reasonsOf(err: HttpError): string {
  const fields = err.extra.fields as Record<string, string> | undefined;
  return fields ? ` (${Object.entries(fields).map(([k, v]) => `${k}: ${v}`).join('; ')})` : '';
}
