import { parseNewUser, type NewUserInput } from '../accounts/new-user.js';
import type { NewUser } from '../accounts/service.js';
import { command, commandGroup, fieldsOf, parseOptions, readSecretInput, UsageError, withRuntime, type Command } from './command.js';

const CREATE_USAGE = `Usage: gatehouse users create [--email E] [--username U] --name N --role system-admin|user

Creates a user. The password is read from stdin (one trailing newline stripped), or asked for
without echo on a terminal. Give --email, --username or both: either one signs in.

  --email E       one plain address, where recovery mail goes
  --username U    1 to 64 letters, digits, dots, dashes or underscores
  --name N        the name shown in the dashboard (required)
  --role R        system-admin or user (required)
  -h, --help      show this help
`;

const SET_PASSWORD_USAGE = `Usage: gatehouse users set-password --login L

Sets a user's password (break-glass, for when mail is down) and signs them out everywhere.
The password is read from stdin (one trailing newline stripped), or asked for without echo on
a terminal. The user need not change it at next sign-in.

  --login L       the user's email or username
  -h, --help      show this help
`;

const UNLOCK_USAGE = `Usage: gatehouse users unlock --login L

Lifts the lock that too many failed sign-ins put on an account and clears its failure count.
Recorded in the audit log as account_unlocked.

  --login L       the user's email or username
  -h, --help      show this help
`;

const USAGE = `Usage: gatehouse users <sub-command>

  create [--email E] [--username U] --name N --role system-admin|user
                              add a user; password from stdin (prompted on a terminal)
  set-password --login L      password from stdin; revokes the user's sessions
  unlock --login L            lift the lock that too many failed sign-ins put on an account

Run gatehouse users <sub-command> --help for its own usage.
`;

/** What the sub-commands do, loaded once one runs (see withRuntime). */
const work = async () => {
  const [service, repo, audit, db] = await Promise.all([import('../accounts/service.js'), import('../accounts/users-repo.js'), import('../audit/audit.js'), import('../db/index.js')]);
  return { ...service, ...repo, ...audit, ...db };
};

// What a stand-in password must be to judge the arguments alone: any non-blank value does.
const PASSWORD_NOT_YET_READ = 'password not yet read';

const create = command(CREATE_USAGE, async (args) => {
  const values = parseOptions(args, ['email', 'username', 'name', 'role']);
  const flags = { email: values.email, username: values.username, name: values.name ?? '', role: values.role ?? '' };
  // The arguments are judged before stdin is read, so a typo is reported before the password prompt.
  judge({ ...flags, password: PASSWORD_NOT_YET_READ });
  const password = await readSecretInput('Password for the new user: ');
  // To the route a blank password means "send a set-password link"; the CLI sends no mail.
  if (password.trim() === '') throw new UsageError('a blank password was given on stdin');
  const user = judge({ ...flags, password });
  return withRuntime(async (deps) => {
    const { auditLabel, createUser, migrateToLatest, recordAudit } = await work();
    await migrateToLatest(deps.db);
    const created = await createUser(deps, user);
    await recordAudit(deps.db, deps.clock, { type: 'user_created', target: auditLabel(created), outcome: 'success', detail: { role: created.role, via: 'cli' } });
    process.stdout.write(`created user ${created.username ?? created.email} (${created.role}) id=${created.id}\n`);
  });
});

/** The new user as POST /api/users reads it; a refusal names the flags at fault. */
function judge(input: NewUserInput): NewUser {
  const parsed = parseNewUser(input);
  if (!parsed.ok) throw new UsageError(`${parsed.message}${fieldsOf(parsed.fields, '--')}`);
  return parsed.user;
}

const setPasswordCommand = command(SET_PASSWORD_USAGE, async (args) => {
  const login = requiredLogin(args);
  const password = await readSecretInput('New password: ');
  return withRuntime(async (deps) => {
    const { findUserByLogin, migrateToLatest, setPassword } = await work();
    await migrateToLatest(deps.db);
    const user = await findUserByLogin(deps.db, login);
    if (user === undefined) throw new Error(`no user with login "${login}"`);
    await setPassword(deps, user, password, { mustChange: false });
    process.stdout.write(`password set for ${user.username ?? user.email}; their sessions were signed out\n`);
  });
});

const unlock = command(UNLOCK_USAGE, async (args) => {
  const login = requiredLogin(args);
  return withRuntime(async (deps) => {
    const { auditLabel, findUserByLogin, migrateToLatest, recordAudit, unlockUser } = await work();
    await migrateToLatest(deps.db);
    const user = await findUserByLogin(deps.db, login);
    if (user === undefined) throw new Error(`no user with login "${login}"`);
    const unlocked = await unlockUser(deps, user.id);
    await recordAudit(deps.db, deps.clock, { type: 'account_unlocked', target: auditLabel(user), outcome: 'success', detail: { via: 'cli' } });
    process.stdout.write(`${unlocked.username ?? unlocked.email} ${user.locked_at === null ? 'was not locked; its failure count is cleared' : 'is unlocked'}\n`);
  });
});

function requiredLogin(args: string[]): string {
  const { login } = parseOptions(args, ['login']);
  if (login === undefined || login.trim() === '') throw new UsageError('--login is required');
  return login.trim();
}

export const usersCommand: Command = commandGroup({
  usage: USAGE,
  misuse: 'usage: gatehouse users create … | users set-password --login L | users unlock --login L',
  commands: { create, 'set-password': setPasswordCommand, unlock },
});
