import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { createMemoryRateLimiter, failureDelaySeconds, MAX_FAILURE_DELAY_SECONDS, type RateLimiter } from '../../src/limits/rate-limiter.js';
import { createRedisRateLimiter, type RedisRateLimiter } from '../../src/limits/redis-rate-limiter.js';
import { createLogger } from '../../src/logger.js';
import { REDIS_URL, redisOrSkip } from '../helpers/redis.js';

// One contract, two adapters: the single-instance counters and the Redis ones shared by every instance.

const haveRedis = await redisOrSkip('Redis limiter tests');

const opened: RedisRateLimiter[] = [];
afterAll(async () => {
  for (const l of opened) await l.close();
});

type Make = (clock: FakeClock) => RateLimiter;
const adapters: [string, Make, boolean][] = [
  ['memory', (clock) => createMemoryRateLimiter(clock), true],
  [
    'redis',
    (clock) => {
      const l = createRedisRateLimiter(REDIS_URL, { clock, logger: createLogger('silent'), prefix: `gh-test-${randomBytes(6).toString('hex')}:` });
      opened.push(l);
      return l;
    },
    haveRedis,
  ],
];

describe('failureDelaySeconds', () => {
  it('is free for the first five failures, then doubles from one second up to fifteen minutes', () => {
    expect([0, 4, 5, 6, 7, 14, 15, 40].map(failureDelaySeconds)).toEqual([0, 0, 1, 2, 4, 512, MAX_FAILURE_DELAY_SECONDS, MAX_FAILURE_DELAY_SECONDS]);
  });
});

for (const [name, make, enabled] of adapters) {
  describe.runIf(enabled)(`${name} limiter contract`, () => {
    it('allows exactly the limit in a window, then refuses with a Retry-After', async () => {
      const limiter = make(new FakeClock());
      for (let i = 0; i < 3; i++) expect((await limiter.hit('k', 3, 60)).allowed).toBe(true);
      const refused = await limiter.hit('k', 3, 60);
      expect(refused.allowed).toBe(false);
      expect(refused.retryAfterSeconds).toBeGreaterThan(0);
      expect(refused.retryAfterSeconds).toBeLessThanOrEqual(60);
      expect((await limiter.hit('other', 3, 60)).allowed).toBe(true);
      expect((await limiter.hit('k', 0, 60)).allowed).toBe(true);
    });

    it('makes a key wait longer after each failure past the fifth, and forgets on success', async () => {
      const clock = new FakeClock();
      const limiter = make(clock);
      for (let i = 0; i < 5; i++) await limiter.recordFailure('login:bob');
      expect((await limiter.failureState('login:bob')).waitSeconds).toBe(1);
      clock.advanceSeconds(1);
      expect((await limiter.failureState('login:bob')).waitSeconds).toBe(0);
      await limiter.recordFailure('login:bob');
      expect((await limiter.failureState('login:bob')).waitSeconds).toBe(2);
      await limiter.recordFailure('login:bob');
      expect((await limiter.failureState('login:bob')).waitSeconds).toBe(4);
      expect((await limiter.failureState('login:alice')).waitSeconds).toBe(0);
      expect((await limiter.failureState('login:bob')).failures).toBe(7);
      await limiter.clearFailures('login:bob');
      expect((await limiter.failureState('login:bob')).waitSeconds).toBe(0);
    });
  });
}

describe.runIf(haveRedis)('redis limiter', () => {
  it('shares its counters between instances', async () => {
    const prefix = `gh-test-${randomBytes(6).toString('hex')}:`;
    const clock = new FakeClock();
    const a = createRedisRateLimiter(REDIS_URL, { clock, logger: createLogger('silent'), prefix });
    const b = createRedisRateLimiter(REDIS_URL, { clock, logger: createLogger('silent'), prefix });
    opened.push(a, b);
    expect((await a.hit('shared', 2, 60)).allowed).toBe(true);
    expect((await b.hit('shared', 2, 60)).allowed).toBe(true);
    expect((await a.hit('shared', 2, 60)).allowed).toBe(false);
  });

  it('does not enforce a limit, and does not fail the request, when Redis cannot be reached', async () => {
    const lost = createRedisRateLimiter('redis://127.0.0.1:1', { clock: new FakeClock(), logger: createLogger('silent') });
    opened.push(lost);
    expect(await lost.hit('k', 1, 60)).toEqual({ allowed: true, retryAfterSeconds: 0 });
    expect(await lost.failureState('k')).toEqual({ failures: 0, waitSeconds: 0 });
    await expect(lost.recordFailure('k')).resolves.toBe(0);
  });
});
