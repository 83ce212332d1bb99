import closeWithGrace from 'close-with-grace';
import type { Logger } from 'pino';
import { ensureFirstAdmin } from './accounts/first-admin.js';
import { deleteExpiredDevices } from './accounts/devices.js';
import { deleteExpiredSessions } from './accounts/sessions.js';
import { buildApp } from './app.js';
import { loadConfig } from './config.js';
import type { AppDeps } from './deps.js';
import { migrateToLatest } from './db/index.js';
import { createLogger, type LogFormat } from './logger.js';
import { deleteOldDeliveries } from './mail/outbox.js';
import { deleteExpiredResetTokens } from './recovery/tokens.js';
import { createRuntime } from './runtime.js';

/** How long SIGTERM or SIGINT waits for requests in flight, the current delivery and the pools before exiting 1. */
export const SHUTDOWN_BOUND_MS = 10_000;
const HOUSEKEEPING_INTERVAL_MS = 3_600_000;

/**
 * `gatehouse serve`: migrate, create the first admin on an empty database, listen, start the
 * outbox worker and the hourly housekeeping; then, on SIGTERM or SIGINT, stop within the bound.
 */
export async function startServer(env: Record<string, string | undefined>): Promise<void> {
  // Readable lines for a person at a terminal, JSON for a service manager or a log shipper.
  const config = loadConfig(env, { stdoutIsTty: process.stdout.isTTY === true });
  const logger = createLogger(config.logLevel, undefined, { format: config.logFormat });
  // The outbox thread loads its Config from this environment; its stdout is never a terminal, so
  // it is told the format chosen here.
  const runtime = await createRuntime(config, logger, { ...env, LOG_FORMAT: config.logFormat }, { role: 'server' });
  const { deps } = runtime;
  await migrateToLatest(deps.db);
  const bootstrap = await ensureFirstAdmin(deps);
  const app = await buildApp(deps);
  await app.listen({ port: config.port, host: config.host });
  const address = app.server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const url = (config.publicUrlDefaulted ? `http://localhost:${port}` : config.publicUrl.href).replace(/\/+$/, '');
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
        bootstrap.storedInSecrets ? ' It is also kept in the secret store as "tempAdminPassword" until you change it.' : '',
        ' Add a system admin with a real email so password recovery works.',
        '================================================================',
        '',
      ]
        .filter((line) => line !== '')
        .join('\n') + '\n',
    );
  }
  announce(config.logFormat, [
    { msg: `Gatehouse is running at ${url}`, url },
    ...(runtime.mail.devInbox === undefined ? [] : [{ msg: `Emails are caught by the dev mailbox: ${url}/dev/mailbox`, devMailbox: `${url}/dev/mailbox` }]),
  ]);

  runtime.mail.worker.start();
  const housekeeping = startHousekeeping(deps, logger);

  const say = (line: string): void => {
    process.stderr.write(`gatehouse: ${line}\n`);
  };
  // Past the bound, or on a second signal, close-with-grace exits 1 at once.
  closeWithGrace(
    {
      delay: SHUTDOWN_BOUND_MS,
      logger: { error: (err: unknown) => say(`shutdown failed: ${err instanceof Error ? err.message : String(err)}`) },
      onTimeout: () => say(`shutdown took longer than ${SHUTDOWN_BOUND_MS / 1000} s; exiting with work cut short`),
      onSecondSignal: (signal) => say(`${signal} again: exiting now`),
      onSecondError: (err) => say(`another error while shutting down: ${err instanceof Error ? err.message : String(err)}`),
    },
    async ({ signal, err }) => {
      if (err !== undefined) logger.error({ err }, 'unexpected error; shutting down');
      else logger.info({ signal }, 'shutting down');
      clearInterval(housekeeping);
      // Closes the listening socket at once (new connections are refused) and the idle keep-alive
      // connections; resolves once every request in flight has been answered and its connection
      // closed. A keep-alive connection becomes idle only after its answer, later than the one reap
      // that server.close() does: reaped here, it would hold the exit for its keep-alive timeout.
      const reap = setInterval(() => app.server.closeIdleConnections(), 50);
      try {
        await app.close();
      } finally {
        clearInterval(reap);
      }
      // The outbox thread finishes the message it is sending, then the pools and the dev mailbox close.
      await runtime.close();
    },
  );
}

/**
 * The start-up lines, whatever LOG_LEVEL says: where the dashboard is and, while it runs, where
 * the dev mailbox shows the emails. Plain lines on a terminal; log entries (info) in JSON, so
 * that every line of a JSON console parses (the first-start banner above excepted: its password
 * is kept out of the structured log).
 */
function announce(format: LogFormat, lines: { msg: string; [field: string]: string }[]): void {
  if (format === 'pretty') {
    process.stdout.write(lines.map((line) => `${line.msg}\n`).join(''));
    return;
  }
  const startup = createLogger('info', undefined, { format: 'json' });
  for (const { msg, ...fields } of lines) startup.info(fields, msg);
}

/** Hourly: expired sessions, trusted devices and reset tokens, and deliveries older than 30 days. */
function startHousekeeping(deps: AppDeps, logger: Logger): NodeJS.Timeout {
  const timer = setInterval(() => {
    const nowMs = deps.clock.now().getTime();
    Promise.all([deleteExpiredSessions(deps.db, nowMs), deleteExpiredDevices(deps.db, nowMs), deleteExpiredResetTokens(deps.db, nowMs), deleteOldDeliveries(deps.db, nowMs)]).catch(
      (err: unknown) => logger.warn({ err }, 'housekeeping failed'),
    );
  }, HOUSEKEEPING_INTERVAL_MS);
  timer.unref();
  return timer;
}
