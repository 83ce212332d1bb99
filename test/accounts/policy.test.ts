import { dictionary } from '@zxcvbn-ts/language-common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_PASSWORD_LENGTH, checkPassword, type PasswordContext, type PolicyReason } from '../../src/accounts/policy.js';

const codes = (reasons: PolicyReason[]): string[] => reasons.map((r) => r.code);
const COMMON = new Set((dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));

// Five non-consecutive single-code-point emoji: two UTF-16 units each, one code point each.
const EMOJI = ['\u{1F9A6}', '\u{1F30A}', '\u{1F41F}', '\u{1F3D4}', '\u{1F332}'];
/** n code points of varied text that hits no rule but length. */
function varied(n: number): string {
  const text = 'Rivers bend slowly past the old mill where seven herons wait; ';
  let out = '';
  while ([...out].length < n) out += text;
  return [...out].slice(0, n).join('');
}

describe('length', () => {
  it('refuses 14 code points and accepts 15 by default', () => {
    expect(codes(checkPassword(varied(14), 15))).toEqual(['too_short']);
    expect(checkPassword(varied(15), 15)).toEqual([]);
  });

  it('counts an astral character or emoji as one, not as its two UTF-16 units', () => {
    const fourteen = varied(11) + EMOJI[0]! + EMOJI[1]! + EMOJI[2]!;
    expect(fourteen.length).toBe(17);
    expect(codes(checkPassword(fourteen, 15))).toEqual(['too_short']);
    expect(checkPassword(varied(12) + EMOJI[0]! + EMOJI[1]! + EMOJI[2]!, 15)).toEqual([]);
    const emojiOnly = Array.from({ length: 15 }, (_, i) => EMOJI[i % 5]).join('');
    expect(checkPassword(emojiOnly, 15)).toEqual([]);
    expect(codes(checkPassword(emojiOnly.slice(0, 28), 15))).toEqual(['too_short']);
  });

  it('counts code points after NFKC: a ligature can reach the minimum, a combining mark can fall short of it', () => {
    // U+FB01 "ﬁ" becomes "fi": 14 code points typed, 15 counted.
    const ligature = varied(13) + '\uFB01';
    expect([...ligature]).toHaveLength(14);
    expect(checkPassword(ligature, 15)).toEqual([]);
    // "e" + U+0301 composes to "é": 15 code points typed, 14 counted.
    const combining = varied(13) + 'e\u0301';
    expect([...combining]).toHaveLength(15);
    expect(codes(checkPassword(combining, 15))).toEqual(['too_short']);
  });

  it('accepts 128 code points and refuses 129', () => {
    expect(MAX_PASSWORD_LENGTH).toBe(128);
    expect(checkPassword(varied(128), 15)).toEqual([]);
    expect(codes(checkPassword(varied(129), 15))).toEqual(['too_long']);
  });

  it('accepts 128 emoji (256 UTF-16 units) and refuses 129', () => {
    const emoji = (n: number): string => Array.from({ length: n }, (_, i) => EMOJI[i % 5]).join('');
    expect(checkPassword(emoji(128), 15)).toEqual([]);
    expect(codes(checkPassword(emoji(129), 15))).toEqual(['too_long']);
  });

  it('follows the configured minimum: 7 refused and 8 accepted at PASSWORD_MIN_LENGTH 8', () => {
    expect(codes(checkPassword('Rk4#mZp', 8))).toEqual(['too_short']);
    expect(checkPassword('Rk4#mZp2', 8)).toEqual([]);
  });

  it('refuses the empty password as too short and nothing else', () => {
    expect(codes(checkPassword('', 15))).toEqual(['too_short']);
  });
});

