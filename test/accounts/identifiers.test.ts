import { describe, expect, it } from 'vitest';
import { maskEmail, normalizeEmail, normalizeUsername, parseEmail, parseUsername } from '../../src/accounts/identifiers.js';

/** A domain of exactly `length` characters, in labels of at most 63, ending in ".com". */
function domainOfLength(length: number): string {
  const labels: string[] = [];
  let left = length - '.com'.length;
  while (left > 0) {
    const take = Math.min(63, left - (left > 63 ? 2 : 0));
    labels.push('d'.repeat(take));
    left -= take + 1;
  }
  const domain = `${labels.join('.')}.com`;
  if (domain.length !== length) throw new Error(`domainOfLength(${length}) made ${domain.length}`);
  return domain;
}

describe('parseEmail', () => {
  it.each([
    'jane@example.com',
    'Jane.Doe+recovery@Example.COM',
    'o\'brien@mail.example.co.uk',
    'a@x.io',
    'user_name-1@sub-domain.example.org',
    'jöhn@exämple.de',
  ])('accepts the plain address %s as it is', (address) => {
    expect(parseEmail(address)).toBe(address);
  });

  it('trims surrounding whitespace and returns the trimmed address', () => {
    expect(parseEmail('  jane@example.com  ')).toBe('jane@example.com');
    // A trailing line break is trimmed away, never carried into a mail header.
    expect(parseEmail('jane@example.com\r\n')).toBe('jane@example.com');
  });

  it.each([
    ['a display name', 'Bob <b@x.com>'],
    ['an angle-bracketed address', '<b@x.com>'],
    ['a comma list', 'a@x.com,b@x.com'],
    ['a semicolon list', 'a@x.com;b@x.com'],
    ['a list with a space', 'a@x.com b@x.com'],
    ['a CR/LF header injection', 'a@x.com\r\nBcc: evil@y.com'],
    ['a LF inside the local part', 'a\nb@x.com'],
    ['a CR inside the domain', 'a@x\r.com'],
    ['a NUL in the local part', 'a\u0000b@x.com'],
    ['a NUL in the domain', 'a@x.com\u0000'],
    ['a space in the local part', 'john smith@x.com'],
    ['a tab in the local part', 'john\tsmith@x.com'],
    ['two @', 'a@b@x.com'],
    ['no @', 'jane.example.com'],
    ['nothing before @', '@x.com'],
    ['nothing after @', 'jane@'],
    ['no dot in the domain', 'jane@localhost'],
    ['an empty domain label', 'jane@x..com'],
    ['a trailing dot', 'jane@x.com.'],
    ['a label starting with a hyphen', 'jane@-x.com'],
    ['a quoted local part', '"jane doe"@x.com'],
    ['a comment', 'jane(work)@x.com'],
    ['an address literal', 'jane@[127.0.0.1]'],
    ['a leading dot in the local part', '.jane@x.com'],
    ['two dots in the local part', 'ja..ne@x.com'],
    ['the empty string', ''],
    ['only spaces', '   '],
  ])('refuses %s', (_what, input) => {
    expect(parseEmail(input)).toBeNull();
  });

  it('accepts a 64-character local part and refuses 65', () => {
    expect(parseEmail(`${'a'.repeat(64)}@example.com`)).not.toBeNull();
    expect(parseEmail(`${'a'.repeat(65)}@example.com`)).toBeNull();
  });

  it('accepts a 254-character address and refuses 255', () => {
    const at254 = `${'a'.repeat(64)}@${domainOfLength(254 - 65)}`;
    const at255 = `${'a'.repeat(64)}@${domainOfLength(255 - 65)}`;
    expect(at254).toHaveLength(254);
    expect(at255).toHaveLength(255);
    expect(parseEmail(at254)).toBe(at254);
    expect(parseEmail(at255)).toBeNull();
  });

  it('accepts a 63-character domain label and refuses 64', () => {
    expect(parseEmail(`a@${'d'.repeat(63)}.com`)).not.toBeNull();
    expect(parseEmail(`a@${'d'.repeat(64)}.com`)).toBeNull();
  });
});

describe('normalizeEmail', () => {
  it('lower-cases and trims', () => {
    expect(normalizeEmail('  Jane.Doe@Example.COM ')).toBe('jane.doe@example.com');
  });

  it('applies NFKC, so fullwidth and composed forms meet the plain spelling', () => {
    expect(normalizeEmail('ＪＡＮＥ@ｅｘａｍｐｌｅ.ｃｏｍ')).toBe('jane@example.com');
    expect(normalizeEmail('jo\u0308hn@example.com')).toBe(normalizeEmail('jöhn@example.com'));
    expect(normalizeEmail('\uFB01nn@example.com')).toBe('finn@example.com');
  });
});

describe('maskEmail', () => {
  it('keeps two characters of the local part and the domain', () => {
    expect(maskEmail('jane.doe@example.com')).toBe('ja***@example.com');
    expect(maskEmail('abc@example.com')).toBe('ab***@example.com');
  });

  it('never shows a whole local part of two or more characters', () => {
    expect(maskEmail('ab@example.com')).toBe('a***@example.com');
  });

  it('masks a string without @ entirely', () => {
    expect(maskEmail('not-an-address')).toBe('***');
  });
});

describe('parseUsername', () => {
  it.each(['admin', 'a', 'Jane.Doe', 'ops_team-2', '0day', 'x'.repeat(64)])('accepts %s', (name) => {
    expect(parseUsername(name)).toBe(name);
  });

  it('trims surrounding whitespace', () => {
    expect(parseUsername('  bob ')).toBe('bob');
  });

  it.each([
    ['an "@", so a login is never ambiguous', 'bob@example'],
    ['65 characters', 'x'.repeat(65)],
    ['a leading dot', '.bob'],
    ['a leading hyphen', '-bob'],
    ['a leading underscore', '_bob'],
    ['an inner space', 'bob smith'],
    ['a line break before more text', 'bob\nsmith'],
    ['non-ASCII letters', 'jöhn'],
    ['fullwidth letters', 'ｂｏｂ'],
    ['the empty string', ''],
  ])('refuses %s', (_what, name) => {
    expect(parseUsername(name)).toBeNull();
  });

  it('normalizes usernames case-insensitively', () => {
    expect(normalizeUsername(' Jane.Doe ')).toBe('jane.doe');
  });
});
