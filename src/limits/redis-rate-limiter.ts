import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { FAILURE_MEMORY_SECONDS, waitSecondsAfter, type RateLimiter } from './rate-limiter.js';

// One round trip each, atomic on the server, so every instance sees the same counts.
const HIT = `
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {count, redis.call('PTTL', KEYS[1])}`;

const FAIL = `
local now = tonumber(ARGV[1])
local memory = tonumber(ARGV[2])
local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '0')
local count = tonumber(redis.call('HGET', KEYS[1], 'count') or '0')
if now - last > memory then count = 0 end
count = count + 1
redis.call('HSET', KEYS[1], 'count', count, 'last', now)
redis.call('PEXPIRE', KEYS[1], memory)
return count`;

export interface RedisRateLimiter extends RateLimiter {
  close(): Promise<void>;
}

/**
 * Counters shared by every instance (REDIS_URL). When Redis cannot answer, a limit is not
 * enforced rather than the request failing: the error is logged, and sign-in still costs a hash.
 */
export function createRedisRateLimiter(url: string, deps: { clock: Clock; logger: Logger; prefix?: string }): RedisRateLimiter {
  const prefix = deps.prefix ?? 'gatehouse:';
  // Commands wait for the connection at start-up, but never longer than commandTimeout.
  const redis = new Redis(url, { commandTimeout: 500, maxRetriesPerRequest: 1, autoResendUnfulfilledCommands: false });
  // Once connected, a command while Redis is unreachable fails at once (the limit is not
  // enforced) instead of waiting in the offline queue, from which ioredis would send it when
  // Redis returns: a hit already let through would count in the next window, a stale DEL would
  // wipe failures counted since.
  redis.once('ready', () => {
    redis.options.enableOfflineQueue = false;
  });
  redis.on('error', (err: Error) => deps.logger.warn({ err: { message: err.message } }, 'redis unavailable'));

  const failOpen = <T>(what: string, fallback: T) => (err: unknown): T => {
    deps.logger.error({ err: { message: (err as Error).message } }, `rate limiter: ${what} failed; not enforced`);
    return fallback;
  };

  return {
    async hit(key, limit, windowSeconds) {
      if (limit <= 0) return { allowed: true, retryAfterSeconds: 0 };
      try {
        const [count, pttl] = (await redis.eval(HIT, 1, `${prefix}rl:${key}`, windowSeconds * 1000)) as [number, number];
        if (count <= limit) return { allowed: true, retryAfterSeconds: 0 };
        return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(pttl / 1000)) };
      } catch (err) {
        return failOpen('hit', { allowed: true, retryAfterSeconds: 0 })(err);
      }
    },
    async failureState(key) {
      try {
        const [count, last] = await redis.hmget(`${prefix}fail:${key}`, 'count', 'last');
        const nowMs = deps.clock.now().getTime();
        if (count === null || last === null || nowMs - Number(last) > FAILURE_MEMORY_SECONDS * 1000) return { failures: 0, waitSeconds: 0 };
        return { failures: Number(count), waitSeconds: waitSecondsAfter(Number(count), Number(last), nowMs) };
      } catch (err) {
        return failOpen('failureState', { failures: 0, waitSeconds: 0 })(err);
      }
    },
    async recordFailure(key) {
      const count = await redis.eval(FAIL, 1, `${prefix}fail:${key}`, deps.clock.now().getTime(), FAILURE_MEMORY_SECONDS * 1000).catch(failOpen('recordFailure', 0));
      return Number(count);
    },
    async clearFailures(key) {
      await redis.del(`${prefix}fail:${key}`).catch(failOpen('clearFailures', undefined));
    },
    async close() {
      redis.disconnect();
    },
  };
}
