// The standard process_* metrics of Prometheus client libraries, read from
// the runtime and /proc (Linux). Read once per scrape, never on the echo path.
import { nodeFs } from "../sys/node-fs.ts";
import * as libc from "../sys/libc.ts";

export interface ProcessSnapshot {
  residentBytes: number;
  virtualBytes: number | null;
  cpuSeconds: number;
  openFds: number | null;
  maxFds: number | null;
  startTimeSeconds: number;
}

/** USER_HZ: the unit of /proc/<pid>/stat times, fixed at 100 in Linux's user ABI. */
const USER_HZ = 100;

/** Fields of /proc/self/stat after the command name, numbered from 0 = state (field 3). */
function statFields(): string[] | null {
  try {
    const text = nodeFs().readFileSync("/proc/self/stat", "latin1");
    return text.slice(text.lastIndexOf(")") + 2).split(" ");
  } catch {
    return null;
  }
}

/** Seconds since the epoch when this process started (boot time + start ticks). */
export function processStartTime(): number {
  const fields = statFields();
  try {
    const btime = /^btime (\d+)$/m.exec(nodeFs().readFileSync("/proc/stat", "latin1"));
    const ticks = fields ? Number(fields[19]) : NaN;
    if (btime && Number.isFinite(ticks)) return Number(btime[1]) + ticks / USER_HZ;
  } catch {
    // fall through to the runtime's own idea
  }
  return Math.round(performance.timeOrigin) / 1000;
}

export function readProcess(startTimeSeconds: number): ProcessSnapshot {
  const cpu = process.cpuUsage();
  const fields = statFields();
  const vsize = fields ? Number(fields[20]) : NaN;
  let openFds: number | null = null;
  try {
    openFds = nodeFs().readdirSync("/proc/self/fd").length;
  } catch {
    // no /proc: leave the metric out
  }
  const limit = libc.getrlimit(libc.RLIMIT_NOFILE);
  return {
    residentBytes: process.memoryUsage.rss(),
    virtualBytes: Number.isFinite(vsize) ? vsize : null,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    openFds,
    maxFds: typeof limit === "number" ? null : limit.soft,
    startTimeSeconds,
  };
}
