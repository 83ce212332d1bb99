import { beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../src/clock.js';
import { createMemoryRateLimiter, type RateLimiter } from '../../src/limits/rate-limiter.js';

let clock: FakeClock;
let limiter: RateLimiter;
const T0 = '2026-03-01T12:00:00.000Z';
const at = (ms: number): Date => new Date(Date.parse(T0) + ms);

beforeEach(() => {
  clock = new FakeClock(T0);
  limiter = createMemoryRateLimiter(clock);
});

describe('memory rate limiter', () => {
  it('allows exactly `limit` hits in a window and refuses the next', async () => {
    for (let i = 1; i <= 3; i++) expect(await limiter.hit('ip:1', 3, 60), `hit ${i}`).toEqual({ allowed: true, retryAfterSeconds: 0 });
    expect((await limiter.hit('ip:1', 3, 60)).allowed).toBe(false);
    expect((await limiter.hit('ip:1', 3, 60)).allowed).toBe(false);
  });

  it('tells a refused caller how many whole seconds remain in the window, rounded up', async () => {
    await limiter.hit('k', 1, 60);
    expect(await limiter.hit('k', 1, 60)).toEqual({ allowed: false, retryAfterSeconds: 60 });
    clock.set(at(10_500));
    expect(await limiter.hit('k', 1, 60)).toEqual({ allowed: false, retryAfterSeconds: 50 });
    clock.set(at(59_999));
    expect(await limiter.hit('k', 1, 60)).toEqual({ allowed: false, retryAfterSeconds: 1 });
  });

  it('still refuses 1 ms before the window ends and allows again exactly when it ends', async () => {
    await limiter.hit('k', 2, 60);
    await limiter.hit('k', 2, 60);
    clock.set(at(60_000 - 1));
    expect((await limiter.hit('k', 2, 60)).allowed).toBe(false);
    clock.set(at(60_000));
    expect(await limiter.hit('k', 2, 60)).toEqual({ allowed: true, retryAfterSeconds: 0 });
    expect((await limiter.hit('k', 2, 60)).allowed).toBe(true);
    expect((await limiter.hit('k', 2, 60)).allowed).toBe(false);
  });

  it('counts a fixed window from its first hit, not a sliding one', async () => {
    await limiter.hit('k', 2, 60);
    clock.set(at(59_000));
    await limiter.hit('k', 2, 60);
    // The window opened at 0 ends at 60 s, although the second hit was only 1 s ago.
    clock.set(at(60_000));
    expect((await limiter.hit('k', 2, 60)).allowed).toBe(true);
  });

  it('treats a limit of 0 as no limit', async () => {
    for (let i = 0; i < 1000; i++) expect((await limiter.hit('bench', 0, 60)).allowed).toBe(true);
    expect(await limiter.hit('bench', 0, 60)).toEqual({ allowed: true, retryAfterSeconds: 0 });
  });

  it('keeps keys independent', async () => {
    await limiter.hit('ip:1', 1, 60);
    expect((await limiter.hit('ip:1', 1, 60)).allowed).toBe(false);
    expect((await limiter.hit('ip:2', 1, 60)).allowed).toBe(true);
    expect((await limiter.hit('addr:jane@example.com', 1, 3600)).allowed).toBe(true);
  });

  it('keeps counting correctly across the sweep of expired windows', async () => {
    await limiter.hit('old', 1, 1);
    await limiter.hit('live', 1, 3600);
    clock.set(at(120_000));
    // This hit triggers the sweep: "old" has expired and is forgotten, "live" has not.
    expect((await limiter.hit('old', 1, 1)).allowed).toBe(true);
    expect(await limiter.hit('live', 1, 3600)).toEqual({ allowed: false, retryAfterSeconds: 3600 - 120 });
  });
});
