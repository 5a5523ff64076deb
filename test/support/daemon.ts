// Start the compiled ./epoll-echo as a child process and wait for its
// readiness line: the way every end-to-end test meets the real binary.
//
// The same tests run against any build of the binary:
//   EPOLL_ECHO_BIN=path        the binary under test (default ./epoll-echo)
//   EPOLL_ECHO_LAUNCHER="..."  a command prefix that runs it, split on spaces,
//                              e.g. "qemu-aarch64 -L /usr/aarch64-linux-gnu"
//   EPOLL_ECHO_TIME_SCALE=N    multiply the harness's waits by N (an emulated
//                              binary starts in ~1.7 s instead of ~10 ms)
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { unitEnvironment } from "../../scripts/bench/wakeups.ts";

export const ROOT = join(import.meta.dir, "..", "..");
export const BINARY = process.env.EPOLL_ECHO_BIN ? resolve(process.env.EPOLL_ECHO_BIN) : join(ROOT, "epoll-echo");
const LAUNCHER = (process.env.EPOLL_ECHO_LAUNCHER ?? "").split(" ").filter((w) => w !== "");
/** The command that runs the binary under test: the launcher (if any), then the binary. */
export const LAUNCH: readonly string[] = [...LAUNCHER, BINARY];
/** Factor for waits on the binary (EPOLL_ECHO_TIME_SCALE, default 1). */
export const TIME_SCALE = Math.max(1, Number(process.env.EPOLL_ECHO_TIME_SCALE) || 1);

/**
 * The environment a test daemon gets: the packaged unit's Environment= (the
 * runtime's idle settings, as the units and the image run it: no re-exec at
 * rest, which also works under a launcher), then `extra`; a variable set to
 * undefined in `extra` is left out (a direct start: test/e2e/reexec.test.ts).
 */
export function daemonEnv(extra: Record<string, string | undefined> = {}): Record<string, string> {
  const all: Record<string, string | undefined> = { ...process.env, NO_COLOR: "1", ...unitEnvironment(ROOT), ...extra };
  return Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined));
}

const READY = /listening \(TCP port=(\d+), UDP port=(\d+)\)/;

export interface Daemon {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  pid: number;
  tcpPort: number;
  udpPort: number;
  /** Everything written to stderr so far. */
  stderr(): string;
  /** Resolves with the exit code. */
  exited: Promise<number>;
  /** Wait until stderr matches (or the timeout passes, then throw). */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** SIGTERM (if still running) and wait for exit; returns the exit code. */
  stop(): Promise<number>;
}

export interface StartOptions {
  env?: Record<string, string | undefined>;
  /** Replace the binary, e.g. with a wrapper such as systemd-socket-activate. */
  command?: string[];
  /** Resolve as soon as the process is spawned, without waiting for the ready line. */
  noWait?: boolean;
  timeoutMs?: number;
  cwd?: string;
}

/** Start epoll-echo with `args` (add `--port 0` yourself if you want any free port). */
export async function startDaemon(args: string[], opts: StartOptions = {}): Promise<Daemon> {
  const cmd = opts.command ?? LAUNCH;
  const proc = Bun.spawn([...cmd, ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    cwd: opts.cwd,
    env: daemonEnv(opts.env),
  });
  let text = "";
  const waiters = new Set<() => void>();
  const pump = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) {
      text += decoder.decode(chunk, { stream: true });
      for (const w of waiters) w();
    }
    for (const w of waiters) w();
  })();
  void (async () => {
    for await (const _ of proc.stdout) {
      // drained so a chatty child never blocks on a full pipe
    }
  })();
  const exited = proc.exited.then(async (code) => {
    await pump;
    return code;
  });
  let done = false;
  void exited.then(() => {
    done = true;
    for (const w of waiters) w();
  });

  const waitForLog = (pattern: RegExp, timeoutMs = (opts.timeoutMs ?? 10_000) * TIME_SCALE) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = text.match(pattern);
        if (m) {
          cleanup();
          resolve(m);
        } else if (done) {
          cleanup();
          reject(new Error(`epoll-echo exited before logging ${pattern}; stderr:\n${text}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${pattern}; stderr:\n${text}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
      };
      waiters.add(check);
      check();
    });

  const daemon: Daemon = {
    proc,
    pid: proc.pid,
    tcpPort: 0,
    udpPort: 0,
    stderr: () => text,
    exited,
    waitForLog,
    async stop() {
      if (!done) proc.kill("SIGTERM");
      return exited;
    },
  };
  if (opts.noWait) return daemon;
  try {
    const m = await waitForLog(READY);
    daemon.tcpPort = Number(m[1]);
    daemon.udpPort = Number(m[2]);
  } catch (err) {
    proc.kill("SIGKILL");
    throw err;
  }
  return daemon;
}

/** Run the binary to completion (for flags that exit at once). */
export function runBinary(args: string[], env?: Record<string, string>): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync([...LAUNCH, ...args], { env: daemonEnv(env), stdin: "ignore" });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}
