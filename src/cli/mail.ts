import { parseEmail } from '../accounts/identifiers.js';
import { command, commandGroup, parseOptions, UsageError, withRuntime, type Command } from './command.js';

const TEST_USAGE = `Usage: gatehouse mail test --to E

Checks the saved email settings step by step and sends E a test message, as the Settings
page's "Send test email" does: settings, secrets, then by transport
  smtp          DNS, connection, TLS, sign-in with the password, send
  smtp-oauth2   an Entra ID token, DNS, connection, TLS, sign-in with XOAUTH2, send
  graph         an Entra ID token, DNS, connection, TLS, Microsoft Graph sendMail
Prints one line per step; exits 1 with the failure's code, what happened and a hint when a
step fails. AZURE_AUTHORITY_HOST and GRAPH_BASE_URL are honoured as by the server.

  --to E          the address the test message goes to
  -h, --help      show this help
`;

const USAGE = `Usage: gatehouse mail <sub-command>

  test --to E     check the saved email settings step by step and send E a test message

Run gatehouse mail <sub-command> --help for its own usage.
`;

const test = command(TEST_USAGE, async (args) => {
  const values = parseOptions(args, ['to']);
  if (values.to === undefined || values.to.trim() === '') throw new UsageError('--to is required');
  const to = parseEmail(values.to);
  if (to === null) throw new UsageError(`--to "${values.to}" is not one valid address`);
  return withRuntime(async (deps) => {
    // Loaded once the command runs (see withRuntime).
    const [{ migrateToLatest }, { diagnoseEmail, diagnoseOptions, formatStage }, { findEmailSettings }] = await Promise.all([
      import('../db/index.js'),
      import('../mail/diagnose.js'),
      import('../mail/settings.js'),
    ]);
    await migrateToLatest(deps.db);
    const result = await diagnoseEmail({ ...diagnoseOptions(deps.config), settings: await findEmailSettings(deps.db), secrets: deps.secrets, to });
    for (const stage of result.stages) process.stdout.write(`${formatStage(stage)}\n`);
    if (!result.ok) throw new Error(`${result.error}: ${result.message} — ${result.hint}`);
  });
});

export const mailCommand: Command = commandGroup({ usage: USAGE, misuse: 'usage: gatehouse mail test --to E', commands: { test } });
