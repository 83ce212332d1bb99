import { createHash } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { PasswordHasher } from '../../src/accounts/passwords.js';
import { normalizePassword } from '../../src/accounts/passwords.js';
import type { RateLimiter } from '../../src/limits/rate-limiter.js';
import type { OutgoingMessage } from '../../src/mail/transport.js';

/**
 * A hasher with argon2's interface and none of its cost, so abuse tests can make hundreds of
 * attempts. It still normalises like the real one: the behaviour under test stays the same.
 */
export function fakeHasher(): PasswordHasher {
  const digest = (password: string): string => `fake$${createHash('sha256').update(normalizePassword(password)).digest('hex')}`;
  return {
    hash: async (password) => digest(password),
    verify: async (passwordHash, password) => passwordHash === digest(password),
  };
}

/** A limiter that never refuses: the fuzz reaches every handler instead of stopping at 429. */
export const unlimited: RateLimiter = {
  hit: async () => ({ allowed: true, retryAfterSeconds: 0 }),
  failureState: async () => ({ failures: 0, waitSeconds: 0 }),
  recordFailure: async () => 0,
  clearFailures: async () => undefined,
};

export interface LimiterCall {
  method: 'hit' | 'failureState' | 'recordFailure' | 'clearFailures';
  key: string;
  args: unknown[];
  result: unknown;
}

/** Wraps a limiter and records every call with its key and answer. */
export function spyLimiter(inner: RateLimiter): RateLimiter & { calls: LimiterCall[] } {
  const calls: LimiterCall[] = [];
  const record = async <T>(method: LimiterCall['method'], key: string, args: unknown[], run: () => Promise<T>): Promise<T> => {
    const result = await run();
    calls.push({ method, key, args, result });
    return result;
  };
  return {
    calls,
    hit: (key, limit, windowSeconds) => record('hit', key, [limit, windowSeconds], () => inner.hit(key, limit, windowSeconds)),
    failureState: (key) => record('failureState', key, [], () => inner.failureState(key)),
    recordFailure: (key) => record('recordFailure', key, [], () => inner.recordFailure(key)),
    clearFailures: (key) => record('clearFailures', key, [], () => inner.clearFailures(key)),
  };
}

/** Every URL a message holds: absolute http(s) URLs anywhere, and every href/src/action value in its HTML. */
export function linksIn(message: Pick<OutgoingMessage, 'text' | 'html' | 'subject'>): string[] {
  const all = `${message.subject}\n${message.text}\n${message.html}`;
  const absolute = all.match(/(?:https?:)?\/\/[^\s"'<>()]+/gi) ?? [];
  const attributes = [...message.html.matchAll(/\b(?:href|src|action|background|formaction)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/gi)].map(
    (m) => m[1] ?? m[2] ?? m[3] ?? '',
  );
  return [...absolute, ...attributes];
}

export { REDIS_URL, redisOrSkip, uniqueRedisPrefix, deleteRedisKeys } from '../helpers/redis.js';

/**
 * Blocks the event loop until the load-shedding monitor reports pressure, then sends one request
 * while it does; returns the first answer that was shed (503), or undefined after ten tries.
 * Asking at once matters: the monitor's next sample clears the pressure again.
 */
export async function requestWhileOverloaded(app: FastifyInstance, send: () => Promise<LightMyRequestResponse>): Promise<LightMyRequestResponse | undefined> {
  const underPressure = (): boolean => (app as unknown as { isUnderPressure(): boolean }).isUnderPressure();
  for (let attempt = 0; attempt < 10; attempt++) {
    const until = Date.now() + 250;
    while (Date.now() < until) {
      // Busy: the event loop is blocked, as under a burst of synchronous work.
    }
    const deadline = Date.now() + 400;
    while (!underPressure() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    if (!underPressure()) continue;
    const res = await send();
    if (res.statusCode === 503) return res;
  }
  return undefined;
}
