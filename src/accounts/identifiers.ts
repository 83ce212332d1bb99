/**
 * One normalisation function per identifier, used by the lookup and by the unique index alike
 * (the column *_normalized holds its result). Mail always goes to the address as stored.
 */

const MAX_EMAIL_LENGTH = 254;
const MAX_LOCAL_PART_LENGTH = 64;
// One plain address: no display name, no list, no quotes, comments, whitespace or control characters.
const LOCAL_PART = /^[^\s@"(),:;<>[\\\]\p{Cc}]+$/u;
const DOMAIN_LABEL = /^(?!-)[\p{L}\p{N}-]{1,63}(?<!-)$/u;

/** The address as it will be stored and mailed to (trimmed), or null when it is not exactly one well-formed address. */
export function parseEmail(input: string): string | null {
  const address = input.trim();
  if (address.length === 0 || address.length > MAX_EMAIL_LENGTH) return null;
  const at = address.lastIndexOf('@');
  if (at <= 0 || address.indexOf('@') !== at) return null;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1);
  if (local.length > MAX_LOCAL_PART_LENGTH || !LOCAL_PART.test(local)) return null;
  if (local.startsWith('.') || local.endsWith('.') || local.includes('..')) return null;
  const labels = domain.split('.');
  if (labels.length < 2 || !labels.every((l) => DOMAIN_LABEL.test(l))) return null;
  return address;
}

/** Lookup key for an address: NFKC, trimmed, lower-cased. */
export function normalizeEmail(address: string): string {
  return address.normalize('NFKC').trim().toLowerCase();
}

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** A username as stored, or null. Never contains "@", so a login names an email or a username unambiguously. */
export function parseUsername(input: string): string | null {
  const username = input.trim();
  return USERNAME.test(username) ? username : null;
}

export function normalizeUsername(username: string): string {
  return username.normalize('NFKC').trim().toLowerCase();
}

/** "jane.doe@example.com" → "ja***@example.com", for audit lines that must not hold a full address. */
export function maskEmail(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return '***';
  const local = address.slice(0, at);
  return `${local.slice(0, Math.min(2, Math.max(1, local.length - 1)))}***${address.slice(at)}`;
}
