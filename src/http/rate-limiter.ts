import type { Clock } from '../clock.js';

export interface RateLimitResult {
  allowed: boolean;
  /** seconds until the window that refused this hit ends; 0 when allowed */
  retryAfterSeconds: number;
}

/** The port: count a hit against a key in a fixed window. A limit of 0 means no limit. */
export interface RateLimiter {
  hit(key: string, limit: number, windowSeconds: number): Promise<RateLimitResult>;
}

/** A single instance's counters. Redis-backed counters shared by every instance come with REDIS_URL. */
export function createMemoryRateLimiter(clock: Clock): RateLimiter {
  const windows = new Map<string, { count: number; resetsAtMs: number }>();
  let lastSweepMs = 0;
  return {
    async hit(key, limit, windowSeconds) {
      if (limit <= 0) return { allowed: true, retryAfterSeconds: 0 };
      const nowMs = clock.now().getTime();
      if (nowMs - lastSweepMs > 60_000) {
        // Expired windows are dropped so memory stays bounded by the keys seen in the last window.
        for (const [k, w] of windows) if (w.resetsAtMs <= nowMs) windows.delete(k);
        lastSweepMs = nowMs;
      }
      let w = windows.get(key);
      if (w === undefined || w.resetsAtMs <= nowMs) {
        w = { count: 0, resetsAtMs: nowMs + windowSeconds * 1000 };
        windows.set(key, w);
      }
      w.count += 1;
      if (w.count <= limit) return { allowed: true, retryAfterSeconds: 0 };
      return { allowed: false, retryAfterSeconds: Math.ceil((w.resetsAtMs - nowMs) / 1000) };
    },
  };
}
