// Shared machinery of the stress suite (test/stress/): the profile (short for
// CI, full for `bun run stress`), load-generating child processes that speak
// JSON lines, and the figures each scenario prints and records.
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { ROOT } from "./daemon.ts";

export type Profile = "short" | "full";

/** STRESS_PROFILE=full|short (default short). */
export const PROFILE: Profile = process.env.STRESS_PROFILE === "full" ? "full" : "short";

/** The value for the running profile. */
export const pick = <T>(short: T, full: T): T => (PROFILE === "full" ? full : short);

/** Where the child scripts live. */
export const CLIENTS = join(ROOT, "test", "stress", "clients");

/** Hard limit on descriptors here; children and servers are given this much. */
export const NOFILE = 20000;

/** After a burst is over, RSS is back within this much of idle ... */
export const RSS_BACK_MIB = 16;
/** ... within this long (issue 12). */
export const RSS_BACK_MS = 10_000;

const RESULTS = process.env.STRESS_RESULTS;

/**
 * Print a scenario's figures as one line (`[stress] name: k=v ...`) and, when
 * STRESS_RESULTS names a file, append them to it as JSON for the summary.
 */
export function figures(scenario: string, data: Record<string, unknown>): void {
  const shown = Object.entries(data)
    .map(([k, v]) => `${k}=${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(3) : String(v)}`)
    .join(" ");
  console.log(`[stress:${PROFILE}] ${scenario}: ${shown}`);
  if (RESULTS) appendFileSync(RESULTS, JSON.stringify({ scenario, profile: PROFILE, ...data }) + "\n");
}

export interface ChildMessage {
  ev: string;
  [key: string]: unknown;
}

export interface ChildOptions {
  /** Argument prefix, e.g. `ip netns exec NAME` or `prlimit --nofile=...`. */
  prefix?: string[];
  env?: Record<string, string>;
}

/**
 * A load generator in its own process: `bun test/stress/clients/<script> '<json args>'`.
 * It reports JSON lines on stdout ({"ev": ...}) and takes JSON lines on stdin.
 */
export class Child {
  readonly proc: Subprocess<"pipe", "pipe", "pipe">;
  private readonly inbox: ChildMessage[] = [];
  private wake: (() => void) | null = null;
  private err = "";
  private done = false;
  readonly exited: Promise<number>;

