/** Time is a dependency so tests can pin expiry boundaries. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** A clock that only moves when told to. */
export class FakeClock implements Clock {
  private ms: number;

  constructor(start: Date | string = '2026-01-01T00:00:00.000Z') {
    this.ms = new Date(start).getTime();
  }

  now(): Date {
    return new Date(this.ms);
  }

  advanceSeconds(seconds: number): void {
    this.ms += seconds * 1000;
  }

  set(at: Date | string): void {
    this.ms = new Date(at).getTime();
  }
}
