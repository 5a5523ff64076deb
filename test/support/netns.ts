// A private network namespace for tests that need a non-loopback peer.
// Traffic never leaves it: the namespace's own `lo` carries an extra address
// from 198.18.0.0/15 (the benchmarking range, RFC 2544), so a client inside
// the namespace reaches a server inside it from an address that is not
// loopback, without any veth, route or packet touching the host's network.
import { randomBytes } from "node:crypto";

export const NETNS_ADDRESS = "198.18.0.1";

export interface TestNetns {
  name: string;
  /** Argument prefix that runs a command inside the namespace. */
  exec: string[];
  remove(): void;
}

function run(cmd: string[]): { ok: boolean; err: string } {
  const r = Bun.spawnSync(cmd, { stdout: "ignore", stderr: "pipe" });
  return { ok: r.exitCode === 0, err: r.stderr.toString().trim() };
}

/** Create the namespace, or return the reason it cannot be made here (not root, no iproute2). */
export function createTestNetns(): TestNetns | string {
  if (process.getuid?.() !== 0) return "not root";
  if (!Bun.which("ip")) return "no `ip` command (iproute2)";
  const name = `epoll-echo-test-${randomBytes(4).toString("hex")}`;
  const steps = [
    ["ip", "netns", "add", name],
    ["ip", "-n", name, "link", "set", "lo", "up"],
    ["ip", "-n", name, "addr", "add", `${NETNS_ADDRESS}/32`, "dev", "lo"],
  ];
  for (const step of steps) {
    const r = run(step);
    if (!r.ok) {
      run(["ip", "netns", "del", name]);
      return `${step.join(" ")} failed: ${r.err}`;
    }
  }
  return {
    name,
    exec: ["ip", "netns", "exec", name],
    remove: () => void run(["ip", "netns", "del", name]),
  };
}

export type ExchangeProto = "tcp" | "udp" | "udp-connected";

/**
 * Run one exchange (see exchange.ts) from inside the namespace; the reply
 * bytes, or "timeout" when none came. With retryMs, udp-connected sends again
 * every retryMs until answered.
 */
export function tryExchangeInNetns(ns: TestNetns, proto: ExchangeProto, host: string, port: number, payload: string, timeoutMs = 5000, retryMs?: number): Buffer | "timeout" {
  const script = new URL("./exchange.ts", import.meta.url).pathname;
  const args = [proto, host, String(port), Buffer.from(payload).toString("hex"), String(timeoutMs), ...(retryMs === undefined ? [] : [String(retryMs)])];
  const r = Bun.spawnSync([...ns.exec, process.execPath, script, ...args]);
  if (r.exitCode === 3) return "timeout";
  if (r.exitCode !== 0) throw new Error(`exchange ${proto} ${host}:${port} exited ${r.exitCode}: ${r.stderr.toString()}`);
  return Buffer.from(r.stdout.toString().trim(), "hex");
}

/** Run one exchange (see exchange.ts) from inside the namespace; returns the reply bytes. */
export function exchangeInNetns(ns: TestNetns, proto: ExchangeProto, host: string, port: number, payload: string): Buffer {
  const reply = tryExchangeInNetns(ns, proto, host, port, payload);
  if (reply === "timeout") throw new Error(`exchange ${proto} ${host}:${port}: no reply`);
  return reply;
}
