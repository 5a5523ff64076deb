// A coarse monotonic clock, advanced by one timer instead of a syscall per
// event: idle timeouts and the UDP window only need about a second.

export class CoarseClock {
  /** Whole seconds since start, monotonic. */
  seconds = 0;
  private readonly origin = performance.now();

  tick(): void {
    this.seconds = Math.floor((performance.now() - this.origin) / 1000);
  }
}
