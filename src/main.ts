import fs from 'node:fs';
import dotenv from 'dotenv';
import { describeFailure, UsageError, type Command } from './cli/command.js';
import { mailCommand } from './cli/mail.js';
import { migrateCommand } from './cli/migrate.js';
import { secretsCommand } from './cli/secrets.js';
import { serveCommand } from './cli/serve.js';
import { usersCommand } from './cli/users.js';

// The `gatehouse` command line (bin/gatehouse.js): an entry point, beside outbox-thread.ts. It
// only dispatches; each command group lives in src/cli/.

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

Every command and sub-command answers --help (or -h) with its own usage.
Exit status: 0 on success, 2 on bad arguments, 1 on anything else (one line on stderr).
`;

const COMMANDS: Record<string, Command> = {
  serve: serveCommand,
  migrate: migrateCommand,
  users: usersCommand,
  secrets: secretsCommand,
  mail: mailCommand,
};

async function main(argv: string[]): Promise<void> {
  if (fs.existsSync('.env')) dotenv.config({ path: '.env', quiet: true });
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stdout.write(USAGE);
    throw new UsageError('a command is required');
  }
  if (name === '--help' || name === '-h' || (name === 'help' && rest.length === 0)) {
    process.stdout.write(USAGE);
    return;
  }
  // `gatehouse help users create` is `gatehouse users create --help`.
  if (name === 'help') return dispatch(rest[0]!, [...rest.slice(1), '--help']);
  return dispatch(name, rest);
}

function dispatch(name: string, args: string[]): Promise<void> {
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command === undefined) throw new UsageError(`unknown command "${name}" (see gatehouse --help)`);
  return command.run(args);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const { line, exitCode } = describeFailure(err);
  process.stderr.write(line);
  process.exit(exitCode);
});
