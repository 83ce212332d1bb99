import { command, UsageError, type Command } from './command.js';

const USAGE = `Usage: gatehouse serve

Applies the database migrations, then serves the dashboard and its API on HOST:PORT
(127.0.0.1:3000 unless set) until SIGTERM or SIGINT: then it stops accepting, lets the
requests in flight finish, and exits within 10 s. Configured by environment variables
(and a .env file); see the README.

It logs to stdout: readable lines when stdout is a terminal, one JSON object per line
otherwise (LOG_FORMAT=pretty|json to choose), at LOG_LEVEL (info; debug adds a line per
request). At start-up it prints where the dashboard is and, while it runs, the dev mailbox.

  -h, --help      show this help
`;

export const serveCommand: Command = command(USAGE, async (args) => {
  if (args.length > 0) throw new UsageError('serve takes no arguments; configure it with environment variables');
  // Only the server needs the HTTP stack: the one-off commands start faster without it.
  const { startServer } = await import('../server.js');
  await startServer(process.env);
});
