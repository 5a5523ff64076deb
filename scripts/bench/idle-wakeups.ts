// The `wakeups` figure of `bun run bench` (issue 15): how often a server's
// threads wake while nothing happens, and its RSS at rest. The server is
// started with the packaged unit's Environment= (the way systemd and the image
// start it); then, after the first echo:
//   RSS 1 s after the first echo (VmRSS),
//   wakeups with no clients over a window after a settle,
//   wakeups with N idle TCP connections (each echoed one line) over a window.
// Runs in the bench runner itself: no load client is needed.
import { readMem } from "../../src/sys/procfs.ts";
import { formatWakeups, measureWakeups, unitEnvironment } from "./wakeups.ts";

export interface IdleSpec {
  /** The full command, already pinned, with --port. */
  cmd: string[];
  cwd: string;
  port: number;
  idleConns: number;
  settleMs: number;
  windowMs: number;
}

export interface IdleResult {
  ok: boolean;
  error?: string;
  rssAfterFirstEchoKiB?: number;
  wakeupsNone?: number;
  wakeupsNoneThreads?: string;
  wakeupsHeld?: number;
  wakeupsHeldThreads?: string;
}

/** One TCP line echoed on a fresh connection, which is left open; null if the server did not answer. */
function echoOnce(port: number): Promise<import("bun").Socket<undefined> | null> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (s: import("bun").Socket<undefined> | null) => {
      if (!done) resolve(s);
      done = true;
    };
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        open: (s) => void s.write("x\n"),
        data: (s) => finish(s),
        close: () => finish(null),
        error: () => finish(null),
      },
    }).catch(() => finish(null));
  });
}

export async function idleWakeups(spec: IdleSpec, root: string): Promise<IdleResult> {
  const proc = Bun.spawn(spec.cmd, { cwd: spec.cwd, env: { ...process.env, ...unitEnvironment(root) }, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  const held: import("bun").Socket<undefined>[] = [];
  try {
    const until = performance.now() + 10_000;
    let first: import("bun").Socket<undefined> | null = null;
    while (first === null && performance.now() < until && proc.exitCode === null) {
      first = await echoOnce(spec.port);
      if (first === null) await Bun.sleep(10);
    }
    if (first === null) return { ok: false, error: "no first echo within 10 s" };
    first.end();
    // The pid is the pinned shell's, which exec'd the server.
    await Bun.sleep(1000);
    const rssAfterFirstEchoKiB = readMem(proc.pid).rssKiB;
    await Bun.sleep(spec.settleMs);
    const none = await measureWakeups(proc.pid, spec.windowMs);
    for (let i = 0; i < spec.idleConns; i++) {
      const s = await echoOnce(spec.port);
      if (s === null) return { ok: false, error: `idle connection ${i + 1} got no echo` };
      held.push(s);
    }
    await Bun.sleep(spec.settleMs);
    const busy = await measureWakeups(proc.pid, spec.windowMs);
    return {
      ok: true,
      rssAfterFirstEchoKiB,
      wakeupsNone: none.total,
      wakeupsNoneThreads: formatWakeups(none),
      wakeupsHeld: busy.total,
      wakeupsHeldThreads: formatWakeups(busy),
    };
  } finally {
    for (const s of held) s.end();
    proc.kill("SIGTERM");
    await proc.exited;
  }
}
