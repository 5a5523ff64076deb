// The `scale` scenario of the benchmark (issue 14): 1, 2, 4, ... epoll-echo
// processes sharing one port with --reuse-port, under pipelined TCP load.
//
//   bun run bench --only scale [--instances 1,2,4,8] [--rounds N] [--seconds S]
//
// Per instance count N it starts N servers (`--reuse-port --instance scale-I
// --metrics 127.0.0.1:M`, each with its own metrics port) and L load
// processes (the binary's own `probe --load`, each checking every byte),
// which open their connections to the shared port: the kernel spreads them
// over the servers. The measured window is read from each server's own
// counters (`epoll_echo_tcp_lines_total` over GET /metrics) and its
// utime+stime (/proc/PID/stat) at the window's edges, so throughput, server
// CPU per line and each instance's share of the lines come from the servers,
// not from the client.
//
// Placement: when the machine has a CPU for every server and every load
// process, each is pinned to its own CPU (load on the first L CPUs, servers
// on the next N). Otherwise nothing is pinned and servers and load share the
// cores, which the row says: on a 2-core machine that is every row past
// N = 1, and the figures then show how the kernel divides two cores, not how
// epoll-echo scales. The scenario exists to be run on bigger machines.
import { join, resolve } from "node:path";
import { existsSync } from "node:fs";
import { median } from "../../src/core/latency.ts";
import { cpuSeconds, cpuTimes, USER_HZ } from "../../src/sys/procfs.ts";
import { freePort } from "./ports.ts";

const ROOT = resolve(import.meta.dir, "../..");
const EPOLL = join(ROOT, "epoll-echo");
const HOST = "127.0.0.1";
/** Its name in --only. */
export const SCALE = "scale";

export interface ScaleOptions {
  instances: number[];
  rounds: number;
  /** measured window, seconds */
  seconds: number;
  warmupMs: number;
  /** TCP connections in all, lines in flight on each, bytes per line (LF included) */
  connections: number;
  pipeline: number;
  size: number;
}

export interface ScaleRow {
  instances: number;
  loadProcs: number;
  /** every server and load process on a CPU of its own */
  pinned: boolean;
  linesPerSec: number;
  /** all servers together: % of one CPU, and µs of CPU per line */
  serverCpuPct: number;
  serverCpuUsPerLine: number;
  clientCpuPct: number;
  /** smallest and largest share of the window's lines one instance echoed, % */
  shareMinPct: number;
  shareMaxPct: number;
  /** CPU time of the whole machine in the window spent on neither (% of one CPU) */
  otherCpuPct: number;
  ok: boolean;
  error?: string;
}

export const SCALE_DEFAULTS = { instances: [1, 2, 4, 8], connections: 64, pipeline: 16, size: 64 } as const;

const cpuCount = (): number => navigator.hardwareConcurrency;

/** Busy CPU seconds of the whole machine (all CPUs together). */
const machineBusySeconds = (): number => cpuTimes().get("cpu")!.busy / USER_HZ;

async function linesEchoed(metricsPort: number): Promise<number> {
  const text = await (await fetch(`http://${HOST}:${metricsPort}/metrics`)).text();
  const m = /^epoll_echo_tcp_lines_total (\d+)$/m.exec(text);
  if (!m) throw new Error(`metrics on ${metricsPort}: no epoll_echo_tcp_lines_total`);
  return Number(m[1]);
}

async function waitForMetrics(port: number, proc: ReturnType<typeof Bun.spawn>): Promise<void> {
  const until = Date.now() + 10_000;
  for (;;) {
    try {
      await linesEchoed(port);
      return;
    } catch {
      if (proc.exitCode !== null || Date.now() > until) throw new Error(`server with --metrics ${HOST}:${port} did not come up (exit ${proc.exitCode})`);
      await Bun.sleep(20);
    }
  }
}

/**
 * Raise the soft fd limit to the hard one; pin to one CPU, or (null) allow
 * every CPU: run.ts pins itself, and so what it spawns, to the load CPU.
 */
function launch(cpu: number | null, cmd: string[]): string[] {
  const cpus = cpu === null ? `0-${cpuCount() - 1}` : String(cpu);
  return ["sh", "-c", `ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec taskset -c ${cpus} "$@"`, "sh", ...cmd];
}