  constructor(
    readonly script: string,
    args: unknown,
    opts: ChildOptions = {},
  ) {
    const cmd = [...(opts.prefix ?? []), process.execPath, join(CLIENTS, script), JSON.stringify(args)];
    const proc = Bun.spawn(cmd, {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, ...opts.env } as Record<string, string>,
    });
    this.proc = proc;
    const pumpOut = (async () => {
      const dec = new TextDecoder();
      let buf = "";
      for await (const chunk of proc.stdout) {
        buf += dec.decode(chunk, { stream: true });
        let nl: number;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.startsWith("{")) {
            try {
              this.inbox.push(JSON.parse(line) as ChildMessage);
            } catch {
              this.err += `unparsable line: ${line}\n`;
            }
          } else if (line.trim() !== "") {
            this.err += `stdout: ${line}\n`;
          }
        }
        this.wake?.();
      }
    })();
    const pumpErr = (async () => {
      const dec = new TextDecoder();
      for await (const chunk of proc.stderr) this.err += dec.decode(chunk, { stream: true });
    })();
    this.exited = proc.exited.then(async (code) => {
      await Promise.all([pumpOut, pumpErr]);
      this.done = true;
      this.wake?.();
      return code;
    });
  }

  get pid(): number {
    return this.proc.pid;
  }

  get stderr(): string {
    return this.err;
  }

  /** Send one command line (JSON) to the child. */
  send(msg: Record<string, unknown>): void {
    if (this.done) return;
    try {
      this.proc.stdin.write(JSON.stringify(msg) + "\n");
      this.proc.stdin.flush();
    } catch {
      // the child is gone; waitFor reports it
    }
  }

  /** The next message with this `ev` (earlier ones of other kinds are kept). */
  async waitFor(ev: string, timeoutMs: number): Promise<ChildMessage> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.ev === ev || m.ev === "fatal");
      if (i >= 0) {
        const [m] = this.inbox.splice(i, 1);
        if (m!.ev === "fatal") throw new Error(`${this.script}: ${String(m!.message)}\n${this.err}`);
        return m!;
      }
      if (this.done) throw new Error(`${this.script} exited (code ${this.proc.exitCode}) before '${ev}'; stderr:\n${this.err}`);
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`${this.script}: no '${ev}' within ${timeoutMs} ms; stderr:\n${this.err}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.wake = null;
    }
  }

  /** Every message of this kind received so far (removed from the inbox). */
  drain(ev: string): ChildMessage[] {
    const out = this.inbox.filter((m) => m.ev === ev);
    for (const m of out) this.inbox.splice(this.inbox.indexOf(m), 1);
    return out;
  }

  /** SIGKILL it (if still running) and wait for it. */
  async kill(): Promise<void> {
    if (!this.done) this.proc.kill("SIGKILL");
    await this.exited;
  }
}

/** Resolve all children's `ev` messages (fails fast on the first error). */
export function waitAll(children: Child[], ev: string, timeoutMs: number): Promise<ChildMessage[]> {
  return Promise.all(children.map((c) => c.waitFor(ev, timeoutMs)));
}

/** Microseconds on the clock the child scripts use (clients/lib.ts nowUs): wall clock, sub-ms. */
export const wallUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

/** Sum a numeric field over messages. */
export const sum = (msgs: ChildMessage[], key: string): number => msgs.reduce((n, m) => n + Number(m[key] ?? 0), 0);
/** Largest value of a numeric field over messages. */
export const max = (msgs: ChildMessage[], key: string): number => msgs.reduce((n, m) => Math.max(n, Number(m[key] ?? 0)), 0);

/** Split `total` into `parts` near-equal whole shares. */
export function shares(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(total / parts) + (i < total % parts ? 1 : 0));
}

/** Poll `cond` every `everyMs` until true or `timeoutMs` passes; returns whether it held. */
export async function eventually(cond: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await cond()) return true;
    if (performance.now() >= deadline) return false;
    await Bun.sleep(everyMs);
  }
}

/** Count lines of a daemon's stderr that match. */
export const countLines = (text: string, pattern: RegExp): number => text.split("\n").filter((l) => pattern.test(l)).length;

/** Ask the server's /stats over a fresh TCP connection: [total_clients, tcp_connected_now, udp_active]. */
export async function tcpStats(port: number, host = "127.0.0.1"): Promise<[number, number, number]> {
  const { TcpClient } = await import("./net.ts");
  const c = await TcpClient.connect(port, host);
  try {
    c.send("/stats\n");
    await c.until(() => c.data.includes(0x0a), 5000, "/stats reply");
    const line = c.data.toString("latin1");
    const m = /^(\d+) (\d+) (\d+)\n$/.exec(line);
    if (!m) throw new Error(`unexpected /stats reply ${JSON.stringify(line)}`);
    return [Number(m[1]), Number(m[2]), Number(m[3])];
  } finally {
    c.close();
  }
}

/** One echo round trip on a fresh connection (is the server still serving?): the reply time in ms. `before`: a PROXY header. */
export async function echoProbe(port: number, host = "127.0.0.1", timeoutMs = 5000, before?: Uint8Array): Promise<number> {
  const { TcpClient } = await import("./net.ts");
  const t0 = performance.now();
  const c = await TcpClient.connect(port, host);
  try {
    const line = `probe ${Math.random()}\n`;
    if (before) c.send(before);
    c.send(line);
    const got = (await c.read(line.length, timeoutMs)).toString("latin1");
    if (got !== line) throw new Error(`probe echo mismatch: ${JSON.stringify(got)}`);
    return performance.now() - t0;
  } finally {
    c.close();
  }
}
