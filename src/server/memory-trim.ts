// Gives memory back to the system after a burst. JSC collects garbage on its
// own schedule and the allocator returns freed pages lazily, so after a burst
// (never-reading clients that reset with megabytes of replies queued) RSS
// stayed ~100 MiB above idle for as long as the server stayed idle. A full
// collection, Bun.gc(true), frees the dead buffers and makes the allocator
// purge them (mi_collect) at once: one pause of a few milliseconds, taken when
// traffic stops (or when a large output backlog has just gone), never in the
// middle of steady traffic.
import type { Stats } from "../core/stats.ts";
import type { Logger } from "../sys/log.ts";

/** Traffic (bytes in + out) since the last collection that makes one worth its pause once traffic stops. */
export const TRIM_AFTER_BYTES = 4 * 1024 * 1024;
/** Connections accepted since the last collection that make one worth it (each left buffers behind). */
export const TRIM_AFTER_CONNECTIONS = 256;
/** Queued output at least this large, then mostly gone, triggers a collection even while others are busy. */
export const TRIM_BACKLOG_BYTES = 8 * 1024 * 1024;

export class MemoryTrim {
  private trafficAtTrim = 0;
  private acceptedAtTrim = 0;
  private peakBacklog = 0;
  /** Collections so far (for tests and /metrics). */
  trims = 0;

  constructor(
    private readonly stats: Stats,
    private readonly log: Logger,
  ) {}

  /** One tick of the activity watch: collect when a burst is over. */
  tick(quiet: boolean): void {
    const s = this.stats;
    const backlog = s.tcpPendingOutput;
    if (backlog > this.peakBacklog) this.peakBacklog = backlog;
    const backlogGone = this.peakBacklog >= TRIM_BACKLOG_BYTES && backlog <= this.peakBacklog / 8;
    const traffic = s.tcpBytesIn + s.tcpBytesOut + s.udpBytesIn + s.udpBytesOut;
    const burst = traffic - this.trafficAtTrim >= TRIM_AFTER_BYTES || s.tcpAccepted - this.acceptedAtTrim >= TRIM_AFTER_CONNECTIONS;
    if (!backlogGone && !(quiet && burst)) return;
    const t0 = performance.now();
    Bun.gc(true);
    this.trims++;
    if (this.log.debugOn) this.log.debug("burst over: memory returned", { gc_ms: Math.round((performance.now() - t0) * 10) / 10, backlog_peak: this.peakBacklog });
    this.trafficAtTrim = traffic;
    this.acceptedAtTrim = s.tcpAccepted;
    this.peakBacklog = backlog;
  }
}
