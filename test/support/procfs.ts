// /proc figures for the tests: the readers are src/sys/procfs.ts (re-exported
// here for the stress scenarios); this file adds a sampler that follows a
// process over time, and the UDP drop total of a port.
import { cpuSeconds, fdCount, readMem, udpSockets } from "../../src/sys/procfs.ts";

export { cpuSeconds, fdCount, nofileLimit, readMem, resetPeakRss, udpSockets } from "../../src/sys/procfs.ts";

/** Sum of the drop counters of the UDP sockets bound to `port`. */
export function udpDrops(port: number): number {
  return udpSockets(port).reduce((n, r) => n + r.drops, 0);
}

export interface ProcSample {
  /** ms since the sampler started */
  t: number;
  rssKiB: number;
  cpuSeconds: number;
  fds: number;
}

/**
 * Samples a process every `intervalMs` until stopped: peak RSS as seen by the
 * samples, plus the full series for figures. Stops by itself when the process
 * disappears.
 */
export class ProcSampler {
  readonly samples: ProcSample[] = [];
  private timer: ReturnType<typeof setInterval> | null;
  private readonly t0 = performance.now();
  peakRssKiB = 0;
  peakFds = 0;

  constructor(
    readonly pid: number,
    intervalMs = 200,
  ) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): ProcSample | null {
    try {
      const s: ProcSample = {
        t: performance.now() - this.t0,
        rssKiB: readMem(this.pid).rssKiB,
        cpuSeconds: cpuSeconds(this.pid),
        fds: fdCount(this.pid),
      };
      this.samples.push(s);
      if (s.rssKiB > this.peakRssKiB) this.peakRssKiB = s.rssKiB;
      if (s.fds > this.peakFds) this.peakFds = s.fds;
      return s;
    } catch {
      this.stop();
      return null;
    }
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

/**
 * Poll RSS every 100 ms until it is at most `targetKiB`: how many ms after
 * `sinceMs` (a performance.now() value) that took, or null when it had not
 * happened `timeoutMs` after `sinceMs`; with the last RSS seen.
 */
export async function rssSettles(pid: number, targetKiB: number, sinceMs: number, timeoutMs: number): Promise<{ ms: number | null; rssKiB: number }> {
  for (;;) {
    const rssKiB = readMem(pid).rssKiB;
    const ms = performance.now() - sinceMs;
    if (rssKiB <= targetKiB) return { ms, rssKiB };
    if (ms >= timeoutMs) return { ms: null, rssKiB };
    await Bun.sleep(100);
  }
}

export const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;
