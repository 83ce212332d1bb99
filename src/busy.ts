/**
 * A shared resource is saturated (every core hashing and the queue behind them full): the caller
 * is answered 503 overloaded with Retry-After at once instead of waiting in an unbounded queue.
 */
export class BusyError extends Error {
  constructor(
    what: string,
    readonly retryAfterSeconds = 1,
  ) {
    super(`${what} is saturated`);
    this.name = 'BusyError';
  }
}