describe('common passwords', () => {
  it.each(['password1234', 'baseball', 'sunshine', 'trustno1', 'iloveyou'])('refuses "%s" from the shipped list at PASSWORD_MIN_LENGTH 8', (password) => {
    expect(COMMON.has(password)).toBe(true);
    expect(codes(checkPassword(password, 8))).toEqual(['common']);
  });

  it.each(['1qaz2wsx3edc4rfv', 'qazwsxedcrfvtgb', 'qwertyuiop12345', 'zxcvbnm123456789'])('refuses "%s", a listed password of 15 or more characters', (password) => {
    expect(COMMON.has(password)).toBe(true);
    expect(codes(checkPassword(password, 15))).toEqual(['common']);
  });

  it('matches the list regardless of case and NFKC width', () => {
    expect(codes(checkPassword('BaseBall', 8))).toEqual(['common']);
    expect(codes(checkPassword('ｂａｓｅｂａｌｌ', 8))).toEqual(['common']);
  });

  it('checks by exact match: a listed word inside a longer password is fine', () => {
    expect(COMMON.has('sunshine over the harbour')).toBe(false);
    expect(checkPassword('sunshine over the harbour', 15)).toEqual([]);
  });
});

describe('repetition and sequences', () => {
  it.each(['aaaaaaaaaaaaaaa', 'abcabcabcabcabc', 'abababababababab', 'xyz!xyz!xyz!xyz!'])('refuses the repetition "%s"', (password) => {
    expect(codes(checkPassword(password, 15))).toEqual(['repetitive']);
  });

  it('refuses a repetition that differs only in case, as it refuses a sequence that does', () => {
    expect(codes(checkPassword('AbcdEFGhijKLMnop', 15))).toEqual(['sequence']);
    expect(codes(checkPassword('aAAaaAaaaAAAaAaA', 15))).toEqual(['repetitive']);
    expect(codes(checkPassword('PassPASSpassPaSs', 15))).toEqual(['repetitive']);
  });

  it.each(['abcdefghijklmnop', '1234567890123456', '987654321098765', 'ZYXWVUTSRQPONMLK'])('refuses the sequence "%s"', (password) => {
    expect(codes(checkPassword(password, 15))).toEqual(['sequence']);
  });

  it('applies NFKC before looking for sequences: fullwidth digits are digits', () => {
    expect(codes(checkPassword('１２３４５６７８９０１２３４５６', 15))).toEqual(['sequence']);
  });

  it('does not mistake an almost-sequence or a long repeated phrase for one', () => {
    expect(checkPassword('abcdefghijklmnoq', 15)).toEqual([]);
    expect(checkPassword('1234567890123457', 15)).toEqual([]);
  });
});

describe('context', () => {
  const ctx: PasswordContext = { email: 'Jane.Doe@Example.com', username: 'bobsmith' };

  it('refuses a password built from the product name, in any case or width', () => {
    for (const password of ['my gatehouse password', 'GateHouse for ever and ever', 'ＧＡＴＥＨＯＵＳＥ rules forever']) {
      expect(codes(checkPassword(password, 15)), password).toEqual(['contains_context']);
    }
  });

  it("refuses a password containing the user's email, its local part or the username", () => {
    for (const password of ['jane.doe@example.com is me', 'JANE.DOE and the river song', 'BobSmith and the river song']) {
      expect(codes(checkPassword(password, 15, ctx)), password).toEqual(['contains_context']);
    }
  });

  it('ignores local parts and usernames shorter than four characters', () => {
    expect(checkPassword('bob likes long river walks', 15, { email: 'bob@example.com', username: 'bob' })).toEqual([]);
    expect(codes(checkPassword('write to bob@example.com today', 15, { email: 'bob@example.com' }))).toEqual(['contains_context']);
  });
});

describe('accepted passwords and the shape of reasons', () => {
  it.each([
    'correct horse battery staple',
    'purple monkey dishwasher lantern',
    'Tänzerin über den Wolken 7',
    '\u{1F409} dragons guard the \u{1F3F0} at dawn',
    'パスワードは長くて覚えやすいもの',
  ])('accepts the passphrase "%s"', (password) => {
    expect(checkPassword(password, 15, { email: 'jane.doe@example.com', username: 'jane' })).toEqual([]);
  });

  it('gives every reason a code and a human message, and names the minimum', () => {
    const reasons = checkPassword('gatehouse', 15);
    expect(reasons).toEqual([
      { code: 'too_short', message: expect.stringContaining('15') },
      { code: 'contains_context', message: expect.any(String) },
    ]);
    for (const r of [...reasons, ...checkPassword('aaaaaaaaaaaaaaaaaaaa', 15), ...checkPassword('1qaz2wsx3edc4rfv', 15)]) {
      expect(r.message.length).toBeGreaterThan(10);
    }
  });
});

