// The standard process_* metrics of Prometheus client libraries, read from
// the runtime and /proc (Linux). Read once per scrape, never on the echo path.
import * as libc from "../sys/libc.ts";
import { fdCount, startTimeSeconds, virtualBytes } from "../sys/procfs.ts";

export interface ProcessSnapshot {
  residentBytes: number;
  virtualBytes: number | null;
  cpuSeconds: number;
  openFds: number | null;
  maxFds: number | null;
  startTimeSeconds: number;
}

/** The figure, or null when /proc cannot tell (no /proc: the metric is left out). */
function orNull(read: () => number): number | null {
  try {
    const v = read();
    return Number.isFinite(v) ? v : null;
  } catch {
    return null;
  }
}

/** Seconds since the epoch when this process started (from /proc, else the runtime's own idea). */
export function processStartTime(): number {
  return orNull(() => startTimeSeconds("self")) ?? Math.round(performance.timeOrigin) / 1000;
}

export function readProcess(startTimeSeconds: number): ProcessSnapshot {
  const cpu = process.cpuUsage();
  const limit = libc.getrlimit(libc.RLIMIT_NOFILE);
  return {
    residentBytes: process.memoryUsage.rss(),
    virtualBytes: orNull(() => virtualBytes("self")),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    openFds: orNull(() => fdCount("self")),
    maxFds: typeof limit === "number" ? null : limit.soft,
    startTimeSeconds,
  };
}
