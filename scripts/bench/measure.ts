// One measurement of the benchmark, in its own process that run.ts pins to
// the load CPU; prints one JSON result line on stdout.
//
//   bun scripts/bench/measure.ts '<json MeasureSpec>'
//
// The load is the probe's own engine (src/probe/load.ts), driven phase by
// phase: connect, warm up, reset its counters as the measured window starts,
// read the counts as it ends, then let every line in flight come back. At
// the window's edges this reads the server's CPU time and its own, and each
// CPU's busy time, from /proc (src/sys/procfs.ts).
import { median } from "../../src/core/latency.ts";
import { LoadEngine, type EngineParams } from "../../src/probe/load.ts";
import { PLAIN, type Endpoint, type StreamOptions } from "../../src/probe/net.ts";
import { cpuSeconds, cpuTimes, readMem, USER_HZ, type CpuTime } from "../../src/sys/procfs.ts";
import { firstTcpEcho, firstUdpEcho } from "./first-echo.ts";
import { freePort } from "./ports.ts";

export interface MeasureSpec {
  scenario: "stream" | "udp" | "churn" | "idle" | "startup";
  host: string;
  tcpPort: number;
  udpPort: number;
  serverPid: number;
  /** stream: connections; udp: sockets; churn: connections at a time; idle: connections */
  conns: number;
  /** lines (datagrams) in flight per connection (socket) */
  window: number;
  lineLen: number;
  warmupMs: number;
  measureMs: number;
  /** the CPUs the server and this process are pinned to, for the noise check */
  serverCpu: string;
  loadCpu: string;
  /** startup only: the server commands (without --port), started in turn, and how many starts each */
  cmds?: string[][];
  runs?: number;
  /** idle only: how long to wait before and after connecting */
  settleMs?: number;
  /** stream only: TLS to tcpPort (no verification: the cost measured is the server's) */
  tls?: boolean;
  /** stream only: a PROXY header (v1 or v2) with the connection's own addresses first */
  proxy?: 1 | 2;
}

export interface MeasureResult {
  ok: boolean;
  error?: string;
  /** lines, datagrams or connections completed in the window */
  ops: number;
  seconds: number;
  opsPerSec: number;
  mbPerSec: number;
  p50us?: number;
  p99us?: number;
  p999us?: number;
  serverCpuMs: number;
  serverCpuPct: number;
  serverCpuUsPerOp: number;
  clientCpuPct: number;
  /** CPU time (%) on the server's / the load's CPU that went to neither: noise */
  otherOnServerCpuPct?: number;
  otherOnLoadCpuPct?: number;
  /** echoes that differed from what was sent (must be 0) */
  mismatches: number;
  /** lines/datagrams sent but never echoed back (UDP: lost; TCP: must be 0) */
  lost: number;
  rssBeforeKiB?: number;
  rssAfterKiB?: number;
  kibPerConn?: number;
  startupTcpMs?: number;
  startupUdpMs?: number;
  startupTcpAllMs?: number[];
  startupUdpAllMs?: number[];
  /** startup only: one result per command of `cmds`, in that order */
  startupPerCmd?: MeasureResult[];
}

const sleep = (ms: number) => Bun.sleep(ms);

// ---------------------------------------------------------------- the measured window

/** Share (%) of a CPU's time in the window that went to other work than `ownMs`. */
function otherPct(a: Map<string, CpuTime>, b: Map<string, CpuTime>, cpu: string, ownMs: number): number {
  const x = a.get(cpu);
  const y = b.get(cpu);
  if (!x || !y || y.total === x.total) return NaN;
  const busyMs = ((y.busy - x.busy) * 1000) / USER_HZ;
  const totalMs = ((y.total - x.total) * 1000) / USER_HZ;
  return Math.max(0, (100 * (busyMs - ownMs)) / totalMs);
}

/** What the window's figures are made of, read at each of its edges. */
interface Edge {
  t: number;
  serverCpuS: number;
  selfCpuS: number;
  cpus: Map<string, CpuTime>;
}

function edge(spec: MeasureSpec): Edge {
  return { t: performance.now(), serverCpuS: cpuSeconds(spec.serverPid), selfCpuS: cpuSeconds("self"), cpus: cpuTimes() };
}

