// A whole-second monotonic clock for idle timeouts and rate-limited warnings.
// It is read on demand (CLOCK_MONOTONIC is a vDSO call, not a syscall), so no
// timer has to keep it current: an idle server needs no ticking clock.

export class CoarseClock {
  private readonly origin = performance.now();

  /** Whole seconds since start, monotonic. */
  get seconds(): number {
    return Math.floor((performance.now() - this.origin) / 1000);
  }

  /** Milliseconds from now until the clock reads `second` (0 if it already does). */
  msUntil(second: number): number {
    return Math.max(0, this.origin + second * 1000 - performance.now());
  }
}
