import type { Clock } from '../clock.js';

export interface RateLimitResult {
  allowed: boolean;
  /** seconds until the window that refused this hit ends; 0 when allowed */
  retryAfterSeconds: number;
}

/**
 * The port. Keys are built from what a client sent (an IP, a normalised address or login), never
 * from whether an account exists, so known and unknown accounts are counted alike.
 */
export interface RateLimiter {
  /** Counts a hit against key in a fixed window. A limit of 0 means no limit. */
  hit(key: string, limit: number, windowSeconds: number): Promise<RateLimitResult>;
  /** The key's run of consecutive failures and the seconds it must still wait (0: it may try now). */
  failureState(key: string): Promise<FailureState>;
  /**
   * Records a failure and returns the run's length: past FREE_FAILURES each one doubles the wait,
   * up to MAX_FAILURE_DELAY_SECONDS. 0 when the store could not count it.
   */
  recordFailure(key: string): Promise<number>;
  clearFailures(key: string): Promise<void>;
}

export interface FailureState {
  failures: number;
  waitSeconds: number;
}

/** Failures allowed in a row before any wait. */
export const FREE_FAILURES = 5;
export const MAX_FAILURE_DELAY_SECONDS = 15 * 60;
/** A run of failures is forgotten after a day without one. */
export const FAILURE_MEMORY_SECONDS = 24 * 3600;

/** The wait after `failures` consecutive failures: 0 up to FREE_FAILURES, then 1 s, 2 s, 4 s … 15 min. */
export function failureDelaySeconds(failures: number): number {
  if (failures < FREE_FAILURES) return 0;
  return Math.min(MAX_FAILURE_DELAY_SECONDS, 2 ** (failures - FREE_FAILURES));
}

/** Whole seconds from nowMs until the wait that `failures` failures, the last at lastAtMs, impose ends. */
export function waitSecondsAfter(failures: number, lastAtMs: number, nowMs: number): number {
  const waitUntilMs = lastAtMs + failureDelaySeconds(failures) * 1000;
  return waitUntilMs > nowMs ? Math.ceil((waitUntilMs - nowMs) / 1000) : 0;
}

/** A single instance's counters. With REDIS_URL every instance shares them (redis-rate-limiter.ts). */
export function createMemoryRateLimiter(clock: Clock): RateLimiter {
  const windows = new Map<string, { count: number; resetsAtMs: number }>();
  const failures = new Map<string, { count: number; lastAtMs: number }>();
  let lastSweepMs = 0;

  const sweep = (nowMs: number): void => {
    if (nowMs - lastSweepMs < 60_000) return;
    // Expired entries are dropped so memory stays bounded by the keys seen recently.
    for (const [k, w] of windows) if (w.resetsAtMs <= nowMs) windows.delete(k);
    for (const [k, f] of failures) if (nowMs - f.lastAtMs > FAILURE_MEMORY_SECONDS * 1000) failures.delete(k);
    lastSweepMs = nowMs;
  };

  return {
    async hit(key, limit, windowSeconds) {
      if (limit <= 0) return { allowed: true, retryAfterSeconds: 0 };
      const nowMs = clock.now().getTime();
      sweep(nowMs);
      let w = windows.get(key);
      if (w === undefined || w.resetsAtMs <= nowMs) {
        w = { count: 0, resetsAtMs: nowMs + windowSeconds * 1000 };
        windows.set(key, w);
      }
      w.count += 1;
      if (w.count <= limit) return { allowed: true, retryAfterSeconds: 0 };
      return { allowed: false, retryAfterSeconds: Math.ceil((w.resetsAtMs - nowMs) / 1000) };
    },
    async failureState(key) {
      const f = failures.get(key);
      const nowMs = clock.now().getTime();
      if (f === undefined || nowMs - f.lastAtMs > FAILURE_MEMORY_SECONDS * 1000) return { failures: 0, waitSeconds: 0 };
      return { failures: f.count, waitSeconds: waitSecondsAfter(f.count, f.lastAtMs, nowMs) };
    },
    async recordFailure(key) {
      const nowMs = clock.now().getTime();
      sweep(nowMs);
      const f = failures.get(key);
      const fresh = f === undefined || nowMs - f.lastAtMs > FAILURE_MEMORY_SECONDS * 1000;
      const count = fresh ? 1 : f.count + 1;
      failures.set(key, { count, lastAtMs: nowMs });
      return count;
    },
    async clearFailures(key) {
      failures.delete(key);
    },
  };
}
