import { randomBytes, randomUUID } from 'node:crypto';

/** Randomness is a dependency so tests can fix tokens and ids. */
export interface Random {
  bytes(length: number): Buffer;
  uuid(): string;
}

export const cryptoRandom: Random = {
  bytes: (length) => randomBytes(length),
  uuid: () => randomUUID(),
};

/**
 * A UUIDv7 (RFC 9562): the millisecond time first, then 74 random bits. Rows keyed by it are
 * inserted at the end of their primary-key index, not at random places in it: a commit of many
 * new rows dirties a few pages rather than one per row.
 */
export function uuidV7(random: Random, nowMs: number): string {
  // A v4 UUID has its version digit and variant bits where v7 has them: its random part is kept,
  // and its first 48 bits become the time. (randomUUID draws from a cached pool: far cheaper than
  // random bytes on every call.)
  const time = nowMs.toString(16).padStart(12, '0');
  return `${time.slice(0, 8)}-${time.slice(8, 12)}-7${random.uuid().slice(15)}`;
}

/** Deterministic bytes for tests: a counter run through a simple mix. Never for production. */
export function seededRandom(seed = 1): Random {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return {
    bytes(length) {
      const out = Buffer.alloc(length);
      for (let i = 0; i < length; i++) out[i] = next() & 0xff;
      return out;
    },
    uuid() {
      const b = this.bytes(16);
      b[6] = (b[6]! & 0x0f) | 0x40;
      b[8] = (b[8]! & 0x3f) | 0x80;
      const h = b.toString('hex');
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    },
  };
}
