import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { AppDeps } from './deps.js';
import { systemClock } from './clock.js';
import { cryptoRandom } from './random.js';
import { createDb } from './db/index.js';
import { createArgon2Hasher } from './accounts/passwords.js';
import { createConfiguredSecretStore } from './secrets/index.js';
import { createMemoryRateLimiter } from './limits/rate-limiter.js';
import { createMailRuntime, type MailRuntime } from './mail/index.js';

/** The built single-page app sits beside the compiled server: dist/web next to dist/*.js. */
export const DEFAULT_WEB_ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'web');

export interface Runtime {
  deps: AppDeps;
  mail: MailRuntime;
  close(): Promise<void>;
}

/** The production wiring of AppDeps from a validated Config. The outbox worker is built, not started. */
export async function createRuntime(
  config: Config,
  logger: Logger,
  env: Record<string, string | undefined>,
  options: { role: 'server' | 'command' },
): Promise<Runtime> {
  const db = createDb(config.database);
  const secrets = await createConfiguredSecretStore(config, env, systemClock);
  const base = { config, db, clock: systemClock, random: cryptoRandom, secrets, logger };
  // A one-off command never runs the dev mailbox: only the server receives and shows its mail.
  const mail = await createMailRuntime({ config, logger, clock: systemClock, random: cryptoRandom, env, role: options.role });
  // ioredis costs about 12 MB of memory: loaded only when REDIS_URL asks for it.
  const redisLimiter =
    config.redisUrl === undefined
      ? undefined
      : (await import('./limits/redis-rate-limiter.js')).createRedisRateLimiter(config.redisUrl, { clock: systemClock, logger, prefix: config.redisKeyPrefix });
  const limiter = redisLimiter ?? createMemoryRateLimiter(systemClock);
  const deps: AppDeps = {
    ...base,
    hasher: createArgon2Hasher({ threads: true }),
    limiter,
    outbox: mail.worker,
    devInbox: mail.devInbox,
    webRoot: DEFAULT_WEB_ROOT,
  };
  return {
    deps,
    mail,
    async close() {
      await mail.close();
      await redisLimiter?.close();
      await db.destroy();
    },
  };
}
