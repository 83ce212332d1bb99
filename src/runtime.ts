import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { AppDeps } from './deps.js';
import { systemClock } from './clock.js';
import { cryptoRandom } from './random.js';
import { createDb } from './db/index.js';
import { createArgon2Hasher } from './accounts/passwords.js';
import { createSecretStore } from './secrets/index.js';
import { createMemoryRateLimiter } from './http/rate-limiter.js';

/** The built single-page app sits beside the compiled server: dist/web next to dist/*.js. */
export const DEFAULT_WEB_ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'web');

/** The production wiring of AppDeps from a validated Config. */
export async function createRuntime(config: Config, logger: Logger, env: Record<string, string | undefined>): Promise<AppDeps> {
  const db = createDb(config.database);
  const secrets = await createSecretStore({
    provider: config.secrets.provider,
    dataDir: config.dataDir,
    key: config.secrets.key,
    cacheSeconds: config.secrets.cacheSeconds,
    azureVaultUrl: config.secrets.azureVaultUrl,
    env,
    clock: systemClock,
  });
  return {
    config,
    db,
    clock: systemClock,
    random: cryptoRandom,
    secrets,
    hasher: createArgon2Hasher(),
    limiter: createMemoryRateLimiter(systemClock),
    logger,
    webRoot: DEFAULT_WEB_ROOT,
  };
}
