import fs from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
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
export const ARGON2ID = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** NFKC so the same password typed on two keyboards hashes the same; never truncated. */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/** Hashes that may wait for a core, per core: beyond this a request is refused, not queued. */
export const HASH_QUEUE_PER_CORE = 8;

/** How much lower than the request thread the hashing threads run (nice 0 → 10: about a tenth of a core's share when both want it). */
export const HASH_THREAD_NICE = 10;

export type HashJob = { id: number; kind: 'hash'; password: string } | { id: number; kind: 'verify'; hash: string; password: string };
export type HashResult = { id: number; value: string | boolean } | { id: number; error: string };

/**
 * At most one hash per core at a time: more would only share the cores, each then costing more
 * CPU, and sign-in throughput is the hash rate. The queue behind them is bounded: hashing runs
 * off the event loop, so load shedding cannot see it, and an unbounded queue lets one client's
 * flood make everyone's sign-in wait for seconds; beyond it a request is refused (503 overloaded
 * with Retry-After), not queued.
 *
 * `threads`: the hashes run on threads of their own (hash-thread.ts) at a lower priority than the
 * thread that answers requests, so a saturated sign-in never delays the other routes (/healthz,
 * forgot-password) behind the hashes; started at the first hash. Without it (or when running from
 * the TypeScript sources, where the thread's entry is not built) they run on libuv's pool.
 */
export function createArgon2Hasher(options: { concurrency?: number; maxQueued?: number; threads?: boolean } = {}): PasswordHasher {
  const concurrency = options.concurrency ?? Math.max(1, availableParallelism());
  const limit = limitConcurrency(concurrency, options.maxQueued ?? concurrency * HASH_QUEUE_PER_CORE);
  const entry = new URL('./hash-thread.js', import.meta.url);
  if (options.threads === true && fs.existsSync(fileURLToPath(entry))) {
    const pool = hashThreads(entry);
    return {
      hash: (password) => limit(async () => (await pool.run({ kind: 'hash', password: normalizePassword(password) })) as string),
      verify: (passwordHash, password) => limit(async () => (await pool.run({ kind: 'verify', hash: passwordHash, password: normalizePassword(password) })) === true),
    };
  }
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

type NewJob = { kind: 'hash'; password: string } | { kind: 'verify'; hash: string; password: string };

/**
 * Idle hashing threads, one job each at a time (the caller's limit keeps jobs ≤ threads). A thread
 * that dies fails its job and is replaced at the next one. An idle thread never holds the process open.
 */
function hashThreads(entry: URL): { run(job: NewJob): Promise<string | boolean> } {
  const idle: Worker[] = [];
  const pending = new Map<number, { resolve: (v: string | boolean) => void; reject: (e: Error) => void }>();
  const jobOf = new Map<Worker, number>();
  let nextId = 1;

  const spawn = (): Worker => {
    // A small young generation: a hashing thread allocates almost nothing on the JS heap.
    const worker = new Worker(entry, { resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    worker.on('message', (result: HashResult) => {
      const waiter = pending.get(result.id);
      pending.delete(result.id);
      jobOf.delete(worker);
      idle.push(worker);
      worker.unref();
      if ('error' in result) waiter?.reject(new Error(result.error));
      else waiter?.resolve(result.value);
    });
    worker.on('error', () => {});
    worker.on('exit', () => {
      const id = jobOf.get(worker);
      jobOf.delete(worker);
      const at = idle.indexOf(worker);
      if (at >= 0) idle.splice(at, 1);
      if (id !== undefined) {
        pending.get(id)?.reject(new Error('a hashing thread stopped'));
        pending.delete(id);
      }
    });
    return worker;
  };

  return {
    run(job) {
      const worker = idle.pop() ?? spawn();
      const id = nextId++;
      jobOf.set(worker, id);
      // Held open while it hashes (a CLI waits for the answer), let go when idle.
      worker.ref();
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        worker.postMessage({ id, ...job } satisfies HashJob);
      });
    },
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
