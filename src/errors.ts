/**
 * An expected failure a caller may be told about: a stable code, a safe message, details (field
 * messages, password reasons) and, for waits, the seconds to wait. Each feature declares its
 * codes in its own errors.ts; src/http/errors.ts is the one table from code to HTTP status, and
 * the CLI prints the message. Anything else thrown is unexpected and is never shown.
 */
export class DomainError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: Readonly<Record<string, unknown>> = {},
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

/** Codes any feature may use. */
export const COMMON_ERROR_CODES = ['invalid_request', 'not_found', 'unauthenticated', 'forbidden', 'rate_limited', 'overloaded', 'database_unavailable'] as const;

export const invalidInput = (message = 'The request is not valid.', fields?: Record<string, string>): DomainError =>
  new DomainError('invalid_request', message, fields ? { fields } : {});
export const notFound = (message = 'Not found.'): DomainError => new DomainError('not_found', message);
export const unauthenticated = (message = 'Sign in first.'): DomainError => new DomainError('unauthenticated', message);
export const forbidden = (): DomainError => new DomainError('forbidden', 'You do not have permission to do this.');
export const rateLimited = (retryAfterSeconds: number): DomainError =>
  new DomainError('rate_limited', 'Too many attempts. Try again later.', {}, Math.max(1, Math.ceil(retryAfterSeconds)));
/** A shared resource is saturated (every core hashing and the queue behind them full): answer at once rather than queue. */
export const overloaded = (retryAfterSeconds: number): DomainError =>
  new DomainError('overloaded', 'The server is busy. Try again in a few seconds.', {}, Math.max(1, Math.ceil(retryAfterSeconds)));
/** The database cannot be reached (restarting, failing over): try again shortly. */
export const databaseUnavailable = (retryAfterSeconds: number): DomainError =>
  new DomainError('database_unavailable', 'The service cannot reach its database. Try again in a few seconds.', {}, Math.max(1, Math.ceil(retryAfterSeconds)));
