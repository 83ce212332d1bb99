import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * Whether Redis answers at 127.0.0.1:6379. Outside CI a missing server skips the suite with one
 * loud line; with CI=true the suite must fail instead.
 */
export async function redisOrSkip(what: string): Promise<boolean> {
  const probe = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000 });
  probe.on('error', () => {});
  try {
    await probe.connect();
    await probe.ping();
    return true;
  } catch {
    if (process.env.CI === 'true') throw new Error(`${what} needs Redis on 127.0.0.1:6379 (CI=true): start redis-server`);
    console.warn(`\n!!!!!!!! SKIPPED ${what}: start redis-server on 127.0.0.1:6379 !!!!!!!!\n`);
    return false;
  } finally {
    probe.disconnect();
  }
}

/** A key prefix no other run shares. */
export function uniqueRedisPrefix(): string {
  return `gh-sec-${randomBytes(6).toString('hex')}:`;
}

/** Deletes every key under prefix (the failure counters live for a day otherwise). */
export async function deleteRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  redis.on('error', () => {});
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 500);
      if (keys.length > 0) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