/** `count` split into `parts` nearly equal whole parts. */
function split(count: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, i) => Math.floor(count / parts) + (i < count % parts ? 1 : 0));
}

async function measure(n: number, o: ScaleOptions): Promise<ScaleRow> {
  // One load process per instance, on at most half the CPUs (at least one).
  const loadProcs = Math.max(1, Math.min(n, Math.floor(cpuCount() / 2)));
  const pinned = cpuCount() >= n + loadProcs;
  const port = await freePort();
  const metricsPorts: number[] = [];
  for (let i = 0; i < n; i++) metricsPorts.push(await freePort());
  const servers = metricsPorts.map((mp, i) =>
    Bun.spawn(
      launch(pinned ? loadProcs + i : null, [EPOLL, "-q", "--max-tcp", "15000", "--reuse-port", "--instance", `scale-${i + 1}`, "--port", String(port), "--metrics", `${HOST}:${mp}`]),
      { cwd: ROOT, stdin: "ignore", stdout: "ignore", stderr: "pipe" },
    ),
  );
  const row: ScaleRow = { instances: n, loadProcs, pinned, linesPerSec: NaN, serverCpuPct: NaN, serverCpuUsPerLine: NaN, clientCpuPct: NaN, shareMinPct: NaN, shareMaxPct: NaN, otherCpuPct: NaN, ok: false };
  let loads: ReturnType<typeof Bun.spawn>[] = [];
  try {
    for (let i = 0; i < n; i++) await waitForMetrics(metricsPorts[i]!, servers[i]!);
    const duration = (o.warmupMs + o.seconds * 1000 + 1000) / 1000;
    loads = split(o.connections, loadProcs).map((c, i) =>
      Bun.spawn(
        launch(pinned ? i : null, [EPOLL, "probe", `${HOST}:${port}`, "--load", "--connections", String(c), "--pipeline", String(o.pipeline), "--size", String(o.size), "--duration", String(duration), "--json"]),
        { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "ignore" },
      ),
    );
    await Bun.sleep(o.warmupMs);
    const sample = async () => ({
      at: performance.now(),
      lines: await Promise.all(metricsPorts.map(linesEchoed)),
      server: servers.map((s) => cpuSeconds(s.pid)),
      client: loads.map((l) => cpuSeconds(l.pid)),
      machine: machineBusySeconds(),
    });
    const a = await sample();
    await Bun.sleep(o.seconds * 1000);
    const b = await sample();
    const reports = await Promise.all(loads.map(async (l) => JSON.parse((await new Response(l.stdout as ReadableStream).text()) || "{}") as { ok?: boolean; lost?: number; mismatched?: number; lines_per_s?: number }));
    await Promise.all(loads.map((l) => l.exited));
    const secs = (b.at - a.at) / 1000;
    const perInstance = b.lines.map((x, i) => x - a.lines[i]!);
    const lines = perInstance.reduce((s, x) => s + x, 0);
    const serverCpu = b.server.reduce((s, x, i) => s + x - a.server[i]!, 0);
    const clientCpu = b.client.reduce((s, x, i) => s + x - a.client[i]!, 0);
    Object.assign(row, {
      linesPerSec: lines / secs,
      serverCpuPct: (100 * serverCpu) / secs,
      serverCpuUsPerLine: lines > 0 ? (serverCpu * 1e6) / lines : NaN,
      clientCpuPct: (100 * clientCpu) / secs,
      shareMinPct: (100 * Math.min(...perInstance)) / lines,
      shareMaxPct: (100 * Math.max(...perInstance)) / lines,
      otherCpuPct: Math.max(0, (100 * (b.machine - a.machine - serverCpu - clientCpu)) / secs),
    });
    const bad = reports.find((r) => !r.ok || r.lost !== 0 || r.mismatched !== 0);
    const exited = servers.findIndex((s) => s.exitCode !== null);
    if (bad) row.error = `a load process failed: ${JSON.stringify(bad)}`;
    else if (exited >= 0) row.error = `server ${exited + 1} exited during the run (${servers[exited]!.exitCode})`;
    else if (perInstance.some((x) => x === 0)) row.error = `an instance echoed nothing: ${perInstance.join(", ")}`;
    else row.ok = true;
  } catch (err) {
    row.error = err instanceof Error ? err.message : String(err);
  } finally {
    for (const l of loads) l.kill("SIGKILL");
    for (const s of servers) s.kill("SIGTERM");
    await Promise.all([...servers, ...loads].map((p) => p.exited));
  }
  if (!row.ok) {
    const stderr = (await Promise.all(servers.map((s) => new Response(s.stderr as ReadableStream).text()))).join(" | ").trim();
    if (stderr) row.error += ` [server stderr: ${stderr.slice(0, 300)}]`;
  }
  return row;
}

