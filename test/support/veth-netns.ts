// A throw-away network namespace joined to this one by a veth pair, so a test
// can reach a server running in the root namespace (e.g. bound to `::`) from
// a peer that is *not* loopback, while every packet stays inside this machine.
// (netns.ts, by contrast, runs server and client inside one namespace on its
// own lo; use this one when the server must stay where it is.) Both ends are
// ours: the root-side address lives on the host end of the veth, the peer
// address inside the namespace, in a /30 picked at random from 198.18.0.0/15
// (RFC 2544 benchmarking space, never routed) plus a matching ULA /64 for IPv6.
// destroy() removes the namespace, which removes both veth ends and their
// addresses and routes.
//
//   const reason = vethNetnsUnavailable();   // string => skip the test with it
//   const ns = createVethNetns();            // root end ns.hostAddress, peer ns.nsAddress
//   Bun.spawn(ns.command(["bun", "client.ts", ns.hostAddress, String(port)]));
//   ns.run(["ip", "addr"]);                  // synchronous, inside the namespace
//   ns.destroy();                            // idempotent; also runs at process exit
import { randomInt } from "node:crypto";

export interface VethNetns {
  /** Namespace name (for `ip netns exec NAME ...`). */
  readonly name: string;
  /** veth end in this (the root) namespace. */
  readonly hostIf: string;
  /** veth end inside the namespace. */
  readonly nsIf: string;
  /** IPv4 address of the root-side veth end: what a client in the namespace connects to. */
  readonly hostAddress: string;
  /** IPv4 address inside the namespace: the peer address the server sees. */
  readonly nsAddress: string;
  /** IPv6 (ULA) address of the root-side end, or null if IPv6 could not be set up. */
  readonly hostAddress6: string | null;
  /** IPv6 (ULA) address inside the namespace, or null. */
  readonly nsAddress6: string | null;
  /** argv that runs `argv` inside the namespace (for Bun.spawn). */
  command(argv: string[]): string[];
  /** Run a command inside the namespace to completion. */
  run(argv: string[], timeoutMs?: number): { code: number; stdout: string; stderr: string };
  /** Delete the namespace (and with it the veth pair). Safe to call twice. */
  destroy(): void;
}

const PREFIX = "eens";

