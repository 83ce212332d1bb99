import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { Writable } from 'node:stream';
import { buildApp } from '../../src/app.js';
import { FakeClock } from '../../src/clock.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { AppDeps } from '../../src/deps.js';
import { createDb, migrateToLatest, type Db } from '../../src/db/index.js';
import { createArgon2Hasher } from '../../src/accounts/passwords.js';
import { createUser } from '../../src/accounts/service.js';
import type { User } from '../../src/accounts/users-repo.js';
import { createMemoryRateLimiter } from '../../src/limits/rate-limiter.js';
import { createLogger } from '../../src/logger.js';
import { seededRandom } from '../../src/random.js';
import { nextTestSeed } from './seed.js';
import { createMemorySecretStore } from '../../src/secrets/memory.js';
import { createOutboxWorker, type OutboxWorker } from '../../src/mail/outbox.js';
import type { Mailer, OutgoingMessage } from '../../src/mail/transport.js';
import { recoveryHandlers } from '../../src/recovery/delivery.js';

/** A Mailer that keeps what it is given; `fail` makes the next sends throw the given error. */
export function memoryMailer(): Mailer & { sent: OutgoingMessage[]; fail: Error | undefined } {
  const mailer = {
    sent: [] as OutgoingMessage[],
    fail: undefined as Error | undefined,
    async send(message: OutgoingMessage) {
      if (mailer.fail) throw mailer.fail;
      mailer.sent.push(message);
    },
  };
  return mailer;
}

export const STRONG_PASSWORD = 'correct horse battery staple';
export const OTHER_STRONG_PASSWORD = 'purple monkey dishwasher lantern';

export interface TestContext {
  app: FastifyInstance;
  deps: AppDeps;
  clock: FakeClock;
  db: Db;
  /** every log line the app wrote, as text */
  logs: string[];
  /** the delivery worker, not started: call drain() to send what is due */
  outbox: OutboxWorker;
  /** what the worker sent, when no other mailer was given */
  mailer: ReturnType<typeof memoryMailer>;
  close(): Promise<void>;
}

/** The app on an in-memory SQLite (or the given db), with a fake clock, seeded randomness and in-memory fakes. */
export async function makeTestApp(
  options: { env?: Record<string, string>; db?: Db; deps?: Partial<AppDeps>; mailer?: Mailer | (() => Promise<Mailer>) } = {},
): Promise<TestContext> {
  const config: Config = loadConfig({ PUBLIC_URL: 'http://localhost:3000', ...options.env });
  const db = options.db ?? createDb({ kind: 'sqlite', file: ':memory:' });
  await migrateToLatest(db);
  const clock = new FakeClock('2026-03-01T12:00:00.000Z');
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logs.push(String(chunk));
      cb();
    },
  });
  const mailer = memoryMailer();
  // Every line: the request lines are at debug and trace (issue 10), and the tests look for secrets in all of them.
  const logger = createLogger('trace', sink);
  const base = { config, db, clock, random: seededRandom(nextTestSeed()), logger, ...options.deps };
  const outbox = createOutboxWorker({
    db: base.db,
    clock: base.clock,
    logger,
    // A function chooses the mailer per message, as src/mail/index.ts chooseMailer does.
    mailer: typeof options.mailer === 'function' ? options.mailer : async () => (options.mailer as Mailer | undefined) ?? mailer,
    handlers: recoveryHandlers(base),
    baseBackoffMs: 1000,
  });
  const deps: AppDeps = {
    secrets: createMemorySecretStore(),
    hasher: createArgon2Hasher(),
    limiter: createMemoryRateLimiter(clock),
    webRoot: undefined,
    // Off unless a test asks: a loaded CI machine must not turn a test's request into a 503.
    loadShedding: { maxEventLoopDelayMs: 0, sampleIntervalMs: 1000 },
    outbox,
    ...base,
  };
  const app = await buildApp(deps);
  await app.ready();
  return {
    app,
    deps,
    clock,
    db,
    logs,
    outbox,
    mailer,
    async close() {
      await outbox.stop();
      await app.close();
      if (options.db === undefined) await db.destroy();
    },
  };
}

export async function addUser(
  ctx: TestContext,
  fields: { email?: string | null; username?: string | null; name?: string; role?: 'system-admin' | 'user'; password?: string | null },
  options: { mustChangePassword?: boolean } = {},
): Promise<User> {
  return createUser(
    ctx.deps,
    {
      email: fields.email ?? null,
      username: fields.username ?? null,
      name: fields.name ?? 'Test User',
      role: fields.role ?? 'user',
      password: fields.password === undefined ? STRONG_PASSWORD : fields.password,
    },
    options,
  );
}

/** Signs in and returns the session cookie header value. */
export async function signIn(ctx: TestContext, login: string, password = STRONG_PASSWORD): Promise<string> {
  const res = await ctx.app.inject({ method: 'POST', url: '/api/auth/login', payload: { login, password } });
  if (res.statusCode !== 200) throw new Error(`sign-in failed: ${res.statusCode} ${res.body}`);
  return sessionCookie(res);
}

/** The session cookie a response set, as a Cookie header value (with its __Host- prefix over https). */
export function sessionCookie(res: LightMyRequestResponse): string {
  const cookie = res.cookies.find((c) => c.name === 'gatehouse_session' || c.name === '__Host-gatehouse_session');
  if (!cookie) throw new Error('no session cookie');
  return `${cookie.name}=${cookie.value}`;
}
