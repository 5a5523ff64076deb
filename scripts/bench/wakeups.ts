// Idle wakeups of a process: the context switches (voluntary + involuntary)
// of each of its threads from /proc/PID/task/*/status, counted over a window.
// A thread that sleeps in epoll_wait/futex and never wakes adds nothing; every
// timer, scavenger pass or GC helper wake-up adds at least one switch.
import { readFileSync, statSync } from "node:fs";
import { mappings, threadSwitches } from "../../src/sys/procfs.ts";

export interface WakeupFigure {
  /** All threads together, per second (voluntary + involuntary switches). */
  total: number;
  /** All threads together, voluntary switches only, per second. */
  voluntary: number;
  /** Per thread name (threads of the same name added up), per second, busiest first. */
  perThread: { name: string; threads: number; perSec: number }[];
  windowMs: number;
}

/** Wakeups per second over `windowMs`; a thread born inside the window counts from zero. */
export async function measureWakeups(pid: number, windowMs: number): Promise<WakeupFigure> {
  const before = new Map(threadSwitches(pid).map((t) => [t.tid, t]));
  const t0 = performance.now();
  await Bun.sleep(windowMs);
  const after = threadSwitches(pid);
  const secs = (performance.now() - t0) / 1000;
  const byName = new Map<string, { threads: number; switches: number }>();
  let total = 0;
  let voluntary = 0;
  for (const t of after) {
    const n = t.switches - (before.get(t.tid)?.switches ?? 0);
    total += n;
    voluntary += t.voluntary - (before.get(t.tid)?.voluntary ?? 0);
    const e = byName.get(t.name) ?? { threads: 0, switches: 0 };
    e.threads++;
    e.switches += n;
    byName.set(t.name, e);
  }
  const perThread = [...byName].map(([name, e]) => ({ name, threads: e.threads, perSec: e.switches / secs })).sort((a, b) => b.perSec - a.perSec);
  return { total: total / secs, voluntary: voluntary / secs, perThread, windowMs: secs * 1000 };
}

/** "1.9/s (main 0.9, HeapHelper 0.5 ×2, …)" */
export function formatWakeups(w: WakeupFigure): string {
  const parts = w.perThread.filter((t) => t.perSec >= 0.05).map((t) => `${t.name} ${t.perSec.toFixed(1)}${t.threads > 1 ? ` ×${t.threads}` : ""}`);
  return `${w.total.toFixed(1)}/s${parts.length ? ` (${parts.join(", ")})` : ""}`;
}

/** The Environment= settings of the packaged unit, so a measurement starts the binary the way systemd does. */
export function unitEnvironment(root: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(`${root}/debian/epoll-echo.service`, "utf8").split("\n")) {
    const m = /^Environment=(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const pair of m[1]!.split(/\s+/)) {
      const eq = pair.indexOf("=");
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

/** The unit's settings taken out of `env`: a direct start from a shell that never heard of them. */
export function withoutUnitEnvironment(env: Record<string, string | undefined>, root: string): Record<string, string | undefined> {
  const unit = unitEnvironment(root);
  return Object.fromEntries(Object.entries(env).filter(([k]) => !(k in unit)));
}

/** RSS of a process by kind, MiB: its executable's code (r-xp) and constants (r--p, file pages), anonymous memory, the rest. */
export interface RssComposition {
  total: number;
  code: number;
  constants: number;
  anon: number;
  other: number;
}

export function rssComposition(pid: number): RssComposition {
  const exe = statSync(`/proc/${pid}/exe`).ino;
  const kib = { total: 0, code: 0, constants: 0, anon: 0, other: 0 };
  for (const m of mappings(pid)) {
    kib.total += m.rssKiB;
    kib.anon += m.anonymousKiB;
    const file = m.rssKiB - m.anonymousKiB;
    if (m.inode === exe && m.perms === "r-xp") kib.code += file;
    else if (m.inode === exe && m.perms === "r--p") kib.constants += file;
    else kib.other += file;
  }
  const mib = (k: number) => k / 1024;
  return { total: mib(kib.total), code: mib(kib.code), constants: mib(kib.constants), anon: mib(kib.anon), other: mib(kib.other) };
}

/** "15.3 (code 3.8, constants 4.3, anon 4.0, other 3.3)" */
export function formatRss(c: RssComposition): string {
  const f = (x: number) => x.toFixed(1);
  return `${f(c.total)} (code ${f(c.code)}, constants ${f(c.constants)}, anon ${f(c.anon)}, other ${f(c.other)})`;
}
