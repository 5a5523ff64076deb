// Start the compiled ./epoll-echo as a child process and wait for its
// readiness line: the way every end-to-end test meets the real binary.
import { join } from "node:path";
import type { Subprocess } from "bun";

export const ROOT = join(import.meta.dir, "..", "..");
export const BINARY = join(ROOT, "epoll-echo");

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
  const cmd = opts.command ?? [BINARY];
  const proc = Bun.spawn([...cmd, ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    cwd: opts.cwd,
    env: { ...process.env, NO_COLOR: "1", ...opts.env } as Record<string, string>,
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

  const waitForLog = (pattern: RegExp, timeoutMs = opts.timeoutMs ?? 10_000) =>
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
  const r = Bun.spawnSync([BINARY, ...args], { env: { ...process.env, NO_COLOR: "1", ...env }, stdin: "ignore" });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}
