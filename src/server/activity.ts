// Notices traffic without a timer while the server is idle. The socket
// handlers poke the watch on every event (a flag store); the first poke after
// a quiet spell starts a once-a-second tick, which goes on while traffic does
// and stops after the first second without any, so an idle server has no
// timer of its own.

/** How often the tick runs while there is traffic. */
export const ACTIVITY_TICK_MS = 1000;

export class ActivityWatch {
  private timer: ReturnType<typeof setTimeout> | null = null;
  private seen = false;
  private stopped = false;

  /** `onTick(quiet)` runs once a second while busy; `quiet` is true on the last tick of a busy spell. */
  constructor(private readonly onTick: (quiet: boolean) => void) {}

  /** Something happened on a socket. */
  poke(): void {
    this.seen = true;
    if (this.timer === null && !this.stopped) this.timer = setTimeout(this.tick, ACTIVITY_TICK_MS);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  private readonly tick = (): void => {
    const quiet = !this.seen;
    this.seen = false;
    this.timer = quiet ? null : setTimeout(this.tick, ACTIVITY_TICK_MS);
    this.onTick(quiet);
  };
}
