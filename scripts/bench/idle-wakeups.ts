// The `wakeups` figure of `bun run bench` (issue 15): how often a server's
// threads wake while nothing happens, and its RSS at rest. The server is
// started with the packaged unit's Environment= (the way systemd and the image
// start it); then, after the first echo:
//   RSS 1 s after the first echo (VmRSS, and by kind from smaps),
//   wakeups with no clients over a window after a settle,
//   wakeups with N idle TCP connections (each echoed one line) over a window.
// Then it is started again directly, without those settings (`./epoll-echo`
// from a shell), for the no-clients window once more.
// Runs in the bench runner itself: no load client is needed.
import type { Subprocess } from "bun";
import { readMem } from "../../src/sys/procfs.ts";
import { formatRss, formatWakeups, measureWakeups, rssComposition, unitEnvironment, withoutUnitEnvironment } from "./wakeups.ts";

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
  /** The same RSS by kind: "15.3 (code 3.8, constants 4.3, anon 4.0, other 3.3)" MiB. */
  rssComposition?: string;
  wakeupsNone?: number;
  wakeupsNoneThreads?: string;
  wakeupsHeld?: number;
  wakeupsHeldThreads?: string;
  /** Started directly, without the unit's settings: no clients. */
  wakeupsDirect?: number;
  wakeupsDirectThreads?: string;
}

type Conn = import("bun").Socket<undefined>;

/** One TCP line echoed on a fresh connection, which is left open; null if the server did not answer. */
function echoOnce(port: number): Promise<Conn | null> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (s: Conn | null) => {
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

/** Start the server with `env` and close its first echoed connection; null if it never echoed. */
async function startEchoed(spec: IdleSpec, env: Record<string, string | undefined>): Promise<{ proc: Subprocess; echoed: boolean }> {
  const proc = Bun.spawn(spec.cmd, { cwd: spec.cwd, env, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  const until = performance.now() + 10_000;
  let first: Conn | null = null;
  while (first === null && performance.now() < until && proc.exitCode === null) {
    first = await echoOnce(spec.port);
    if (first === null) await Bun.sleep(10);
  }
  first?.end();
  return { proc, echoed: first !== null };
}

async function stopServer(proc: Subprocess): Promise<void> {
  proc.kill("SIGTERM");
  await proc.exited;
}

export async function idleWakeups(spec: IdleSpec, root: string): Promise<IdleResult> {
  const { proc, echoed } = await startEchoed(spec, { ...process.env, ...unitEnvironment(root) });
  const held: Conn[] = [];
  let result: IdleResult;
  try {
    if (!echoed) return { ok: false, error: "no first echo within 10 s" };
    // The pid is the pinned shell's, which exec'd the server.
    await Bun.sleep(1000);
    const rssAfterFirstEchoKiB = readMem(proc.pid).rssKiB;
    const rss = formatRss(rssComposition(proc.pid));
    await Bun.sleep(spec.settleMs);
    const none = await measureWakeups(proc.pid, spec.windowMs);
    for (let i = 0; i < spec.idleConns; i++) {
      const s = await echoOnce(spec.port);
      if (s === null) return { ok: false, error: `idle connection ${i + 1} got no echo` };
      held.push(s);
    }
    await Bun.sleep(spec.settleMs);
    const busy = await measureWakeups(proc.pid, spec.windowMs);
    result = {
      ok: true,
      rssAfterFirstEchoKiB,
      rssComposition: rss,
      wakeupsNone: none.total,
      wakeupsNoneThreads: formatWakeups(none),
      wakeupsHeld: busy.total,
      wakeupsHeldThreads: formatWakeups(busy),
    };
  } finally {
    for (const s of held) s.end();
    await stopServer(proc);
  }
  const direct = await startEchoed(spec, withoutUnitEnvironment(process.env, root));
  try {
    if (!direct.echoed) return { ...result, ok: false, error: "direct start: no first echo within 10 s" };
    await Bun.sleep(spec.settleMs);
    const none = await measureWakeups(direct.proc.pid, spec.windowMs);
    return { ...result, wakeupsDirect: none.total, wakeupsDirectThreads: formatWakeups(none) };
  } finally {
    await stopServer(direct.proc);
  }
}
