/**
 * A coarse monotonic clock: milliseconds since an arbitrary origin, read once per batch by the
 * data path (`tick()`), never per packet. Monotonic (performance.now), so ageing and rate limits
 * are unaffected by wall-clock steps. Tests inject a FakeClock.
 */

export interface Clock {
  /** Reads the time and remembers it as `now`. */
  tick(): number;
  /** The value of the last tick(). */
  readonly now: number;
}

export class MonotonicClock implements Clock {
  now = performance.now();
  tick(): number {
    this.now = performance.now();
    return this.now;
  }
}

/** A clock that moves only when told to (tests). */
export class FakeClock implements Clock {
  now: number;
  constructor(start = 0) {
    this.now = start;
  }
  tick(): number {
    return this.now;
  }
  advance(ms: number): void {
    this.now += ms;
  }
}
