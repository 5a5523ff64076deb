// Gives memory back to the system after a burst. JSC collects garbage on its
// own schedule and the allocator returns freed pages lazily, so after a burst
// (never-reading clients that reset with megabytes of replies queued) RSS
// stayed ~100 MiB above idle for as long as the server stayed idle. A full
// collection, Bun.gc(true), frees the dead buffers and makes the allocator
// purge them (mi_collect) at once: one pause of a few milliseconds, taken when
// traffic stops (or when a large output backlog has just gone), never in the
// middle of steady traffic.
//
// Once after start, and again whenever a burst is over, the server settles:
// a full collection, and the pages of the executable that serving no longer
// touches are dropped from the process (exe-pages.ts), so RSS at rest is what
// resting needs (the code a burst faulted back in goes too). It runs
// SETTLE_AFTER_MS after the sockets are up if no TCP client is connected and
// no datagram came in meanwhile, else at the end of the first busy spell: no
// client waits on its pause.
import type { Stats } from "../core/stats.ts";
import type { Logger } from "../sys/log.ts";

/** Traffic (bytes in + out) since the last collection that makes one worth its pause once traffic stops. */
export const TRIM_AFTER_BYTES = 4 * 1024 * 1024;
/** Connections accepted since the last collection that make one worth it (each left buffers behind). */
export const TRIM_AFTER_CONNECTIONS = 256;
/** Queued output at least this large, then mostly gone, triggers a collection even while others are busy. */
export const TRIM_BACKLOG_BYTES = 8 * 1024 * 1024;
/** The settle step runs this long after start, if the server is at rest then. */
export const SETTLE_AFTER_MS = 200;

export class MemoryTrim {
  private trafficAtTrim = 0;
  private acceptedAtTrim = 0;
  private peakBacklog = 0;
  private settleTimer: ReturnType<typeof setTimeout> | null = null;
  /** A settle is owed at the next quiet tick (after start, or a collection while traffic went on). */
  private settlePending = false;
  /** Collections so far (for tests and /metrics). */
  trims = 0;
  /** A first-rest attempt (the hand-over re-exec) is in flight. */
  private resting = false;
  private stopped = false;

  /**
   * `firstRest`, if given, runs in place of the first settle: it returns only
   * when it did not replace the process (src/server/handover.ts), with true
   * to be asked again at the next quiet tick (clients were connected), false
   * to settle now and never ask again.
   */
  constructor(
    private readonly stats: Stats,
    private readonly log: Logger,
    private firstRest?: () => Promise<boolean>,
  ) {}

  /** Settle once, SETTLE_AFTER_MS from now if at rest then, else when the activity watch next reports quiet. */
  settleAfterStart(): void {
    const datagrams = this.stats.udpDatagrams;
    this.settlePending = true;
    this.settleTimer = setTimeout(() => {
      this.settleTimer = null;
      if (this.stats.tcpConnected === 0 && this.stats.udpDatagrams === datagrams) this.settle();
    }, SETTLE_AFTER_MS);
  }

  stop(): void {
    if (this.settleTimer !== null) clearTimeout(this.settleTimer);
    this.settleTimer = null;
    this.settlePending = false;
    this.stopped = true;
  }

  /** One tick of the activity watch: collect when a burst is over. */
  tick(quiet: boolean): void {
    if (quiet && this.settlePending && this.settleTimer === null) return this.settle();
    const s = this.stats;
    const backlog = s.tcpPendingOutput;
    if (backlog > this.peakBacklog) this.peakBacklog = backlog;
    const backlogGone = this.peakBacklog >= TRIM_BACKLOG_BYTES && backlog <= this.peakBacklog / 8;
    const traffic = s.tcpBytesIn + s.tcpBytesOut + s.udpBytesIn + s.udpBytesOut;
    const burst = traffic - this.trafficAtTrim >= TRIM_AFTER_BYTES || s.tcpAccepted - this.acceptedAtTrim >= TRIM_AFTER_CONNECTIONS;
    if (quiet && burst) return this.settle();
    if (!backlogGone) return;
    // Still busy: collect now, give the code pages back once traffic stops.
    const peak = this.peakBacklog;
    const gcMs = this.collect();
    this.settlePending = true;
    if (this.log.debugOn) this.log.debug("output backlog gone: memory returned", { gc_ms: gcMs, backlog_peak: peak });
  }

  /** A full collection, then the executable's pages dropped again: after start, and when a burst is over. */
  private settle(): void {
    this.settlePending = false;
    const rest = this.firstRest;
    if (rest === undefined) return this.settleNow();
    if (this.resting) return;
    this.resting = true;
    void rest().then((again) => {
      this.resting = false;
      if (this.stopped) return;
      if (again) {
        this.settlePending = true;
        return;
      }
      this.firstRest = undefined;
      this.settleNow();
    });
  }

  private settleNow(): void {
    // Loaded at the first settle, not with the program (a chunk of its own: a start pays for the code it loads).
    const { dropPages, executablePages } = require("../sys/exe-pages.ts") as typeof import("../sys/exe-pages.ts");
    // Read /proc before the collection, so the collection frees what reading it allocated.
    const pages = executablePages();
    const gcMs = this.collect();
    const t0 = performance.now();
    const dropped = typeof pages === "string" ? pages : dropPages(pages);
    if (typeof dropped === "string") this.log.debug("settled; the executable's pages stay mapped", { gc_ms: gcMs, reason: dropped });
    else if (this.log.debugOn) this.log.debug("settled", { gc_ms: gcMs, exe_pages_dropped_kib: dropped, drop_ms: ms(performance.now() - t0) });
  }

  /** A full collection; its duration in ms. */
  private collect(): number {
    const s = this.stats;
    const t0 = performance.now();
    Bun.gc(true);
    this.trims++;
    this.trafficAtTrim = s.tcpBytesIn + s.tcpBytesOut + s.udpBytesIn + s.udpBytesOut;
    this.acceptedAtTrim = s.tcpAccepted;
    this.peakBacklog = s.tcpPendingOutput;
    return ms(performance.now() - t0);
  }
}

function ms(x: number): number {
  return Math.round(x * 10) / 10;
}
