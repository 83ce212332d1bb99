import type { Logger } from 'pino';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import type { Db } from './db/index.js';
import type { PasswordHasher } from './accounts/passwords.js';
import type { Random } from './random.js';
import type { SecretStore } from './secrets/store.js';
import type { RateLimiter } from './limits/rate-limiter.js';
import type { DevInbox } from './mail/dev-inbox.js';

/** Everything the app touches outside its own memory; tests pass fakes for any of it. */
export interface AppDeps {
  readonly config: Config;
  readonly db: Db;
  readonly clock: Clock;
  readonly random: Random;
  readonly secrets: SecretStore;
  readonly hasher: PasswordHasher;
  readonly limiter: RateLimiter;
  readonly logger: Logger;
  /** the delivery worker; wake() after queueing so mail leaves now rather than at the next poll */
  readonly outbox: { wake(): void };
  /** the embedded dev mailbox, when it runs (never in production) */
  readonly devInbox?: DevInbox | undefined;
  /** when to shed load with 503 overloaded (defaults: 1000 ms event-loop delay, sampled every 1000 ms) */
  readonly loadShedding?: { maxEventLoopDelayMs: number; sampleIntervalMs: number } | undefined;
  /** the built single-page app (index.html and assets); undefined serves the API alone */
  readonly webRoot?: string | undefined;
}
