import { describe, expect, it } from 'vitest';
import { createArgon2Hasher, normalizePassword } from '../../src/accounts/passwords.js';
import { DomainError } from '../../src/errors.js';

const hasher = createArgon2Hasher();

describe('argon2id password hashing', () => {
  it('hashes with argon2id at m=19456 KiB, t=2, p=1 and a fresh salt each time', async () => {
    const a = await hasher.hash('correct horse battery staple');
    const b = await hasher.hash('correct horse battery staple');
    expect(a.startsWith('$argon2id$v=19$m=19456,t=2,p=1$')).toBe(true);
    expect(a).not.toBe(b);
    expect(a).not.toContain('correct horse');
  });

  it('verifies the right password and refuses a wrong one', async () => {
    const hash = await hasher.hash('correct horse battery staple');
    expect(await hasher.verify(hash, 'correct horse battery staple')).toBe(true);
    expect(await hasher.verify(hash, 'correct horse battery stapler')).toBe(false);
    expect(await hasher.verify(hash, 'Correct horse battery staple')).toBe(false);
    expect(await hasher.verify(hash, '')).toBe(false);
  });

  it('verifies NFKC-equivalent spellings of the same password', async () => {
    const hash = await hasher.hash('ｃｏｒｒｅｃｔ ｈｏｒｓｅ ｂａｔｔｅｒｙ');
    expect(await hasher.verify(hash, 'correct horse battery')).toBe(true);
    // Decomposed "e" + U+0301 against precomposed "é", and the "ﬁ" ligature against "fi".
    const accented = await hasher.hash('caf\u00e9 \uFB01lter coffee beans');
    expect(await hasher.verify(accented, 'cafe\u0301 filter coffee beans')).toBe(true);
    expect(normalizePassword('cafe\u0301')).toBe('caf\u00e9');
  });

  it('never truncates: 128 emoji passwords that differ only in the last character do not match', async () => {
    const stem = '\u{1F511}'.repeat(127);
    const hash = await hasher.hash(`${stem}a`);
    expect(Buffer.byteLength(`${stem}a`)).toBeGreaterThan(500);
    expect(await hasher.verify(hash, `${stem}a`)).toBe(true);
    expect(await hasher.verify(hash, `${stem}b`)).toBe(false);
    expect(await hasher.verify(hash, stem)).toBe(false);
  });

  it.each([
    ['garbage', 'not a hash'],
    ['the empty string', ''],
    ['a bcrypt hash', '$2b$10$abcdefghijklmnopqrstuuJ2QkqYZZr5p5kP6cG7sD1lWv6rSx0u6'],
    ['a truncated argon2id hash', '$argon2id$v=19$m=19456,t=2,p=1$AAAA'],
    ['a malformed argon2id hash', '$argon2id$v=19$m=19456,t=2,p=1$!!!!$????'],
  ])('answers false, without throwing, for %s as the stored hash', async (_what, stored) => {
    await expect(hasher.verify(stored, 'correct horse battery staple')).resolves.toBe(false);
  });
});

describe('the bounded hash queue', () => {
  it('runs at most `concurrency` hashes at once and refuses with 503 overloaded past maxQueued waiting', async () => {
    const bounded = createArgon2Hasher({ concurrency: 1, maxQueued: 2 });
    const stored = await bounded.hash('correct horse battery staple');
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => bounded.verify(stored, 'correct horse battery staple')));
    // One running, two waiting; the other three are refused at once instead of queueing.
    expect(results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<boolean>).value)).toEqual([true, true, true]);
    const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
    expect(refused).toHaveLength(3);
    for (const err of refused) expect(err).toBeInstanceOf(DomainError);
    for (const err of refused) expect(err).toMatchObject({ code: 'overloaded', retryAfterSeconds: 1 });
    // Once the queue drained, it takes work again.
    await expect(bounded.verify(stored, 'correct horse battery staple')).resolves.toBe(true);
  });
});
