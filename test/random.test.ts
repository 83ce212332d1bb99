import { expect, it } from 'vitest';
import { cryptoRandom, seededRandom, uuidV7 } from '../src/random.js';

it('makes UUIDv7s: version 7, RFC 9562 variant, the millisecond time first, so later ids sort after earlier ones', () => {
  const at = Date.parse('2026-12-03T10:00:00Z');
  const ids = [0, 1, 2, 1000, 86_400_000].map((dt) => uuidV7(cryptoRandom, at + dt));
  for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  expect([...ids].sort()).toEqual(ids);
  expect(parseInt(ids[0]!.replace(/-/g, '').slice(0, 12), 16)).toBe(at);
  // Two ids of one millisecond differ in their random bits.
  expect(uuidV7(cryptoRandom, at)).not.toBe(uuidV7(cryptoRandom, at));
  // Deterministic with the tests' random source.
  expect(uuidV7(seededRandom(3), at)).toBe(uuidV7(seededRandom(3), at));
});