function sh(argv: string[], timeoutMs = 10_000): { code: number; stdout: string; stderr: string } {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe", stdin: "ignore", timeout: timeoutMs });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

function must(argv: string[]): string {
  const r = sh(argv);
  if (r.code !== 0) throw new Error(`${argv.join(" ")} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** null when namespaces can be made here, else the reason to print when skipping. */
export function vethNetnsUnavailable(): string | null {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (Bun.which("ip") === null) return "the `ip` command (iproute2) is not installed";
  if (typeof process.getuid === "function" && process.getuid() !== 0) return "creating a network namespace needs root";
  const probe = `${PREFIX}-probe-${process.pid}`;
  const add = sh(["ip", "netns", "add", probe]);
  if (add.code !== 0) return `ip netns add failed: ${add.stderr.trim() || `exit ${add.code}`}`;
  sh(["ip", "netns", "del", probe]);
  return null;
}

/** Delete namespaces left by earlier runs of this helper whose process is gone. */
export function sweepStaleVethNetns(): void {
  const list = sh(["ip", "netns", "list"]).stdout;
  for (const line of list.split("\n")) {
    const name = line.trim().split(/\s+/)[0] ?? "";
    const m = new RegExp(`^${PREFIX}-(\\d+)-\\d+$`).exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
    if (!alive) sh(["ip", "netns", "del", name]);
  }
}

let counter = 0;
const live = new Set<VethNetns>();
let exitHook = false;

/** IPv4 addresses (with prefix) present on any interface of this namespace. */
function addressesInUse(): string {
  return sh(["ip", "-o", "addr", "show"]).stdout + sh(["ip", "route", "show", "table", "all"]).stdout;
}

/**
 * Create the namespace and the veth pair, address both ends and bring them up.
 * Throws (after cleaning up) if any step fails.
 */
export function createVethNetns(): VethNetns {
  sweepStaleVethNetns();
  const n = counter++;
  const tag = `${process.pid % 100000}x${n}`;
  const name = `${PREFIX}-${process.pid}-${n}`;
  const hostIf = `eeh${tag}`.slice(0, 15);
  const nsIf = `een${tag}`.slice(0, 15);

  // A /30 in 198.18.0.0/15 nobody on this machine uses yet.
  const used = addressesInUse();
  let hostAddress = "";
  let nsAddress = "";
  let block = 0;
  for (let attempt = 0; attempt < 64; attempt++) {
    block = randomInt(1, 32767); // 131072 addresses / 4
    const base = (198 << 24) + (18 << 16) + block * 4;
    const dotted = (v: number) => [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join(".");
    const net = dotted(base);
    if (used.includes(`${net}/30`) || used.includes(dotted(base + 1)) || used.includes(dotted(base + 2))) continue;
    hostAddress = dotted(base + 1);
    nsAddress = dotted(base + 2);
    break;
  }
  if (hostAddress === "") throw new Error("no free /30 in 198.18.0.0/15");
  const v6net = `fd65:6563:686f:${block.toString(16)}`;

  let created = false;
  const destroy = () => {
    if (!created) return;
    created = false;
    live.delete(ns);
    sh(["ip", "netns", "del", name]);
    // The veth pair goes with the namespace; this covers a half-made setup.
    sh(["ip", "link", "del", hostIf]);
  };
  const ns: VethNetns = {
    name,
    hostIf,
    nsIf,
    hostAddress,
    nsAddress,
    hostAddress6: null,
    nsAddress6: null,
    command: (argv) => ["ip", "netns", "exec", name, ...argv],
    run: (argv, timeoutMs) => sh(["ip", "netns", "exec", name, ...argv], timeoutMs),
    destroy,
  };

  try {
    must(["ip", "netns", "add", name]);
    created = true;
    live.add(ns);
    if (!exitHook) {
      exitHook = true;
      process.on("exit", () => {
        for (const x of [...live]) x.destroy();
      });
    }
    must(["ip", "link", "add", hostIf, "type", "veth", "peer", "name", nsIf, "netns", name]);
    must(["ip", "addr", "add", `${hostAddress}/30`, "dev", hostIf]);
    must(["ip", "link", "set", hostIf, "up"]);
    must(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"]);
    must(["ip", "netns", "exec", name, "ip", "addr", "add", `${nsAddress}/30`, "dev", nsIf]);
    must(["ip", "netns", "exec", name, "ip", "link", "set", nsIf, "up"]);
    // IPv6 is a bonus: nodad so the addresses are usable at once.
    const h6 = `${v6net}::1`;
    const n6 = `${v6net}::2`;
    const a = sh(["ip", "-6", "addr", "add", `${h6}/64`, "dev", hostIf, "nodad"]);
    const b = sh(["ip", "netns", "exec", name, "ip", "-6", "addr", "add", `${n6}/64`, "dev", nsIf, "nodad"]);
    if (a.code === 0 && b.code === 0) {
      (ns as { hostAddress6: string | null }).hostAddress6 = h6;
      (ns as { nsAddress6: string | null }).nsAddress6 = n6;
    }
    // Wait (bounded) until both ends report carrier (no ping needed).
    const deadline = performance.now() + 5000;
    const up = () =>
      sh(["ip", "-o", "link", "show", "dev", hostIf]).stdout.includes("state UP") &&
      sh(["ip", "netns", "exec", name, "ip", "-o", "link", "show", "dev", nsIf]).stdout.includes("state UP");
    while (!up()) {
      if (performance.now() > deadline) throw new Error(`namespace ${name}: veth pair ${hostIf}/${nsIf} did not come up`);
      Bun.sleepSync(50);
    }
  } catch (err) {
    destroy();
    throw err;
  }
  return ns;
}
