// When to re-read the local addresses for the per-address UDP sockets. A
// datagram that reaches the wildcard socket means its destination has no
// socket of its own (a new alias or VIP, an IPv6 address that finished
// duplicate address detection, one whose bind failed before), so it asks for
// a rescan. It may ask for every datagram of a flood (broadcasts, addresses
// past the cap), so rescans start at least minGapMs apart and at most one is
// ever scheduled; nothing is scheduled while nothing asks. Pure: time comes
// in as milliseconds.

export class RescanTrigger {
  private lastStart = -Infinity;
  private scheduled = false;

  constructor(readonly minGapMs: number) {}

  /** A rescan is asked for at `now`: the delay in ms after which to start one, or null when one is already scheduled. */
  ask(now: number): number | null {
    if (this.scheduled) return null;
    this.scheduled = true;
    return Math.max(0, this.lastStart + this.minGapMs - now);
  }

  /** The scheduled rescan is due (its timer fired): the next ask schedules another. */
  fired(): void {
    this.scheduled = false;
  }

  /** A rescan starts at `now`, scheduled or not (SIGHUP): the next one starts minGapMs later at the soonest. */
  started(now: number): void {
    this.lastStart = now;
  }
}
