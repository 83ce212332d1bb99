import { command, UsageError, withRuntime, type Command } from './command.js';

const USAGE = `Usage: gatehouse migrate

Applies the database migrations that are not applied yet (DATABASE_URL, else the SQLite file
in DATA_DIR) and exits. serve does the same before it listens.

  -h, --help      show this help
`;

export const migrateCommand: Command = command(USAGE, async (args) => {
  if (args.length > 0) throw new UsageError('migrate takes no arguments; configure it with environment variables');
  await withRuntime(async (deps) => {
    const { migrateToLatest } = await import('../db/index.js');
    const applied = await migrateToLatest(deps.db);
    process.stdout.write(applied.length > 0 ? `applied: ${applied.join(', ')}\n` : 'database is up to date\n');
  });
});
