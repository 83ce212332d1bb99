import type { Clock } from '../clock.js';
import { assertValidSecretName, type SecretStore } from './store.js';

export interface CachedSecretStoreOptions {
  /** 0 turns the cache off. */
  ttlSeconds: number;
  clock: Clock;
}

interface CacheEntry {
  value: string | undefined;
  expiresAtMs: number;
}

/**
 * Caches get() per name for ttlSeconds, "not found" included, so a rotated secret is picked up
 * after at most ttlSeconds without a restart, and a burst of emails costs one vault round trip.
 */
export function createCachedSecretStore(
  inner: SecretStore,
  options: CachedSecretStoreOptions,
): SecretStore {
  const { ttlSeconds, clock } = options;
  if (!Number.isFinite(ttlSeconds) || ttlSeconds < 0) {
    throw new RangeError('ttlSeconds must be a finite number >= 0');
  }
  if (ttlSeconds === 0) return inner;
  const ttlMs = ttlSeconds * 1000;

  // Keys are lower-cased: every adapter treats names case-insensitively.
  const entries = new Map<string, CacheEntry>();
  const inFlight = new Map<string, Promise<string | undefined>>();
  // Bumped by set/delete so a read that started before a write never caches the old value.
  const generations = new Map<string, number>();

  const invalidate = (key: string): void => {
    entries.delete(key);
    inFlight.delete(key);
    generations.set(key, (generations.get(key) ?? 0) + 1);
  };

  return {
    kind: inner.kind,
    async get(name) {
      assertValidSecretName(name);
      const key = name.toLowerCase();
      // Counted from when the read started: the value can be no older than that.
      const startedAtMs = clock.now().getTime();
      const cached = entries.get(key);
      if (cached && startedAtMs < cached.expiresAtMs) return cached.value;

      const pending = inFlight.get(key);
      if (pending) return pending;

      const generation = generations.get(key) ?? 0;
      const request = inner.get(name).then(
        (value) => {
          if (inFlight.get(key) === request) inFlight.delete(key);
          if ((generations.get(key) ?? 0) === generation) {
            entries.set(key, { value, expiresAtMs: startedAtMs + ttlMs });
          }
          return value;
        },
        (error: unknown) => {
          // Failures are not cached: the next call retries the backend.
          if (inFlight.get(key) === request) inFlight.delete(key);
          throw error;
        },
      );
      inFlight.set(key, request);
      return request;
    },
    async set(name, value) {
      assertValidSecretName(name);
      const key = name.toLowerCase();
      invalidate(key);
      try {
        await inner.set(name, value);
      } finally {
        invalidate(key);
      }
    },
    async delete(name) {
      assertValidSecretName(name);
      const key = name.toLowerCase();
      invalidate(key);
      try {
        await inner.delete(name);
      } finally {
        invalidate(key);
      }
    },
    list() {
      return inner.list();
    },
  };
}
