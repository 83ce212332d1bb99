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

export function createArgon2Hasher(): PasswordHasher {
  return {
    hash: (password) => hash(normalizePassword(password), ARGON2ID),
    async verify(passwordHash, password) {
      try {
        return await verify(passwordHash, normalizePassword(password));
      } catch {
        return false;
      }
    },
  };
}

/**
 * Verifies against a real hash of a random password when there is no account, so unknown,
 * disabled and password-less accounts take as long as a wrong password.
 */
export async function makeDummyHash(hasher: PasswordHasher, randomPassword: string): Promise<string> {
  return hasher.hash(randomPassword);
}
