// What Linux publishes under /proc about a process (CPU time, memory,
// descriptors, limits, its threads' context switches), about each CPU (busy
// and total time) and about the sockets of this network namespace. The one /proc reader of the repository:
// the metrics endpoint, the benchmark and the tests all read through it.
// Synchronous and cheap; node:fs is loaded on first use (node-fs.ts).
import { nodeFs } from "./node-fs.ts";

export type Pid = number | "self";

/** USER_HZ: the unit of the times in /proc/PID/stat and /proc/stat, fixed at 100 in Linux's user ABI. */
export const USER_HZ = 100;

function read(path: string): string {
  return nodeFs().readFileSync(path, "latin1");
}

/** Fields of /proc/PID/stat after the command name: index 0 is field 3 (state). */
export function statFields(pid: Pid): string[] {
  const text = read(`/proc/${pid}/stat`);
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  return text.slice(text.lastIndexOf(")") + 2).split(" ");
}

/** User + system CPU seconds the process (all its threads) has used so far: fields 14 and 15. */
export function cpuSeconds(pid: Pid): number {
  const f = statFields(pid);
  return (Number(f[11]) + Number(f[12])) / USER_HZ;
}

/** Virtual memory size in bytes: field 23. */
export function virtualBytes(pid: Pid): number {
  return Number(statFields(pid)[20]);
}

/** Seconds since the epoch when the process started: boot time + field 22 (start, in ticks after boot). */
export function startTimeSeconds(pid: Pid): number {
  const btime = /^btime (\d+)$/m.exec(read("/proc/stat"));
  const ticks = Number(statFields(pid)[19]);
  if (!btime || !Number.isFinite(ticks)) throw new Error("/proc/stat has no btime");
  return Number(btime[1]) + ticks / USER_HZ;
}

export interface MemFigures {
  /** VmRSS: resident now, KiB. */
  rssKiB: number;
  /** VmHWM: peak resident since start (or since resetPeakRss), KiB. */
  hwmKiB: number;
  /** RssAnon: the resident memory of the process's own (heap, buffers), without file-backed code. */
  anonKiB: number;
}

/** VmRSS and VmHWM from /proc/PID/status. */
export function readMem(pid: Pid): MemFigures {
  const text = read(`/proc/${pid}/status`);
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
    if (!m) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(m[1]);
  };
  return { rssKiB: field("VmRSS"), hwmKiB: field("VmHWM"), anonKiB: field("RssAnon") };
}

/**
 * Reset VmHWM to the current RSS (writes 5 to /proc/PID/clear_refs; needs to
 * own the process or be root). Returns false when the kernel refused.
 */
