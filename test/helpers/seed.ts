// Test randomness is fixed so a failure replays: TEST_SEED=n (default 1) moves every seed to try other values.
export const TEST_SEED = seedFromEnvironment(process.env.TEST_SEED);
let drawn = 0;

/** A new seed on each call in this test file, counted up from TEST_SEED (default 1): two apps on one database draw different ids. */
export function nextTestSeed(): number {
  return (TEST_SEED + drawn++) >>> 0;
}

function seedFromEnvironment(value: string | undefined): number {
  if (value === undefined || value === '') return 1;
  const seed = Number(value);
  if (!Number.isSafeInteger(seed)) throw new Error(`TEST_SEED must be a whole number, not ${JSON.stringify(value)}`);
  return seed;
}
