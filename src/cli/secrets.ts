import { isValidSecretName } from '../secrets/store.js';
import { command, commandGroup, configFromEnv, parsePositionals, readSecretInput, UsageError, withRuntime, type Command } from './command.js';

const NAME_RULE = 'A name holds 1 to 127 letters, digits and dashes.';
const STORE = 'The store is the one SECRETS_PROVIDER configures (local, env or azure-keyvault).';

const SET_USAGE = `Usage: gatehouse secrets set NAME

Saves the secret NAME in the local store (SECRETS_PROVIDER=local; the other stores are managed
with their own tools). The value is read from stdin (one trailing newline stripped), or asked
for without echo on a terminal. ${NAME_RULE}

  -h, --help      show this help
`;

const GET_USAGE = `Usage: gatehouse secrets get NAME

Prints the value of the secret NAME on stdout. ${STORE}

  -h, --help      show this help
`;

const LIST_USAGE = `Usage: gatehouse secrets list

Prints the name of every secret, one a line, never a value. ${STORE}

  -h, --help      show this help
`;

const DELETE_USAGE = `Usage: gatehouse secrets delete NAME

Deletes the secret NAME from the local store (SECRETS_PROVIDER=local only).

  -h, --help      show this help
`;

const USAGE = `Usage: gatehouse secrets <sub-command>

  set NAME        value from stdin (local store only)
  get NAME        print a secret's value
  list            print every secret's name
  delete NAME     delete a secret (local store only)

${STORE}
Run gatehouse secrets <sub-command> --help for its own usage.
`;

const set = command(SET_USAGE, async (args) => {
  const name = nameIn(args, 'set');
  assertWritableStore();
  const value = await readSecretInput(`Value for ${name}: `);
  await withRuntime(async ({ secrets, config }) => {
    await secrets.set(name, value);
    process.stdout.write(`secret ${name} saved\n`);
    // Saved all the same: the store serves other things than mail.
    if (!config.mailSecretNamePattern.test(name)) {
      process.stderr.write(`note: email settings can only use secrets whose names match ${config.mailSecretNamePattern.source} (MAIL_SECRET_NAME_PATTERN)\n`);
    }
  });
});

const get = command(GET_USAGE, async (args) => {
  const name = nameIn(args, 'get');
  await withRuntime(async ({ secrets }) => {
    const secret = await secrets.get(name);
    if (secret === undefined) throw new Error(`no secret named "${name}"`);
    process.stdout.write(`${secret}\n`);
  });
});

const list = command(LIST_USAGE, async (args) => {
  if (parsePositionals(args).length > 0) throw new UsageError('usage: gatehouse secrets list');
  await withRuntime(async ({ secrets }) => {
    for (const name of await secrets.list()) process.stdout.write(`${name}\n`);
  });
});

const remove = command(DELETE_USAGE, async (args) => {
  const name = nameIn(args, 'delete');
  assertWritableStore();
  await withRuntime(async ({ secrets }) => {
    await secrets.delete(name);
    process.stdout.write(`secret ${name} deleted\n`);
  });
});

function nameIn(args: string[], sub: string): string {
  const positionals = parsePositionals(args);
  const name = positionals[0];
  if (name === undefined || positionals.length !== 1) throw new UsageError(`usage: gatehouse secrets ${sub} NAME`);
  if (!isValidSecretName(name)) throw new UsageError('a secret name holds 1 to 127 letters, digits and dashes');
  return name;
}

/** Checked before anything is read from stdin or opened. */
function assertWritableStore(): void {
  const { provider } = configFromEnv().secrets;
  if (provider !== 'local') throw new Error(`the ${provider} secret store is read-only here: manage it with its own tools`);
}

export const secretsCommand: Command = commandGroup({
  usage: USAGE,
  misuse: 'usage: gatehouse secrets set NAME | get NAME | list | delete NAME',
  commands: { set, get, list, delete: remove },
});
