// Keep accept() from ever meeting EMFILE: Bun's accept loop then spins a CPU
// at 100 %, with no error the script can see, until descriptors free up
// (Bun 1.4.5; upstream oven-sh/bun#32705). At start the soft RLIMIT_NOFILE is
// raised to the hard limit, and --max-tcp is clamped so that every client plus
// a headroom for listeners, the rejected-busy socket of the moment, logs and
// runtime internals fits under it: the "server busy" rejection then always
// comes before the kernel runs out of descriptors.
import * as libc from "./libc.ts";

/** Descriptors kept free for everything that is not a client connection (at most). */
export const FD_HEADROOM = 64;
/**
 * Descriptors kept free on top of those already open at start: listeners and
 * UDP sockets (two each when the kernel forces v6-only), the rejected-busy
 * socket of the moment, a metrics listener and scrape, runtime internals.
 */
export const FD_SPARE = 32;

/**
 * The headroom to keep: what is open now plus FD_SPARE, capped at
 * FD_HEADROOM. With a small limit (ulimit -n 64) a fixed 64 would leave room
 * for a single client; at start the process holds only ~8 descriptors.
 */
export function headroomFor(openNow: number | null): number {
  return openNow === null ? FD_HEADROOM : Math.min(FD_HEADROOM, openNow + FD_SPARE);
}

/** Descriptors open in this process now, or null where /proc is not mounted. */
function openDescriptors(): number | null {
  try {
    // Bun.Glob rather than node:fs, whose load would cost every start (src/sys/node-fs.ts).
    let open = 0;
    for (const _ of new Bun.Glob("*").scanSync({ cwd: "/proc/self/fd", onlyFiles: false })) open++;
    return open - 1; // minus the one the scan itself holds
  } catch {
    return null;
  }
}

export interface FdPlan {
  /** Soft limit to set (unchanged if no raise is needed or possible). */
  soft: number;
  /** --max-tcp after clamping. */
  maxTcp: number;
  clamped: boolean;
}

/** Pure: what to do with the limits for a requested --max-tcp. */
export function planFdBudget(limit: libc.Rlimit, maxTcp: number, headroom = FD_HEADROOM): FdPlan {
  const wanted = maxTcp + headroom;
  const soft = Math.max(limit.soft, Math.min(wanted, limit.hard));
  const allowed = Math.max(1, soft - headroom);
  return { soft, maxTcp: Math.min(maxTcp, allowed), clamped: maxTcp > allowed };
}

export interface FdBudget extends FdPlan {
  before: libc.Rlimit;
}

/**
 * Pure: does the plan depend on how many descriptors are open? Not when the
 * soft limit already holds --max-tcp plus the largest headroom: whatever the
 * headroom, nothing is raised or clamped. Counting /proc/self/fd cost every
 * start about 0.3 ms, so it is done only when the answer can change the plan.
 */
export function needsOpenCount(limit: libc.Rlimit, maxTcp: number): boolean {
  return limit.soft < maxTcp + FD_HEADROOM;
}

/** Apply the plan to this process; returns it with the limits found, or null if unreadable. */
export function applyFdBudget(maxTcp: number): FdBudget | null {
  const before = libc.getrlimit(libc.RLIMIT_NOFILE);
  if (typeof before === "number") return null;
  const headroom = needsOpenCount(before, maxTcp) ? headroomFor(openDescriptors()) : FD_HEADROOM;
  const plan = planFdBudget(before, maxTcp, headroom);
  if (plan.soft !== before.soft && libc.setrlimit(libc.RLIMIT_NOFILE, { soft: plan.soft, hard: before.hard }) < 0) {
    // Could not raise it: plan within the soft limit we have.
    return { ...planFdBudget({ soft: before.soft, hard: before.soft }, maxTcp, headroom), before };
  }
  return { ...plan, before };
}
