// At most one warning per interval for a repeated event, carrying the number
// of events since the previous warning. Pure: time comes in as milliseconds.

export class WarnThrottle {
  private warnedAt = -Infinity;
  private since = 0;

  constructor(private readonly intervalMs: number) {}

  /** Count one event; returns how many to report if a warning is due now, else 0. */
  hit(nowMs: number): number {
    this.since++;
    if (nowMs - this.warnedAt < this.intervalMs) return 0;
    const n = this.since;
    this.warnedAt = nowMs;
    this.since = 0;
    return n;
  }
}
