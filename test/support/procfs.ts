// Figures about a running process and the kernel's socket tables, read from
// /proc: resident memory (now and peak), CPU seconds, open descriptors and the
// per-socket UDP drop counters. Linux only; every reader is synchronous and
// cheap enough to sample a few times a second.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";

/** Clock ticks per second for /proc/PID/stat (sysconf(_SC_CLK_TCK); 100 on every Linux we run on). */
export const CLK_TCK = (() => {
  const r = Bun.spawnSync(["getconf", "CLK_TCK"], { stdout: "pipe", stderr: "ignore" });
  const n = Number(r.stdout.toString().trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

export interface MemFigures {
  /** VmRSS: resident now, KiB. */
  rssKiB: number;
  /** VmHWM: peak resident since start (or since resetPeakRss), KiB. */
  hwmKiB: number;
}

/** VmRSS and VmHWM from /proc/PID/status. */
export function readMem(pid: number): MemFigures {
  const text = readFileSync(`/proc/${pid}/status`, "latin1");
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
    if (!m) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(m[1]);
  };
  return { rssKiB: field("VmRSS"), hwmKiB: field("VmHWM") };
}

/**
 * Reset VmHWM to the current RSS (writes 5 to /proc/PID/clear_refs; needs to
 * own the process or be root). Returns false when the kernel refused.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** User + system CPU seconds the process has used so far (all its threads). */
export function cpuSeconds(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, "latin1");
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  return (utime + stime) / CLK_TCK;
}

/** Number of open descriptors (entries of /proc/PID/fd). */
export function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/** The soft and hard RLIMIT_NOFILE of a process, from /proc/PID/limits. */
export function nofileLimit(pid: number): { soft: number; hard: number } {
  const text = readFileSync(`/proc/${pid}/limits`, "latin1");
  const m = /^Max open files\s+(\d+)\s+(\d+)/m.exec(text);
  if (!m) throw new Error(`/proc/${pid}/limits: no 'Max open files' line`);
  return { soft: Number(m[1]), hard: Number(m[2]) };
}

export interface UdpSocketRow {
  local: string;
  port: number;
  rxQueue: number;
  drops: number;
  inode: number;
}

/**
 * UDP sockets of this network namespace bound to `port` (IPv4 and IPv6 tables),
 * with the kernel's per-socket drop counter (datagrams discarded because the
 * receive buffer was full).
 */
export function udpSockets(port: number): UdpSocketRow[] {
  const rows: UdpSocketRow[] = [];
  for (const file of ["/proc/net/udp", "/proc/net/udp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "latin1");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 13) continue;
      const [addr, portHex] = f[1]!.split(":");
      const p = parseInt(portHex!, 16);
      if (p !== port) continue;
      const rx = parseInt(f[4]!.split(":")[1]!, 16);
      rows.push({ local: addr!, port: p, rxQueue: rx, drops: Number(f[f.length - 1]), inode: Number(f[9]) });
    }
  }
  return rows;
}

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

export const mib = (kib: number) => Math.round((kib / 1024) * 10) / 10;
