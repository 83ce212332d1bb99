import { availableParallelism } from 'node:os';
import { hash, verify } from '@node-rs/argon2';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(passwordHash: string, password: string): Promise<boolean>;
}

// OWASP Password Storage Cheat Sheet's first argon2id configuration (DESIGN §3).
// algorithm 2 is Algorithm.Argon2id (a const enum, which isolated modules cannot import).
const ARGON2ID = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

/** NFKC so the same password typed on two keyboards hashes the same; never truncated. */
export function normalizePassword(password: string): string {
  return password.normalize('NFKC');
}

/**
 * At most one hash per core at a time: libuv would run four at once on two cores, each then
 * costing 40% more CPU, and sign-in throughput is the hash rate.
 */
export function createArgon2Hasher(options: { concurrency?: number } = {}): PasswordHasher {
  const limit = limitConcurrency(options.concurrency ?? Math.max(1, availableParallelism()));
  return {
    hash: (password) => limit(() => hash(normalizePassword(password), ARGON2ID)),
    async verify(passwordHash, password) {
      try {
        return await limit(() => verify(passwordHash, normalizePassword(password)));
      } catch {
        return false;
      }
    },
  };
}

function limitConcurrency(max: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    if (active >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    active++;
    try {
      return await task();
    } finally {
      active--;
      waiting.shift()?.();
    }
  };
}

/**
 * Verifies against a real hash of a random password when there is no account, so unknown,
 * disabled and password-less accounts take as long as a wrong password.
 */
export async function makeDummyHash(hasher: PasswordHasher, randomPassword: string): Promise<string> {
  return hasher.hash(randomPassword);
}