export function resetPeakRss(pid: Pid): boolean {
  try {
    nodeFs().writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** Number of open descriptors (entries of /proc/PID/fd). */
export function fdCount(pid: Pid): number {
  return nodeFs().readdirSync(`/proc/${pid}/fd`).length;
}

/** The soft and hard RLIMIT_NOFILE of a process, from /proc/PID/limits. */
export function nofileLimit(pid: Pid): { soft: number; hard: number } {
  const m = /^Max open files\s+(\d+)\s+(\d+)/m.exec(read(`/proc/${pid}/limits`));
  if (!m) throw new Error(`/proc/${pid}/limits: no 'Max open files' line`);
  return { soft: Number(m[1]), hard: Number(m[2]) };
}

export interface ThreadSwitches {
  tid: number;
  name: string;
  /** voluntary + involuntary */
  switches: number;
  /** voluntary only: the thread went to sleep (an involuntary switch is a preemption, which depends on machine load) */
  voluntary: number;
}

/** Every thread's name and context switches so far (threads that vanish mid-read are skipped). */
export function threadSwitches(pid: Pid): ThreadSwitches[] {
  const out: ThreadSwitches[] = [];
  let tids: string[];
  try {
    tids = nodeFs().readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    let text: string;
    try {
      text = read(`/proc/${pid}/task/${tid}/status`);
    } catch {
      continue;
    }
    const name = /^Name:\s*(.*)$/m.exec(text)?.[1] ?? "?";
    const vol = Number(/^voluntary_ctxt_switches:\s*(\d+)/m.exec(text)?.[1] ?? 0);
    const invol = Number(/^nonvoluntary_ctxt_switches:\s*(\d+)/m.exec(text)?.[1] ?? 0);
    out.push({ tid: Number(tid), name, switches: vol + invol, voluntary: vol });
  }
  return out;
}

export interface CpuTime {
  /** Ticks spent on anything but idle and iowait. */
  busy: number;
  /** All ticks (user nice system idle iowait irq softirq steal). */
  total: number;
}

/** Busy and total ticks of each CPU ("cpu0", "cpu1", ...; "cpu" is all of them) from /proc/stat. */
export function cpuTimes(): Map<string, CpuTime> {
  const m = new Map<string, CpuTime>();
  for (const line of read("/proc/stat").split("\n")) {
    if (!line.startsWith("cpu")) continue;
    const f = line.split(/\s+/);
    let total = 0;
    for (let i = 1; i <= 8; i++) total += Number(f[i] ?? 0);
    m.set(f[0]!, { busy: total - Number(f[4]) - Number(f[5]), total });
  }
  return m;
}

export interface SocketRow {
  /** Local address as the kernel prints it (hex). */
  local: string;
  port: number;
  rxQueue: number;
  inode: number;
  /** UDP only: datagrams dropped because the receive buffer was full (0 for TCP). */
  drops: number;
}

/** The rows of /proc/net/{tcp,tcp6,udp,udp6}: every socket of this network namespace. */
export function sockets(proto: "tcp" | "udp"): SocketRow[] {
  const rows: SocketRow[] = [];
  for (const file of [`/proc/net/${proto}`, `/proc/net/${proto}6`]) {
    let text: string;
    try {
      text = read(file);
    } catch {
      continue; // no IPv6 in this kernel
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const [local, portHex] = f[1]!.split(":");
      rows.push({
        local: local!,
        port: parseInt(portHex!, 16),
        rxQueue: parseInt(f[4]!.split(":")[1]!, 16),
        inode: Number(f[9]),
        drops: proto === "udp" ? Number(f[f.length - 1]) : 0,
      });
    }
  }
  return rows;
}

/** UDP sockets bound to `port`, IPv4 and IPv6. */
export function udpSockets(port: number): SocketRow[] {
  return sockets("udp").filter((r) => r.port === port);
}

/** One mapping of /proc/PID/smaps: its address range, permissions, file and page counts. */
export interface Mapping {
  start: number;
  end: number;
  /** "r-xp", "r--p", "rw-p", ...: the last letter is p (private) or s (shared). */
  perms: string;
  /** The device as the kernel prints it ("fe:00") and the inode; 0 for anonymous memory. */
  dev: string;
  inode: number;
  /** The file, "[heap]", "[stack]", ... or "" (anonymous); a file replaced since ends in " (deleted)". */
  path: string;
  rssKiB: number;
  /** Private copies of the mapping's pages (a private file page once written is one); 0 means every resident page is the file's own. */
  anonymousKiB: number;
}

/** The mappings of /proc/PID/smaps text, with Rss and Anonymous (other fields are skipped). */
export function parseSmaps(text: string): Mapping[] {
  const out: Mapping[] = [];
  let cur: Mapping | null = null;
  for (const line of text.split("\n")) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) [0-9a-f]+ (\S+) (\d+) *(.*)$/.exec(line);
    if (head) {
      cur = { start: parseInt(head[1]!, 16), end: parseInt(head[2]!, 16), perms: head[3]!, dev: head[4]!, inode: Number(head[5]), path: head[6]!, rssKiB: 0, anonymousKiB: 0 };
      out.push(cur);
      continue;
    }
    const field = /^(Rss|Anonymous):\s+(\d+) kB$/.exec(line);
    if (field && cur) cur[field[1] === "Rss" ? "rssKiB" : "anonymousKiB"] = Number(field[2]);
  }
  return out;
}

/** The mappings of a process with their resident and private-copy sizes (/proc/PID/smaps). */
export function mappings(pid: Pid): Mapping[] {
  return parseSmaps(read(`/proc/${pid}/smaps`));
}