// An alphabet whose characters are NFKC-stable and never compose with each other, so the
// code-point count a test generates is the count the policy sees.
const ALPHABET: string[] = [
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !#%&*+-./=?_~',
  ...Array.from({ length: 25 }, (_, i) => String.fromCodePoint(0x03b1 + i)),
  ...Array.from({ length: 2000 }, (_, i) => String.fromCodePoint(0x4e00 + i * 10)),
  ...Array.from({ length: 80 }, (_, i) => String.fromCodePoint(0x1f600 + i)),
];
const char = fc.integer({ min: 0, max: ALPHABET.length - 1 }).map((i) => ALPHABET[i]!);
const passwordOf = (min: number, max: number): fc.Arbitrary<string> => fc.array(char, { minLength: min, maxLength: max }).map((cs) => cs.join(''));

const isPeriodic = (cps: string[]): boolean => [1, 2, 3, 4].some((p) => p * 2 <= cps.length && cps.every((c, i) => i < p || c === cps[i - p]));

// An independent statement of the rules, for the property below.
function expectedCodes(password: string): string[] {
  const cps = [...password.normalize('NFKC').toLowerCase()];
  const lower = cps.join('');
  const found: string[] = [];
  if (COMMON.has(lower)) found.push('common');
  const periodic = isPeriodic([...password.normalize('NFKC')]);
  const diffs = cps.slice(1).map((c, i) => {
    const a = cps[i]!.codePointAt(0)!;
    const b = c.codePointAt(0)!;
    const digits = a >= 48 && a <= 57 && b >= 48 && b <= 57;
    const d = digits ? (b - a + 10) % 10 : b - a;
    return digits && d === 9 ? -1 : d;
  });
  const sequence = diffs.length >= 2 && (diffs.every((d) => d === 1) || diffs.every((d) => d === -1));
  if (periodic) found.push('repetitive');
  else if (sequence) found.push('sequence');
  if (lower.includes('gatehouse')) found.push('contains_context');
  return found;
}

describe('properties', () => {
  it('accepts any 15–128 code-point string from a large alphabet unless it hits a rule', () => {
    fc.assert(
      fc.property(passwordOf(15, 128), (password) => {
        // Whether "aAaA…" is a repetition is pinned by its own test below, not here.
        const cps = [...password.normalize('NFKC')];
        fc.pre(isPeriodic(cps) === isPeriodic(cps.map((c) => c.toLowerCase())));
        expect(codes(checkPassword(password, 15))).toEqual(expectedCodes(password));
      }),
      { numRuns: 500 },
    );
  });

  it('refuses as too short exactly below the minimum and as too long exactly above 128', () => {
    fc.assert(
      fc.property(fc.integer({ min: 8, max: 128 }), fc.integer({ min: 1, max: 140 }), (min, n) => {
        const password = varied(n);
        const got = codes(checkPassword(password, min));
        expect(got.includes('too_short')).toBe(n < min);
        expect(got.includes('too_long')).toBe(n > 128);
      }),
    );
  });

  it('depends on nothing but its inputs: the same call gives the same reasons in any order, and never throws', () => {
    const call = fc.record({
      password: fc.oneof(fc.string({ unit: 'binary', maxLength: 140 }), passwordOf(0, 140), fc.constantFrom('gatehouse', 'baseball', 'aaaaaaaa')),
      min: fc.integer({ min: 8, max: 128 }),
      context: fc.record({ email: fc.option(fc.emailAddress(), { nil: undefined }), username: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }) }, { requiredKeys: [] }),
    });
    fc.assert(
      fc.property(fc.array(call, { minLength: 1, maxLength: 8 }), (calls) => {
        const forward = calls.map((c) => checkPassword(c.password, c.min, c.context));
        const backward = [...calls].reverse().map((c) => checkPassword(c.password, c.min, c.context)).reverse();
        expect(backward).toEqual(forward);
        for (const reasons of forward) {
          for (const r of reasons) {
            expect(['too_short', 'too_long', 'common', 'repetitive', 'sequence', 'contains_context']).toContain(r.code);
            expect(typeof r.message).toBe('string');
          }
        }
      }),
    );
  });
});
