import { createRequire } from 'node:module';
import type { dictionary } from '@zxcvbn-ts/language-common';
import { normalizePassword } from './passwords.js';

/**
 * The one password policy (DESIGN §3, NIST SP 800-63B-4): length, a blocklist checked by exact
 * match, repetition and sequences, and context words. No composition rules.
 */

export const MAX_PASSWORD_LENGTH = 128;
const PRODUCT_NAME = 'gatehouse';

export type PolicyReasonCode = 'too_short' | 'too_long' | 'common' | 'repetitive' | 'sequence' | 'contains_context';
export interface PolicyReason {
  code: PolicyReasonCode;
  message: string;
}

export interface PasswordContext {
  email?: string | null | undefined;
  username?: string | null | undefined;
}

const require = createRequire(import.meta.url);
let blocklist: Set<string> | undefined;
function commonPasswords(): Set<string> {
  // Loaded and built on first use, about 49,000 entries in a few milliseconds: a process that
  // only signs people in or sends reset links never holds the dictionaries.
  if (blocklist === undefined) {
    const words = require('@zxcvbn-ts/language-common') as { dictionary: typeof dictionary };
    blocklist = new Set((words.dictionary['passwords-common'] as string[]).map((p) => p.toLowerCase()));
  }
  return blocklist;
}

export function checkPassword(password: string, minLength: number, context: PasswordContext = {}): PolicyReason[] {
  const normalized = normalizePassword(password);
  const chars = [...normalized];
  const reasons: PolicyReason[] = [];

  if (chars.length < minLength) reasons.push({ code: 'too_short', message: `Use at least ${minLength} characters.` });
  if (chars.length > MAX_PASSWORD_LENGTH) reasons.push({ code: 'too_long', message: `Use at most ${MAX_PASSWORD_LENGTH} characters.` });
  if (chars.length === 0) return reasons;

  const lower = normalized.toLowerCase();
  if (commonPasswords().has(lower)) {
    reasons.push({ code: 'common', message: 'This password is on a list of commonly used passwords.' });
  }
  if (isRepetition([...lower])) {
    reasons.push({ code: 'repetitive', message: 'Avoid repeating the same characters (like "aaaa" or "abcabc").' });
  } else if (isSequence(chars)) {
    reasons.push({ code: 'sequence', message: 'Avoid sequences (like "abcd" or "1234").' });
  }
  const contextWord = contextWords(context).find((word) => lower.includes(word));
  if (contextWord !== undefined) {
    reasons.push({ code: 'contains_context', message: 'Do not build the password from the product name, your email or your username.' });
  }
  return reasons;
}

/** The whole password is one short unit repeated: "aaaa…", "abab…", "abcabc…". */
function isRepetition(chars: string[]): boolean {
  const n = chars.length;
  for (let unit = 1; unit <= Math.min(4, Math.floor(n / 2)); unit++) {
    if (chars.every((c, i) => c === chars[i % unit])) return true;
  }
  return false;
}

/** Every character is the previous one plus or minus one: "abcdef…", "9876…", digits wrapping "…7890123". */
function isSequence(chars: string[]): boolean {
  if (chars.length < 3) return false;
  const codes = chars.map((c) => c.toLowerCase().codePointAt(0)!);
  const step = (a: number, b: number): number => {
    const isDigit = (x: number): boolean => x >= 48 && x <= 57;
    if (isDigit(a) && isDigit(b)) return ((b - a + 15) % 10) - 5;
    return b - a;
  };
  const first = step(codes[0]!, codes[1]!);
  if (first !== 1 && first !== -1) return false;
  return codes.every((c, i) => i === 0 || step(codes[i - 1]!, c) === first);
}

function contextWords(context: PasswordContext): string[] {
  const words = [PRODUCT_NAME];
  if (context.email) {
    const email = context.email.normalize('NFKC').toLowerCase();
    words.push(email);
    const local = email.slice(0, email.lastIndexOf('@'));
    if (local.length >= 4) words.push(local);
  }
  if (context.username && context.username.length >= 4) words.push(context.username.normalize('NFKC').toLowerCase());
  return words;
}
