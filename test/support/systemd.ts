// Test helpers for the systemd integration: free ports for wrappers that bind
// before the daemon exists, the sockets a process holds (ss -p), descriptor
// flags from /proc, a file-backed stderr watcher, and an AF_UNIX datagram
// listener standing in for systemd's notify socket (test/systemd/notify-listener.py).
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import * as net from "node:net";
import * as dgram from "node:dgram";
import type { Subprocess } from "bun";
import { ROOT } from "./daemon.ts";

export const SYSTEMD_TEST_DIR = join(ROOT, "test", "systemd");

/** A port free right now on `host` (the kernel's pick, released at once). */
export async function freePort(proto: "tcp" | "udp", host = "::1"): Promise<number> {
  if (proto === "tcp") {
    return new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.once("error", reject);
      srv.listen({ host, port: 0, exclusive: true }, () => {
        const port = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(port));
      });
    });
  }
  const sock = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  await new Promise<void>((resolve, reject) => {
    sock.once("error", reject);
    sock.bind({ address: host, port: 0, exclusive: true }, resolve);
  });
  const port = sock.address().port;
  await new Promise<void>((resolve) => sock.close(() => resolve()));
  return port;
}

export interface HeldSocket {
  proto: "tcp" | "udp";
  state: string;
  /** Send-Q: for a TCP listener, its backlog. */
  sendQ: number;
  local: string;
  fd: number;
}

/** Listening TCP and bound UDP sockets held by `pid`, from `ss -Hlnptu`. */
export function socketsOf(pid: number): HeldSocket[] {
  const r = Bun.spawnSync(["ss", "-Hlnptu"], { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`ss failed: ${r.stderr.toString()}`);
  const out: HeldSocket[] = [];
  for (const line of r.stdout.toString().split("\n")) {
    const m = /^(tcp|udp)\s+(\S+)\s+\d+\s+(\d+)\s+(\S+)\s+\S+\s+users:\((.*)\)\s*$/.exec(line);
    if (!m) continue;
    for (const owner of m[5]!.matchAll(/pid=(\d+),fd=(\d+)/g)) {
      if (Number(owner[1]) !== pid) continue;
      out.push({ proto: m[1] as "tcp" | "udp", state: m[2]!, sendQ: Number(m[3]), local: m[4]!, fd: Number(owner[2]) });
    }
  }
  return out;
}

/** Unix sockets in listening state held by `pid` (`ss -Hxlp`), as their local paths. */
export function unixListenersOf(pid: number): string[] {
  const r = Bun.spawnSync(["ss", "-Hxlp"], { stdout: "pipe", stderr: "pipe" });
  const out: string[] = [];
  for (const line of r.stdout.toString().split("\n")) {
    if (new RegExp(`pid=${pid},`).test(line)) out.push(line.trim().split(/\s+/)[4] ?? "");
  }
  return out;
}

/** The open-file flags of one descriptor of a process (octal in /proc/PID/fdinfo). */
export function fdFlags(pid: number, fd: number): number {
  const text = readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8");
  const m = /^flags:\s*([0-7]+)/m.exec(text);
  if (!m) throw new Error(`no flags in /proc/${pid}/fdinfo/${fd}`);
  return parseInt(m[1]!, 8);
}

export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

/** What each open descriptor of a process points to (readlink of /proc/PID/fd/N). */
export function fdTargets(pid: number): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of readdirSync(`/proc/${pid}/fd`)) {
    try {
      out.set(Number(name), readlinkSync(`/proc/${pid}/fd/${name}`));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** Wait until a file's content matches (a daemon whose stderr is a file has no pipe to watch). */
export async function waitForFile(path: string, pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    let text = "";
    try {
      text = readFileSync(path, "utf8");
    } catch {
      // not created yet
    }
    const m = text.match(pattern);
    if (m) return m;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${pattern} in ${path}:\n${text}`);
    await Bun.sleep(20);
  }
}

export interface NotifyMessage {
  /** The sender's pid, from SCM_CREDENTIALS (what systemd checks for NotifyAccess=main). */
  pid: number | null;
  /** The datagram as text: newline-separated KEY=VALUE assignments. */
  data: string;
  /** When it arrived (performance.now() of the test process). */
  at: number;
}

/** An AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET. */
export class NotifyListener {
  readonly messages: NotifyMessage[] = [];
  private waiters = new Set<() => void>();
  private done = false;

  private constructor(
    readonly address: string,
    private readonly proc: Subprocess<"ignore", "pipe", "pipe">,
  ) {}

  /** `address`: an absolute path, or "@name" for the abstract namespace. */
  static async open(address: string): Promise<NotifyListener> {
    const proc = Bun.spawn(["python3", join(SYSTEMD_TEST_DIR, "notify-listener.py"), address], {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const listener = new NotifyListener(address, proc);
    let bound!: () => void;
    const ready = new Promise<void>((resolve) => (bound = resolve));
    void (async () => {
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of proc.stdout) {
        buf += decoder.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const rec = JSON.parse(buf.slice(0, nl)) as { bound?: string; pid?: number | null; data?: string };
          buf = buf.slice(nl + 1);
          if (rec.bound !== undefined) bound();
          else listener.messages.push({ pid: rec.pid ?? null, data: rec.data ?? "", at: performance.now() });
          listener.wake();
        }
      }
      listener.done = true;
      listener.wake();
    })();
    const failed = proc.exited.then(
      async (code) => new Error(`notify-listener exited (${code}): ${await new Response(proc.stderr).text()}`),
    );
    const err = await Promise.race([ready.then(() => null), failed]);
    if (err) throw err;
    return listener;
  }

  /** Every assignment received so far, in order, e.g. ["READY=1", "STATUS=...", "WATCHDOG=1"]. */
  assignments(): string[] {
    return this.messages.flatMap((m) => m.data.split("\n").filter((l) => l !== ""));
  }

  /** Wait until an assignment matches; returns it. */
  waitFor(pattern: RegExp, timeoutMs = 10_000, after = 0): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.assignments().slice(after).find((a) => pattern.test(a));
        if (hit !== undefined) {
          finish();
          resolve(hit);
        } else if (this.done) {
          finish();
          reject(new Error(`notify listener ended before ${pattern}; got ${JSON.stringify(this.assignments())}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`timed out waiting for ${pattern}; got ${JSON.stringify(this.assignments())}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  async close(): Promise<void> {
    this.proc.kill("SIGTERM");
    await this.proc.exited;
  }

  private wake() {
    for (const w of this.waiters) w();
  }
}
