import { availableParallelism } from 'node:os';
import { hash, verify } from '@node-rs/argon2';
import { overloaded } from '../errors.js';

export interface PasswordHasher {
  /** Throws an `overloaded` DomainError when the queue of waiting hashes is full. */
  hash(password: string): Promise<string>;
  /** Throws an `overloaded` DomainError when the queue of waiting hashes is full; false for a malformed hash. */
  verify(passwordHash: string, password: string): Promise<boolean>;
}


// OWASP Password Storage Cheat Sheet's first argon2id configuration (DESIGN §3).
// algorithm 2 is Algorithm.Argon2id (a const enum, which isolated modules cannot import).
const ARGON2ID = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** NFKC so the same password typed on two keyboards hashes the same; never truncated. */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/** Hashes that may wait for a core, per core: beyond this a request is refused, not queued. */
export const HASH_QUEUE_PER_CORE = 8;

/**
 * At most one hash per core at a time: libuv would run four at once on two cores, each then
 * costing 40% more CPU, and sign-in throughput is the hash rate. The queue behind them is
 * bounded: hashing runs off the event loop, so load shedding cannot see it, and an unbounded
 * queue lets one client's flood make everyone's sign-in wait for seconds.
 */
export function createArgon2Hasher(options: { concurrency?: number; maxQueued?: number } = {}): PasswordHasher {
  const concurrency = options.concurrency ?? Math.max(1, availableParallelism());
  const limit = limitConcurrency(concurrency, options.maxQueued ?? concurrency * HASH_QUEUE_PER_CORE);
  return {
    hash: (password) => limit(() => hash(normalizePassword(password), ARGON2ID)),
    verify: (passwordHash, password) =>
      limit(async () => {
        try {
          return await verify(passwordHash, normalizePassword(password));
        } catch {
          return false;
        }
      }),
  };
}

function limitConcurrency(max: number, maxQueued: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    if (active < max) active++;
    else if (waiting.length >= maxQueued) throw overloaded(1);
    // A finishing task hands its slot straight to the next in line, so `active` never overshoots.
    else await new Promise<void>((resolve) => waiting.push(resolve));
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next === undefined) active--;
      else next();
    }
  };
}