/**
 * Every instance count, rounds interleaved; medians per count. `quiet` runs
 * before each measurement (run.ts waits there for a quiet machine).
 */
export async function runScale(o: ScaleOptions, log: (s: string) => void, quiet: () => Promise<unknown> = async () => {}): Promise<ScaleRow[]> {
  if (!existsSync(EPOLL)) throw new Error(`${EPOLL} is missing: bun run build`);
  const byCount = new Map<number, ScaleRow[]>();
  for (let round = 0; round < o.rounds; round++) {
    for (const n of o.instances) {
      log(`bench: scale · ${n} instance${n > 1 ? "s" : ""}${o.rounds > 1 ? ` · round ${round + 1}/${o.rounds}` : ""}`);
      await quiet();
      const row = await measure(n, o);
      if (!row.ok) log(`  ! scale ${n}: ${row.error}`);
      byCount.set(n, [...(byCount.get(n) ?? []), row]);
    }
  }
  return o.instances.map((n) => {
    const rows = byCount.get(n)!;
    const med = (k: keyof ScaleRow) => median(rows.map((r) => r[k] as number));
    const failed = rows.filter((r) => !r.ok);
    return {
      ...rows[0]!,
      linesPerSec: med("linesPerSec"),
      serverCpuPct: med("serverCpuPct"),
      serverCpuUsPerLine: med("serverCpuUsPerLine"),
      clientCpuPct: med("clientCpuPct"),
      shareMinPct: Math.min(...rows.map((r) => r.shareMinPct)),
      shareMaxPct: Math.max(...rows.map((r) => r.shareMaxPct)),
      otherCpuPct: Math.max(...rows.map((r) => r.otherCpuPct)),
      ok: failed.length === 0,
      error: failed.map((r) => r.error).join("; ") || undefined,
    };
  });
}

/** One line saying what the scenario does, with this run's numbers. */
export function describeScale(o: ScaleOptions): string {
  return `N epoll-echo processes with --reuse-port on one port (N = ${o.instances.join(", ")}), ${o.connections} TCP conns × ${o.pipeline} lines in flight × ${o.size} B from the binary's own \`probe --load\``;
}

export function scaleTable(rows: ScaleRow[]): string {
  const f = (x: number, d = 0) => (Number.isFinite(x) ? (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e4 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(d)) : "–");
  const one = rows.find((r) => r.instances === 1 && r.ok);
  const h = ["instances", "load procs", "placement", "throughput", "vs 1 instance", "server CPU % (all)", "server CPU µs/line", "instance share min–max %", "client CPU %", "other CPU %", "valid"];
  const lines = [`| ${h.join(" | ")} |`, `|${h.map(() => "---").join("|")}|`];
  for (const r of rows) {
    lines.push(
      `| ${r.instances} | ${r.loadProcs} | ${r.pinned ? "own CPU each" : `shared ${cpuCount()} cores`} | ${f(r.linesPerSec)} lines/s | ${one ? `${(r.linesPerSec / one.linesPerSec).toFixed(2)}×` : "–"} | ${f(r.serverCpuPct)} | ${f(r.serverCpuUsPerLine, 2)} | ${f(r.shareMinPct, 1)}–${f(r.shareMaxPct, 1)} | ${f(r.clientCpuPct)} | ${f(r.otherCpuPct)} | ${r.ok ? "ok" : `FAILED: ${r.error}`} |`,
    );
  }
  return lines.join("\n");
}

/** --instances 1,2,4,8: distinct whole numbers from 1 to 64, in the order given. */
export function parseInstances(raw: string): number[] {
  const ns = raw.split(",").map((s) => Number(s.trim()));
  if (ns.length === 0 || ns.some((n) => !Number.isInteger(n) || n < 1 || n > 64) || new Set(ns).size !== ns.length) {
    throw new Error(`--instances: expected distinct whole numbers from 1 to 64, comma-separated, got ${JSON.stringify(raw)}`);
  }
  return ns;
}