function windowFigures(spec: MeasureSpec, a: Edge, b: Edge, ops: number, bytes: number) {
  const seconds = (b.t - a.t) / 1000;
  const srvMs = (b.serverCpuS - a.serverCpuS) * 1000;
  const cliMs = (b.selfCpuS - a.selfCpuS) * 1000;
  return {
    ops,
    seconds,
    opsPerSec: ops / seconds,
    mbPerSec: bytes / seconds / 1e6,
    serverCpuMs: srvMs,
    serverCpuPct: srvMs / 10 / seconds,
    serverCpuUsPerOp: ops > 0 ? (srvMs * 1000) / ops : NaN,
    clientCpuPct: cliMs / 10 / seconds,
    otherOnServerCpuPct: otherPct(a.cpus, b.cpus, `cpu${spec.serverCpu}`, srvMs),
    otherOnLoadCpuPct: otherPct(a.cpus, b.cpus, `cpu${spec.loadCpu}`, cliMs),
  };
}

// ---------------------------------------------------------------- the engine's runs

/** Load problems the engine reported (it counts them too): any of them fails the measurement. */
class Events {
  count = 0;
  first = "";
  readonly on = (message: string) => {
    this.count++;
    this.first ||= message;
  };
}

function engine(spec: MeasureSpec, events: Events, extra: Partial<EngineParams> = {}): LoadEngine {
  return new LoadEngine({
    endpoint: endpointOf(spec.host, spec.scenario === "udp" ? spec.udpPort : spec.tcpPort),
    stream: streamOf(spec),
    udp: false,
    connections: spec.conns,
    pipeline: spec.window,
    size: spec.lineLen,
    timeoutMs: 5000,
    onEvent: events.on,
    ...extra,
  });
}

function streamOf(spec: MeasureSpec): StreamOptions {
  if (!spec.tls && !spec.proxy) return PLAIN;
  return { tls: spec.tls ? { ca: null, serverName: "localhost" } : null, proxy: spec.proxy ?? null };
}

function endpointOf(host: string, port: number): Endpoint {
  return { address: host, family: host.includes(":") ? 6 : 4, port };
}

const us = (ms: number) => ms * 1000;

/**
 * stream, udp, churn: warm up, then count only what completes in the window.
 * TCP lines must all come back; UDP datagrams may be lost (counted).
 */
async function windowed(spec: MeasureSpec, extra: Partial<EngineParams>, what: string): Promise<MeasureResult> {
  const events = new Events();
  const load = engine(spec, events, extra);
  await load.open();
  load.start();
  await sleep(spec.warmupMs);
  load.resetCounters();
  const from = edge(spec);
  await sleep(spec.measureMs);
  const to = edge(spec);
  const { received, bytes } = load.counters;
  const rtt = load.counters.latency();
  const p50us = us(rtt.percentile(50));
  const p99us = us(rtt.percentile(99));
  const p999us = us(rtt.percentile(99.9));
  load.stopSending();
  await load.settle();
  load.close();
  const c = load.counters;
  const udp = extra.udp === true;
  const error = c.mismatched
    ? `${c.mismatched} ${what} differ from what was sent`
    : !udp && c.lost
      ? `${c.lost} lines never echoed`
      : events.count
        ? `${events.count} connection problems (first: ${events.first})`
        : undefined;
  return { ok: !error, error, ...windowFigures(spec, from, to, received, bytes), p50us, p99us, p999us, mismatches: c.mismatched, lost: c.lost };
}

/** idle: N connections each echo one line and stay open; RSS before and after, CPU for the setup. */
async function idle(spec: MeasureSpec): Promise<MeasureResult> {
  const oneLine = { pipeline: 1, budget: { lines: 1, then: "idle" as const } };
  const settleMs = spec.settleMs ?? 1000;
  const allEchoed = async (load: LoadEngine, n: number) => {
    const until = performance.now() + 30_000;
    while (load.counters.received < n && load.counters.mismatched === 0 && performance.now() < until) await sleep(5);
  };
  // Warm-up: a few connections opened and closed, so lazy setup is behind us.
  const warmEvents = new Events();
  const warm = engine(spec, warmEvents, { ...oneLine, connections: Math.min(100, spec.conns) });
  await warm.open();
  warm.start();
  await allEchoed(warm, Math.min(100, spec.conns));
  warm.close();
  await sleep(settleMs);

  const events = new Events();
  const load = engine(spec, events, oneLine);
  const rssBefore = readMem(spec.serverPid).rssKiB;
  const from = edge(spec);
  await load.open();
  load.start();
  await allEchoed(load, spec.conns);
  const to = edge(spec);
  const echoed = load.counters.received;
  await sleep(settleMs);
  const rssAfter = readMem(spec.serverPid).rssKiB;
  const c = load.counters;
  const stillOpen = spec.conns - c.disconnects;
  load.close();
  const error = c.mismatched
    ? `${c.mismatched} echoes differ`
    : echoed < spec.conns
      ? `${spec.conns - echoed} connections got no echo`
      : c.disconnects
        ? `${c.disconnects} connections closed by the server while idle`
        : events.count
          ? `${events.count} connection problems (first: ${events.first})`
          : undefined;
  return {
    ok: !error,
    error,
    ...windowFigures(spec, from, to, echoed, echoed * spec.lineLen),
    mismatches: c.mismatched,
    lost: spec.conns - echoed,
    rssBeforeKiB: rssBefore,
    rssAfterKiB: rssAfter,
    kibPerConn: (rssAfter - rssBefore) / Math.max(1, stillOpen),
  };
}

