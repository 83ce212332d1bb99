// Raw password-hash rates in this process, with nothing else running: the ceiling for sign-in.
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import { hashPassword as scryptHash, verifyPassword as scryptVerify } from '@better-auth/utils/password';

// Gatehouse's parameters (src/accounts/passwords.ts; DESIGN §3).
export const ARGON2ID = { algorithm: 2, memoryCost: 19_456, timeCost: 2, parallelism: 1 };

/** Calls verify() (or hash()) back to back from `concurrency` loops for `seconds`; returns calls/s. */
async function rate(verify, concurrency, seconds) {
  const endAt = performance.now() + seconds * 1000;
  const startedAt = performance.now();
  // Process-wide, so the libuv threads that hash are included.
  const cpuBefore = process.cpuUsage();
  let done = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < endAt) {
        if (!(await verify())) throw new Error('the hash did not verify');
        done++;
      }
    }),
  );
  const elapsed = (performance.now() - startedAt) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    perSecond: Math.round((done / elapsed) * 10) / 10,
    msEach: Math.round(((elapsed * 1000 * concurrency) / done) * 10) / 10,
    cpuUsEach: Math.round((cpu.user + cpu.system) / done),
    verifies: done,
  };
}

export async function argon2Rates(password, { seconds, concurrencies }) {
  const stored = await argon2Hash(password.normalize('NFKC'), ARGON2ID);
  const out = {};
  for (const c of concurrencies) out[c] = await rate(() => argon2Verify(stored, password.normalize('NFKC')), c, seconds);
  return out;
}

/** argon2id hash() (what a password reset does once) `concurrency` at a time; hashes/s. */
export async function argon2HashRate(password, { seconds, concurrency }) {
  return rate(async () => (await argon2Hash(password.normalize('NFKC'), ARGON2ID)).startsWith('$argon2id$'), concurrency, seconds);
}

/** Better Auth's default: node:crypto scrypt N=16384 r=16 p=1 (its @better-auth/utils/password). */
export async function scryptRates(password, { seconds, concurrencies }) {
  const stored = await scryptHash(password);
  const out = {};
  for (const c of concurrencies) out[c] = await rate(() => scryptVerify(stored, password), c, seconds);
  return out;
}
