// Keep accept() from ever meeting EMFILE: Bun's accept loop spins a CPU at
// 100 % when it does (field notes, trap 3). At start the soft RLIMIT_NOFILE is
// raised to the hard limit, and --max-tcp is clamped so that every client plus
// a headroom for listeners, the rejected-busy socket of the moment, logs and
// runtime internals fits under it: the "server busy" rejection then always
// comes before the kernel runs out of descriptors.
import * as libc from "./sys/libc.ts";

/** Descriptors kept free for everything that is not a client connection. */
export const FD_HEADROOM = 64;

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

/** Apply the plan to this process; returns it with the limits found, or null if unreadable. */
export function applyFdBudget(maxTcp: number): FdBudget | null {
  const before = libc.getrlimit(libc.RLIMIT_NOFILE);
  if (typeof before === "number") return null;
  const plan = planFdBudget(before, maxTcp);
  if (plan.soft !== before.soft && libc.setrlimit(libc.RLIMIT_NOFILE, { soft: plan.soft, hard: before.hard }) < 0) {
    // Could not raise it: plan within the soft limit we have.
    return { ...planFdBudget({ soft: before.soft, hard: before.soft }, maxTcp), before };
  }
  return { ...plan, before };
}