// ---------------------------------------------------------------- startup: spawn to first TCP echo / first UDP echo

async function startup(spec: MeasureSpec): Promise<MeasureResult> {
  const cmds = spec.cmds ?? [];
  const tcpTimes: number[][] = cmds.map(() => []);
  const udpTimes: number[][] = cmds.map(() => []);
  const mismatches: number[] = cmds.map(() => 0);
  // The commands take turns (A, B, A, B, ...) so drift on the machine lands on all of them alike, not in their ratio.
  // Run -1 is a warm-up start of each (the first start after another binary is often far slower): not counted.
  for (let run = -1; run < (spec.runs ?? 5); run++) {
    for (const [i, cmd] of cmds.entries()) {
      const port = await freePort();
      const ep = endpointOf(spec.host, port);
      const t0 = performance.now();
      const proc = Bun.spawn(["taskset", "-c", spec.serverCpu, ...cmd, "--port", String(port)], { stdout: "ignore", stderr: "ignore" });
      const [tcp, udp] = await Promise.all([firstTcpEcho(ep, PLAIN, t0 + 10_000), firstUdpEcho(ep, t0 + 10_000)]);
      proc.kill("SIGKILL");
      await proc.exited;
      if (tcp.at === null || udp.at === null) {
        return { ...emptyResult(), ok: false, error: `${cmd.join(" ")}: server did not echo within 10 s (tcp=${tcp.at !== null} udp=${udp.at !== null})` };
      }
      mismatches[i]! += Number(tcp.mismatch) + Number(udp.mismatch);
      if (run >= 0) {
        tcpTimes[i]!.push(tcp.at - t0);
        udpTimes[i]!.push(udp.at - t0);
      }
      await sleep(50);
    }
  }
  const round2 = (x: number) => Math.round(x * 100) / 100;
  const startupPerCmd = cmds.map((_, i): MeasureResult => {
    const error = mismatches[i] ? `${mismatches[i]} echoes differ` : undefined;
    return {
      ...emptyResult(),
      ok: !error,
      error,
      mismatches: mismatches[i]!,
      startupTcpMs: median(tcpTimes[i]!),
      startupUdpMs: median(udpTimes[i]!),
      startupTcpAllMs: tcpTimes[i]!.map(round2),
      startupUdpAllMs: udpTimes[i]!.map(round2),
    };
  });
  return { ...emptyResult(), ok: startupPerCmd.every((r) => r.ok), startupPerCmd };
}

function emptyResult(): MeasureResult {
  return { ok: true, ops: 0, seconds: 0, opsPerSec: NaN, mbPerSec: NaN, serverCpuMs: NaN, serverCpuPct: NaN, serverCpuUsPerOp: NaN, clientCpuPct: NaN, mismatches: 0, lost: 0 };
}

/** Wait until the server echoes one TCP line and one UDP datagram (10 s at most). */
async function waitReady(spec: MeasureSpec): Promise<void> {
  const deadline = performance.now() + 10_000;
  // As the measured connections will connect (TLS, PROXY header), so readiness means that works too.
  if ((await firstTcpEcho(endpointOf(spec.host, spec.tcpPort), streamOf(spec), deadline)).at === null) throw new Error("server never echoed a TCP line");
  if ((await firstUdpEcho(endpointOf(spec.host, spec.udpPort), deadline)).at === null) throw new Error("server never echoed a UDP datagram");
}

async function measure(spec: MeasureSpec): Promise<MeasureResult> {
  if (spec.scenario === "startup") return startup(spec);
  await waitReady(spec);
  switch (spec.scenario) {
    case "stream":
      return windowed(spec, {}, "echoed lines");
    case "udp":
      return windowed(spec, { udp: true, timeoutMs: 100 }, "datagrams");
    case "churn":
      return windowed(spec, { pipeline: 1, budget: { lines: 1, then: "reconnect" } }, "echoes");
    case "idle":
      return idle(spec);
  }
}

if (import.meta.main) {
  let result: MeasureResult;
  try {
    result = await measure(JSON.parse(process.argv[2] ?? "{}") as MeasureSpec);
  } catch (e) {
    result = { ...emptyResult(), ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
}
