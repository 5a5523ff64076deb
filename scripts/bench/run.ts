// The benchmark of issue 6: `bun run bench` (= bun scripts/bench/run.ts).
//
// Runs every scenario against every server, one after the other in the same
// run: each server is a fresh process per scenario pinned to CPU 1, the load
// client (measure.ts, driving the probe's load engine) a separate process
// pinned to CPU 0. Prints the results,
// checks the targets against the Bun baseline of the same run, and writes
// docs/benchmarks.md after a full run.
//
//   bun scripts/bench/run.ts [--quick] [--only pipelined,udp] [--servers epoll-echo,baseline]
//                            [--variant 'metrics=--metrics 127.0.0.1:0'] [--rounds N]
//                            [--seconds S] [--no-build] [--write | --no-write] [--out FILE]
import { parseArgs } from "node:util";
import { join, resolve, relative } from "node:path";
import { chmodSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { median } from "../../src/core/latency.ts";
import { CONNECT_BATCH } from "../../src/probe/load.ts";
import { cpuTimes, USER_HZ } from "../../src/sys/procfs.ts";
import { firstTcpEcho } from "./first-echo.ts";
import type { MeasureResult, MeasureSpec as LoadSpec } from "./measure.ts";
import { idleWakeups, type IdleResult } from "./idle-wakeups.ts";
import { freePort } from "./ports.ts";
import { describeScale, parseInstances, runScale, SCALE, SCALE_DEFAULTS, scaleTable, type ScaleRow } from "./scale.ts";

const HERE = import.meta.dir;
const ROOT = resolve(HERE, "../..");
const OUT = join(HERE, ".out");
const MEASURE = join(HERE, "measure.ts");
const EPOLL = join(ROOT, "epoll-echo");
const HOST = "127.0.0.1";
/** CPU the servers run on; the load client and this runner use LOAD_CPU. */
const SERVER_CPU = "1";
const LOAD_CPU = "0";
/** Other work above this share (%) of either CPU marks a row as noisy. */
const NOISY_PCT = 10;
/** How long a full run waits for a quiet machine before each measurement. */
const QUIET_WAIT_MS = 120_000;
/** Text after this line in docs/benchmarks.md is kept when the file is rewritten. */
const NOTES_MARKER = "<!-- analysis below this line is hand-written and kept across runs -->";

// ---------------------------------------------------------------- servers

interface Server {
  name: string;
  /** "subject" rows get ratios and targets against the "baseline" row. */
  role: "subject" | "baseline" | "other";
  /** Command without the port; run.ts appends `--port N` (and `--tls-port M` for a TLS stream). */
  cmd: string[];
  /** How the load client connects to it: over TLS (to its --tls-port) and/or with a PROXY header first. */
  stream?: { tls?: true; proxy?: 1 | 2 };
  /** Only these scenarios (default: all). */
  scenarios?: string[];
}

/** epoll-echo's flags for every run: quiet logs, room for the 10,000 idle clients. */
const EPOLL_ARGS = ["-q", "--max-tcp", "15000"];

/** A self-signed certificate for the TLS rows, made with openssl when needed. */
const TLS_CERT = join(OUT, "tls", "cert.pem");
const TLS_KEY = join(OUT, "tls", "key.pem");

const SERVERS: Server[] = [
  { name: "epoll-echo", role: "subject", cmd: [EPOLL, ...EPOLL_ARGS] },
  // The same lines over TLS, and with a PROXY v2 header on every connection (issue 13): compare with epoll-echo's row.
  { name: "epoll-echo+tls", role: "other", cmd: [EPOLL, ...EPOLL_ARGS, "--tls-cert", TLS_CERT, "--tls-key", TLS_KEY], stream: { tls: true }, scenarios: ["pipelined"] },
  { name: "epoll-echo+proxy", role: "other", cmd: [EPOLL, ...EPOLL_ARGS, "--proxy-protocol-from", "127.0.0.0/8"], stream: { proxy: 2 }, scenarios: ["pipelined"] },
  // A variant of epoll-echo is one line (or `--variant 'name=args'` on the command line):
  // { name: "epoll-echo+metrics", role: "subject", cmd: [EPOLL, ...EPOLL_ARGS, "--metrics", "127.0.0.1:0"] },
  { name: "baseline", role: "baseline", cmd: [join(OUT, "baseline")] },
  { name: "node:net", role: "other", cmd: [join(OUT, "node-echo")] },
];

/** Built by this script with scripts/build.sh --entry: the flags epoll-echo is built with. */
const OWN_BINARIES = [
  { src: join(HERE, "baseline.ts"), out: join(OUT, "baseline") },
  { src: join(HERE, "node-echo.ts"), out: join(OUT, "node-echo") },
];
const BUILD_SH = join(ROOT, "scripts/build.sh");

// ---------------------------------------------------------------- scenarios

interface Scenario {
  name: string;
  /** what one "op" is: CPU µs per op and ops/s are per this unit */
  unit: "line" | "datagram" | "conn";
  full: Partial<LoadSpec>;
  quick: Partial<LoadSpec>;
}

const SCENARIOS: Scenario[] = [
  { name: "ping-pong", unit: "line", full: { scenario: "stream", conns: 1, window: 1, lineLen: 64 }, quick: {} },
  { name: "pipelined", unit: "line", full: { scenario: "stream", conns: 50, window: 16, lineLen: 64 }, quick: { conns: 20 } },
  { name: "bulk", unit: "line", full: { scenario: "stream", conns: 4, window: 4, lineLen: 4000 }, quick: {} },
  { name: "fan-in", unit: "line", full: { scenario: "stream", conns: 1000, window: 1, lineLen: 64 }, quick: { conns: 200 } },
  { name: "udp", unit: "datagram", full: { scenario: "udp", conns: 8, window: 8, lineLen: 64 }, quick: {} },
  { name: "churn", unit: "conn", full: { scenario: "churn", conns: 4, window: 1, lineLen: 64 }, quick: { conns: 2 } },
  { name: "idle", unit: "conn", full: { scenario: "idle", conns: 10000, window: 1, lineLen: 64, settleMs: 1500 }, quick: { conns: 1000, settleMs: 300 } },
  { name: "startup", unit: "conn", full: { scenario: "startup", conns: 1, window: 1, lineLen: 64, runs: 21 }, quick: { runs: 3 } },
  // Run by the runner itself (idle-wakeups.ts), not by the load client.
  { name: "wakeups", unit: "conn", full: {}, quick: {} },
];

/** The wakeups scenario: idle connections, settle before each window, window. */
const WAKEUPS = { full: { idleConns: 1000, settleMs: 3000, windowMs: 20_000 }, quick: { idleConns: 100, settleMs: 500, windowMs: 2000 } };

type LoadResult = MeasureResult & IdleResult;

interface Target {
  scenario: string;
  label: string;
  metric: (r: LoadResult) => number | undefined;
  unit: string;
  /** at most this multiple of the baseline */
  maxRatio?: number;
  /** at most (or, with `below`, strictly below) this absolute value */
  maxAbs?: number;
  /** at most the baseline plus this much */
  maxOverBaseline?: number;
  below?: boolean;
}

const cpuPerOp = (r: LoadResult) => r.serverCpuUsPerOp;
const TARGETS: Target[] = [
  { scenario: "pipelined", label: "pipelined: server CPU/line ≤ 1.25 × baseline", metric: cpuPerOp, unit: "µs", maxRatio: 1.25 },
  { scenario: "fan-in", label: "fan-in: server CPU/line ≤ 1.15 × baseline", metric: cpuPerOp, unit: "µs", maxRatio: 1.15 },
  { scenario: "udp", label: "UDP: server CPU/datagram ≤ 1.0 × baseline", metric: cpuPerOp, unit: "µs", maxRatio: 1.0 },
  { scenario: "udp", label: "UDP: server CPU/datagram < 8 µs", metric: cpuPerOp, unit: "µs", maxAbs: 8, below: true },
  { scenario: "ping-pong", label: "ping-pong: p50 latency ≤ 1.1 × baseline", metric: (r) => r.p50us, unit: "µs", maxRatio: 1.1 },
  { scenario: "idle", label: "idle: server RSS ≤ 2.5 KiB per connection", metric: (r) => r.kibPerConn, unit: "KiB", maxAbs: 2.5 },
  { scenario: "startup", label: "startup to first TCP echo ≤ 1.3 × baseline", metric: (r) => r.startupTcpMs, unit: "ms", maxRatio: 1.3 },
  { scenario: "startup", label: "startup to first UDP echo ≤ 1.3 × baseline", metric: (r) => r.startupUdpMs, unit: "ms", maxRatio: 1.3 },
  // issue 15
  { scenario: "startup", label: "startup to first TCP echo ≤ 1.10 × baseline (issue 15)", metric: (r) => r.startupTcpMs, unit: "ms", maxRatio: 1.1 },
  { scenario: "wakeups", label: "idle, no clients: ≤ 2 wakeups/s, all threads", metric: (r) => r.wakeupsNone, unit: "/s", maxAbs: 2 },
  { scenario: "wakeups", label: "idle, 1,000 idle TCP connections: ≤ 3 wakeups/s, all threads", metric: (r) => r.wakeupsHeld, unit: "/s", maxAbs: 3 },
  { scenario: "wakeups", label: "idle, started directly without the unit's Environment=, no clients: ≤ 2 wakeups/s", metric: (r) => r.wakeupsDirect, unit: "/s", maxAbs: 2 },
  { scenario: "wakeups", label: "RSS 1 s after the first echo ≤ baseline + 2 MiB", metric: (r) => (r.rssAfterFirstEchoKiB === undefined ? undefined : r.rssAfterFirstEchoKiB / 1024), unit: "MiB", maxOverBaseline: 2 },
];

// ---------------------------------------------------------------- options

const USAGE = `usage: bun scripts/bench/run.ts [options]
  --quick               CI smoke run: ~1 s per scenario, fewer connections (no docs written)
  --only LIST           scenarios to run, comma-separated (${[...SCENARIOS.map((s) => s.name), SCALE].join(",")})
  --instances LIST      scale: how many --reuse-port instances share the port, e.g. 1,2,4,8 (default; --quick 1,2)
  --servers LIST        servers to run, comma-separated (default: all: ${SERVERS.map((s) => s.name).join(",")})
  --variant NAME=ARGS   add an epoll-echo variant with extra arguments, e.g. --variant 'metrics=--metrics 127.0.0.1:0'
                        (repeatable; the row is named epoll-echo+NAME)
  --server-cmd NAME=CMD add any other server, started as CMD --port N, e.g. --server-cmd 'old=/tmp/epoll-echo-old -q'
                        (rated against the targets like epoll-echo)
  --rounds N            repeat every measurement N times, report the medians (default 1)
  --seconds S           measured window per scenario (default 5, --quick 0.8)
  --no-build            use ./epoll-echo as it is (default: bun run build first)
  --write / --no-write  write docs/benchmarks.md (default: only after a full run of everything)
  --out FILE            markdown output path (default docs/benchmarks.md)`;

const { values: opt } = parseArgs({
  args: process.argv.slice(2),
  strict: true,
  options: {
    quick: { type: "boolean" },
    only: { type: "string" },
    instances: { type: "string" },
    servers: { type: "string" },
    variant: { type: "string", multiple: true },
    "server-cmd": { type: "string", multiple: true },
    rounds: { type: "string" },
    seconds: { type: "string" },
    "no-build": { type: "boolean" },
    write: { type: "boolean" },
    "no-write": { type: "boolean" },
    out: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (opt.help) {
  console.log(USAGE);
  process.exit(0);
}
function die(msg: string): never {
  console.error(`bench: ${msg}`);
  process.exit(2);
}
const quick = !!opt.quick;
const rounds = opt.rounds ? Number(opt.rounds) : 1;
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) die("--rounds: expected 1 to 20");
const seconds = opt.seconds ? Number(opt.seconds) : quick ? 0.8 : 5;
if (!(seconds > 0 && seconds <= 120)) die("--seconds: expected a number from 0 to 120");

const added = new Set<Server>();
for (const v of opt.variant ?? []) {
  const eq = v.indexOf("=");
  if (eq <= 0) die(`--variant: expected NAME=ARGS, got ${JSON.stringify(v)}`);
  const args = v.slice(eq + 1).trim().split(/\s+/).filter(Boolean);
  const s: Server = { name: `epoll-echo+${v.slice(0, eq)}`, role: "subject", cmd: [EPOLL, ...EPOLL_ARGS, ...args] };
  SERVERS.splice(1, 0, s);
  added.add(s);
}
for (const v of opt["server-cmd"] ?? []) {
  const eq = v.indexOf("=");
  const cmd = v.slice(eq + 1).trim().split(/\s+/).filter(Boolean);
  if (eq <= 0 || cmd.length === 0) die(`--server-cmd: expected NAME=CMD, got ${JSON.stringify(v)}`);
  const s: Server = { name: v.slice(0, eq), role: "subject", cmd: [cmd[0]!.includes("/") ? resolve(cmd[0]!) : cmd[0]!, ...cmd.slice(1)] };
  SERVERS.splice(SERVERS.findIndex((x) => x.role === "baseline"), 0, s);
  added.add(s);
}
let servers = SERVERS;
if (opt.servers) {
  const want = opt.servers.split(",").map((s) => s.trim());
  for (const w of want) if (!SERVERS.some((s) => s.name === w)) die(`--servers: unknown server ${w} (have ${SERVERS.map((s) => s.name).join(", ")})`);
  // servers added by --variant / --server-cmd are always in
  servers = SERVERS.filter((s) => want.includes(s.name) || added.has(s));
}
let scenarios = SCENARIOS;
/** The scale scenario (scale.ts) runs its own servers: it is not one of SCENARIOS. */
let withScale = true;
if (opt.only) {
  const want = opt.only.split(",").map((s) => s.trim());
  for (const w of want) if (w !== SCALE && !SCENARIOS.some((s) => s.name === w)) die(`--only: unknown scenario ${w} (have ${[...SCENARIOS.map((s) => s.name), SCALE].join(", ")})`);
  scenarios = SCENARIOS.filter((s) => want.includes(s.name));
  withScale = want.includes(SCALE);
}
let instances: number[] = quick ? [1, 2] : [...SCALE_DEFAULTS.instances];
try {
  if (opt.instances) instances = parseInstances(opt.instances);
} catch (err) {
  die((err as Error).message);
}
if (opt.instances && !withScale) die("--instances: only with the scale scenario (--only scale, or a run of everything)");
const scaleOptions = { ...SCALE_DEFAULTS, instances, rounds, seconds, warmupMs: quick ? 200 : 1500 };
const fullRun = !quick && !opt.only && !opt.servers;
const writeDocs = opt["no-write"] ? false : opt.write || fullRun;
const docPath = resolve(opt.out ?? join(ROOT, "docs/benchmarks.md"));

// ---------------------------------------------------------------- helpers

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const log = (s: string) => process.stderr.write(s + "\n");

function sh(cmd: string[], cwd = ROOT): { ok: boolean; out: string } {
  const p = Bun.spawnSync(cmd, { cwd, stdout: "pipe", stderr: "pipe" });
  return { ok: p.exitCode === 0, out: (p.stdout.toString() + p.stderr.toString()).trim() };
}

/**
 * Wait (bounded) until the machine is quiet: neither CPU more than NOISY_PCT busy
 * over 300 ms. Returns how busy it still was, for the report.
 */
async function waitQuiet(maxWaitMs: number): Promise<number> {
  const until = Date.now() + maxWaitMs;
  let announced = false;
  for (;;) {
    const a = cpuTimes();
    await sleep(300);
    const b = cpuTimes();
    let worst = 0;
    for (const cpu of [`cpu${SERVER_CPU}`, `cpu${LOAD_CPU}`]) {
      const x = a.get(cpu);
      const y = b.get(cpu);
      if (!x || !y || y.total === x.total) continue;
      worst = Math.max(worst, (100 * (y.busy - x.busy)) / (y.total - x.total));
    }
    if (worst <= NOISY_PCT || Date.now() > until) return worst;
    if (!announced) log(`bench: waiting for a quiet machine (a CPU is ${worst.toFixed(0)} % busy)`);
    announced = true;
    await sleep(700);
  }
}


/** The server's command line on `port` (and `tlsPort`, for a TLS stream). */
function serverCommand(server: Server, port: number, tlsPort: number): string[] {
  return [...server.cmd, "--port", String(port), ...(server.stream?.tls ? ["--tls-port", String(tlsPort)] : [])];
}

/** Raise the soft fd limit to the hard one, then exec the command pinned to a CPU ("all": free to use every CPU, not the runner's one). */
function pinned(cpu: string, cmd: string[]): string[] {
  return ["sh", "-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; cpu="$1"; shift; [ "$cpu" = all ] && cpu="0-$(($(nproc --all) - 1))"; exec taskset -c "$cpu" "$@"', "sh", cpu, ...cmd];
}

// ---------------------------------------------------------------- one measurement

interface Row {
  server: Server;
  scenario: Scenario;
  result: LoadResult;
  /** busiest CPU (%) right before the measurement, after waiting for quiet */
  noisePct: number;
}

function specFor(sc: Scenario): LoadSpec {
  return {
    host: HOST,
    tcpPort: 0,
    udpPort: 0,
    serverPid: 0,
    serverCpu: SERVER_CPU,
    loadCpu: LOAD_CPU,
    warmupMs: quick ? 200 : 1500,
    measureMs: seconds * 1000,
    ...sc.full,
    ...(quick ? sc.quick : {}),
  } as LoadSpec;
}

/** One line saying what a scenario does, with this run's numbers. */
function describe(sc: Scenario): string {
  if (sc.name === "wakeups") {
    const w = quick ? WAKEUPS.quick : WAKEUPS.full;
    return `not pinned to a CPU; started with the unit's Environment=; RSS 1 s after the first echo (MiB by kind from smaps: the executable's code and constants, anonymous, other); context switches of all threads over ${w.windowMs / 1000} s after ${w.settleMs / 1000} s, with no clients, then with ${w.idleConns.toLocaleString("en-US")} idle TCP connections; then started again directly, without the unit's Environment=, no clients`;
  }
  const s = specFor(sc);
  const n = (x: number) => x.toLocaleString("en-US");
  switch (s.scenario) {
    case "stream":
      return `${n(s.conns)} conn${s.conns > 1 ? "s" : ""} × ${s.window} line${s.window > 1 ? "s" : ""} in flight × ${s.lineLen} B`;
    case "udp":
      return `${s.conns} sockets × ${s.window} datagrams in flight × ${s.lineLen} B`;
    case "churn":
      return `connect, one ${s.lineLen} B line, close; ${s.conns} such cycles at a time`;
    case "idle":
      return `${n(s.conns)} conns echo one ${s.lineLen} B line each (${CONNECT_BATCH} handshakes at a time), then idle ${(s.settleMs ?? 0) / 1000} s`;
    case "startup":
      return `spawn to first TCP echo / first UDP echo, median of every round's starts (${s.runs} a round, after one uncounted start); the servers start in turn (A, B, A, B, ...)`;
  }
}

async function runOne(server: Server, sc: Scenario): Promise<Row> {
  // a --quick smoke run does not wait: rows it measured on a busy machine still say so
  const noisePct = quick ? 0 : await waitQuiet(QUIET_WAIT_MS);
  if (sc.name === "wakeups") {
    const port = await freePort();
    const w = quick ? WAKEUPS.quick : WAKEUPS.full;
    // Not pinned: the runtime sizes its GC helper pool by the CPUs it may use, so a pinned server would idle
    // with fewer threads than one started by systemd, the image or a shell.
    const result = (await idleWakeups({ cmd: pinned("all", serverCommand(server, port, port)), cwd: ROOT, port, ...w }, ROOT)) as LoadResult;
    if (!result.ok) log(`  ! ${server.name} ${sc.name}: ${result.error}`);
    return { server, scenario: sc, result, noisePct };
  }
  const spec = specFor(sc);
  const logFile = join(OUT, "logs", `${server.name.replace(/[^\w.+-]/g, "_")}-${sc.name}.log`);
  const port = await freePort();
  spec.tcpPort = spec.udpPort = port;
  if (server.stream?.tls) {
    spec.tcpPort = await freePort();
    spec.tls = true;
  }
  if (server.stream?.proxy) spec.proxy = server.stream.proxy;
  const fd = openSync(logFile, "w");
  const proc = Bun.spawn(pinned(SERVER_CPU, serverCommand(server, port, spec.tcpPort)), { cwd: ROOT, stdin: "ignore", stdout: "ignore", stderr: fd });
  closeSync(fd);
  spec.serverPid = proc.pid;
  const result = await runLoad(spec);
  if (proc.exitCode !== null || proc.signalCode !== null) {
    result.ok = false;
    result.error = `server exited during the run (${proc.exitCode ?? proc.signalCode})` + (result.error ? `; ${result.error}` : "");
  }
  proc.kill("SIGTERM");
  const t = setTimeout(() => proc.kill("SIGKILL"), 2000);
  await proc.exited;
  clearTimeout(t);
  if (!result.ok) {
    let tail = "";
    try {
      tail = readFileSync(logFile, "utf8").trim().split("\n").slice(-3).join(" | ");
    } catch {}
    log(`  ! ${server.name} ${sc.name}: ${result.error}${tail ? `  [server stderr: ${tail}]` : ""}`);
  }
  return { server, scenario: sc, result, noisePct };
}

/** One round of the startup scenario: the servers' starts take turns within the one load process (see measure.ts). */
async function runStartupRound(order: Server[], sc: Scenario): Promise<Row[]> {
  const noisePct = quick ? 0 : await waitQuiet(QUIET_WAIT_MS);
  const spec = specFor(sc);
  spec.cmds = order.map((s) => s.cmd);
  const all = await runLoad(spec);
  return order.map((server, i) => {
    const result = all.startupPerCmd?.[i] ?? ({ ...all, ok: false, error: all.error ?? "no result for this server" } as LoadResult);
    if (!result.ok) log(`  ! ${server.name} ${sc.name}: ${result.error}`);
    return { server, scenario: sc, result, noisePct };
  });
}

/** Run scripts/bench/measure.ts with this spec on the load CPU and return its result. */
async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  const budgetMs = 60_000 + spec.warmupMs + spec.measureMs + (spec.runs ?? 0) * (spec.cmds?.length ?? 1) * 12_000;
  const load = Bun.spawn(pinned(LOAD_CPU, [process.execPath, MEASURE, JSON.stringify(spec)]), { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  const timer = setTimeout(() => load.kill("SIGKILL"), budgetMs);
  const out = await new Response(load.stdout).text();
  await load.exited;
  clearTimeout(timer);
  try {
    return JSON.parse(out.trim().split("\n").pop() ?? "");
  } catch {
    return { ok: false, error: `load client gave no result (exit ${load.exitCode})` } as LoadResult;
  }
}

/** Medians over rounds, field by field. */
function combine(rows: Row[]): Row {
  const first = rows[0]!;
  if (rows.length === 1) return first;
  const r: Record<string, unknown> = { ...first.result };
  for (const k of Object.keys(first.result) as (keyof LoadResult)[]) {
    if (typeof first.result[k] === "number") r[k] = median(rows.map((x) => x.result[k] as number));
  }
  r.startupTcpAllMs = rows.flatMap((x) => x.result.startupTcpAllMs ?? []);
  r.startupUdpAllMs = rows.flatMap((x) => x.result.startupUdpAllMs ?? []);
  if (first.result.startupTcpAllMs) {
    // startup: the median over every start of every round
    r.startupTcpMs = median(r.startupTcpAllMs as number[]);
    r.startupUdpMs = median(r.startupUdpAllMs as number[]);
  }
  r.ok = rows.every((x) => x.result.ok);
  r.error = rows.map((x) => x.result.error).filter(Boolean).join("; ") || undefined;
  return { ...first, result: r as unknown as LoadResult, noisePct: Math.max(...rows.map((x) => x.noisePct)) };
}

// ---------------------------------------------------------------- preparation

mkdirSync(join(OUT, "logs"), { recursive: true });
// this runner (and what it spawns unpinned) stays off the servers' CPU
sh(["taskset", "-a", "-p", "-c", LOAD_CPU, String(process.pid)]);

const t0 = Date.now();
if (servers.some((s) => s.cmd[0] === EPOLL) && !opt["no-build"]) {
  log("bench: bun run build");
  const b = sh([process.execPath, "run", "build"]);
  if (!b.ok) die(`bun run build failed:\n${b.out}`);
}
for (const b of OWN_BINARIES) {
  if (!servers.some((s) => s.cmd[0] === b.out)) continue;
  const fresh = existsSync(b.out) && statSync(b.out).mtimeMs > Math.max(statSync(b.src).mtimeMs, statSync(import.meta.path).mtimeMs, statSync(BUILD_SH).mtimeMs);
  if (fresh) continue;
  log(`bench: compiling ${relative(ROOT, b.src)}`);
  const r = sh(["bash", BUILD_SH, "--entry", b.src, b.out]);
  if (!r.ok) die(`compiling ${b.src} failed:\n${r.out}`);
}

if (servers.some((s) => s.stream?.tls) && !existsSync(TLS_KEY)) {
  mkdirSync(join(OUT, "tls"), { recursive: true });
  const r = sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650", "-subj", "/CN=localhost", "-keyout", TLS_KEY, "-out", TLS_CERT]);
  if (!r.ok) die(`openssl (for the TLS rows) failed:\n${r.out}`);
  chmodSync(TLS_KEY, 0o600);
}

/** Does the server answer at all? (epoll-echo may still be a stub.) */
async function serves(server: Server): Promise<boolean> {
  const port = await freePort();
  const proc = Bun.spawn(pinned(SERVER_CPU, serverCommand(server, port, await freePort())), { cwd: ROOT, stdin: "ignore", stdout: "ignore", stderr: "ignore" });
  const via = { tls: null, proxy: server.stream?.proxy ?? null };
  const ok = (await firstTcpEcho({ address: HOST, family: 4, port }, via, performance.now() + 5000)).at !== null;
  proc.kill("SIGKILL");
  await proc.exited;
  return ok;
}

const skipped: string[] = [];
for (const s of [...servers]) {
  if (s.role === "baseline") continue;
  if (!(await serves(s))) {
    log(`bench: ${s.name} does not echo a TCP line within 5 s: left out of this run`);
    skipped.push(s.name);
    servers = servers.filter((x) => x !== s);
  }
}

// ---------------------------------------------------------------- the run

const results: Row[] = [];
for (const sc of scenarios) {
  const perServer = new Map<Server, Row[]>();
  for (let round = 0; round < rounds; round++) {
    // rotate the order every round so no server always goes first
    const here = servers.filter((s) => !s.scenarios || s.scenarios.includes(sc.name));
    const order = here.map((_, i) => here[(i + round) % here.length]!);
    if (sc.name === "startup") {
      log(`bench: ${sc.name} · ${order.map((s) => s.name).join(", ")} in turn${rounds > 1 ? ` · round ${round + 1}/${rounds}` : ""}`);
      for (const row of await runStartupRound(order, sc)) perServer.set(row.server, [...(perServer.get(row.server) ?? []), row]);
      continue;
    }
    for (const server of order) {
      log(`bench: ${sc.name} · ${server.name}${rounds > 1 ? ` · round ${round + 1}/${rounds}` : ""}`);
      const row = await runOne(server, sc);
      perServer.set(server, [...(perServer.get(server) ?? []), row]);
    }
  }
  for (const server of servers) if (perServer.has(server)) results.push(combine(perServer.get(server)!));
}
const scaleRows: ScaleRow[] = withScale ? await runScale(scaleOptions, log, () => (quick ? Promise.resolve(0) : waitQuiet(QUIET_WAIT_MS))) : [];
const elapsed = (Date.now() - t0) / 1000;

// ---------------------------------------------------------------- reporting

const f = (x: number | undefined, digits = 1) => (x === undefined || !Number.isFinite(x) ? "–" : x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e4 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(digits));
const ratio = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? undefined : a / b);
const fr = (r: number | undefined) => (r === undefined ? "–" : `${r.toFixed(2)}×`);

function baselineOf(sc: Scenario): Row | undefined {
  return results.find((r) => r.scenario === sc && r.server.role === "baseline");
}

function tables(): string {
  const lines: string[] = [];
  const hdr = ["scenario", "server", "throughput", "p50 µs", "p99 µs", "p99.9 µs", "server CPU µs/op", "vs baseline", "server CPU %", "client CPU %", "valid"];
  lines.push(`| ${hdr.join(" | ")} |`, `|${hdr.map(() => "---").join("|")}|`);
  for (const row of results) {
    const { scenario: sc, server, result: r } = row;
    if (sc.name === "idle" || sc.name === "startup" || sc.name === "wakeups") continue;
    const b = baselineOf(sc);
    const unit = sc.unit === "line" ? (sc.name === "bulk" ? "lines/s" : "lines/s") : sc.unit === "datagram" ? "dgrams/s" : "conns/s";
    const tput = `${f(r.opsPerSec, 0)} ${unit}` + (sc.name === "bulk" ? ` (${f(r.mbPerSec)} MB/s)` : "");
    lines.push(
      `| ${sc.name} | ${server.name} | ${tput} | ${f(r.p50us)} | ${f(r.p99us)} | ${f(r.p999us)} | ${f(r.serverCpuUsPerOp, 2)} | ${server.role === "baseline" ? "1.00×" : fr(ratio(r.serverCpuUsPerOp, b?.result.serverCpuUsPerOp))} | ${f(r.serverCpuPct, 0)} | ${f(r.clientCpuPct, 0)} | ${validity(row)} |`,
    );
  }
  const idle = results.filter((r) => r.scenario.name === "idle");
  if (idle.length) {
    const h = ["server", "connections", "RSS before KiB", "RSS after KiB", "KiB/conn", "vs baseline", "server CPU µs/conn (connect + 1 echo)", "vs baseline", "valid"];
    lines.push("", `**idle** (${describe(idle[0]!.scenario)}; RSS from /proc/PID/status VmRSS)`, "", `| ${h.join(" | ")} |`, `|${h.map(() => "---").join("|")}|`);
    const b = baselineOf(idle[0]!.scenario)?.result;
    for (const row of idle) {
      const r = row.result;
      lines.push(`| ${row.server.name} | ${f(r.ops, 0)} | ${f(r.rssBeforeKiB, 0)} | ${f(r.rssAfterKiB, 0)} | ${f(r.kibPerConn, 2)} | ${fr(ratio(r.kibPerConn, b?.kibPerConn))} | ${f(r.serverCpuUsPerOp, 1)} | ${fr(ratio(r.serverCpuUsPerOp, b?.serverCpuUsPerOp))} | ${validity(row)} |`);
    }
  }
  const st = results.filter((r) => r.scenario.name === "startup");
  if (st.length) {
    const h = ["server", "first TCP echo ms (median)", "vs baseline", "first UDP echo ms (median)", "vs baseline", "TCP min–max ms (starts)", "valid"];
    lines.push("", `**startup** (${describe(st[0]!.scenario)})`, "", `| ${h.join(" | ")} |`, `|${h.map(() => "---").join("|")}|`);
    const b = baselineOf(st[0]!.scenario)?.result;
    for (const row of st) {
      const r = row.result;
      lines.push(`| ${row.server.name} | ${f(r.startupTcpMs, 1)} | ${fr(ratio(r.startupTcpMs, b?.startupTcpMs))} | ${f(r.startupUdpMs, 1)} | ${fr(ratio(r.startupUdpMs, b?.startupUdpMs))} | ${spread(r.startupTcpAllMs)} | ${validity(row)} |`);
    }
  }
  const wk = results.filter((r) => r.scenario.name === "wakeups");
  if (wk.length) {
    const h = ["server", "RSS 1 s after first echo MiB", "wakeups/s, no clients (per thread)", "wakeups/s, idle connections (per thread)", "wakeups/s, direct start, no clients", "valid"];
    lines.push("", `**wakeups** (${describe(wk[0]!.scenario)})`, "", `| ${h.join(" | ")} |`, `|${h.map(() => "---").join("|")}|`);
    for (const row of wk) {
      const r = row.result;
      lines.push(`| ${row.server.name} | ${r.rssComposition ?? "–"} | ${r.wakeupsNoneThreads ?? "–"} | ${r.wakeupsHeldThreads ?? "–"} | ${r.wakeupsDirectThreads ?? "–"} | ${validity(row)} |`);
    }
  }
  return lines.join("\n");
}

function spread(xs: number[] | undefined): string {
  if (!xs || xs.length === 0) return "–";
  return `${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)} (${xs.length})`;
}

function validity(row: Row): string {
  const r = row.result;
  let s = r.ok ? "ok" : `FAILED: ${r.error}`;
  if (r.ok && r.lost) s += ` (${r.lost} lost)`;
  const other = Math.max(r.otherOnServerCpuPct ?? 0, r.otherOnLoadCpuPct ?? 0);
  if (other > NOISY_PCT) s += ` (noisy: ${other.toFixed(0)} % of a CPU went to other work)`;
  else if (row.noisePct > NOISY_PCT) s += ` (machine ${row.noisePct.toFixed(0)} % busy before)`;
  return s;
}

function targetRows(): { text: string; pass: number; fail: number; missing: number } {
  const lines: string[] = [];
  const hdr = ["target", "server", "value", "baseline", "ratio", "result"];
  lines.push(`| ${hdr.join(" | ")} |`, `|${hdr.map(() => "---").join("|")}|`);
  let pass = 0;
  let fail = 0;
  let missing = 0;
  const subjects = servers.filter((s) => s.role === "subject");
  for (const t of TARGETS) {
    if (!scenarios.some((s) => s.name === t.scenario)) continue;
    for (const subj of subjects.length ? subjects : [undefined]) {
      const row = results.find((r) => r.scenario.name === t.scenario && r.server === subj);
      const base = results.find((r) => r.scenario.name === t.scenario && r.server.role === "baseline");
      const v = row && row.result.ok ? t.metric(row.result) : undefined;
      const bv = base && base.result.ok ? t.metric(base.result) : undefined;
      let verdict: string;
      const rat = ratio(v, bv);
      if (v === undefined || !Number.isFinite(v)) verdict = row ? "FAIL (no valid measurement)" : "not run";
      else if (t.maxRatio !== undefined) verdict = rat === undefined ? "not run (no baseline)" : rat <= t.maxRatio ? "PASS" : "FAIL";
      else if (t.maxOverBaseline !== undefined) verdict = bv === undefined ? "not run (no baseline)" : v <= bv + t.maxOverBaseline ? "PASS" : "FAIL";
      else verdict = (t.below ? v < t.maxAbs! : v <= t.maxAbs!) ? "PASS" : "FAIL";
      if (verdict === "PASS") pass++;
      else if (verdict.startsWith("FAIL")) fail++;
      else missing++;
      lines.push(`| ${t.label} | ${subj?.name ?? "–"} | ${f(v, 2)} ${t.unit} | ${f(bv, 2)} ${t.unit} | ${fr(rat)} | **${verdict}** |`);
    }
  }
  return { text: lines.join("\n"), pass, fail, missing };
}

function machine(): string[] {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "?";
  const epollVersion = existsSync(EPOLL) ? sh([EPOLL, "--version"]).out : "not built";
  return [
    // `nproc` would say 1: this runner is pinned to the load CPU
    `- CPUs: ${sh(["nproc", "--all"]).out} × ${cpu} (servers on CPU ${SERVER_CPU}, load on CPU ${LOAD_CPU})`,
    `- Kernel: ${sh(["uname", "-sr"]).out}; ${(/PRETTY_NAME="([^"]*)"/.exec(existsSync("/etc/os-release") ? readFileSync("/etc/os-release", "utf8") : "")?.[1]) ?? ""}`,
    `- Bun: ${Bun.version}; ${epollVersion}; git ${sh(["git", "rev-parse", "--short", "HEAD"]).out}${sh(["git", "status", "--porcelain", "--", "src"]).out ? " (src/ has uncommitted changes)" : ""}`,
    `- Clock ticks: ${USER_HZ}/s (server CPU is utime+stime from /proc/PID/stat, so its resolution is ${(1000 / USER_HZ).toFixed(0)} ms per window)`,
  ];
}

const cmdline = `bun run bench${process.argv.slice(2).length ? " " + process.argv.slice(2).join(" ") : ""}`;
const table = tables() + (withScale ? `\n\n**${SCALE}** (${describeScale(scaleOptions)}; servers and load placed by scripts/bench/scale.ts, not on the CPUs above)\n\n${scaleTable(scaleRows)}` : "");
const tgt = targetRows();
console.log("");
console.log(table);
console.log("");
console.log(tgt.text);
console.log("");
console.log(`bench: ${tgt.pass} targets pass, ${tgt.fail} fail, ${tgt.missing} not measured; ${elapsed.toFixed(0)} s${skipped.length ? `; left out: ${skipped.join(", ")}` : ""}`);
writeFileSync(join(OUT, "last-run.json"), JSON.stringify(results.map((r) => ({ server: r.server.name, scenario: r.scenario.name, noisePct: r.noisePct, ...r.result })), null, 1));

if (writeDocs) {
  const md = [
    "# Benchmarks",
    "",
    "Produced by `scripts/bench/run.ts` (issue 6). Re-run with `bun run bench`; this file is rewritten by every full run.",
    "",
    `Command: \`${cmdline}\` · date: ${new Date().toISOString().replace(/\.\d+Z$/, "Z")} · run time ${elapsed.toFixed(0)} s · ${rounds} round(s), ${seconds} s measured per scenario after a ${quick ? 0.2 : 1.5} s warm-up`,
    "",
    "## Machine",
    "",
    ...machine(),
    "",
    "## Method",
    "",
    `- Servers, each a fresh process per scenario, pinned with \`taskset -c ${SERVER_CPU}\`: ${servers.map((s) => `**${s.name}** (\`${s.cmd.map((c) => relative(ROOT, c) || c).map((c) => (c.startsWith("..") ? c : c)).join(" ")} --port N\`)`).join(", ")}.`,
    "  The baseline (`scripts/bench/baseline.ts`) is the smallest correct line-aware echo on `Bun.listen`/`Bun.udpSocket`; `node:net` is `scripts/bench/node-echo.ts`. Both are compiled with the flags of `scripts/build.sh`.",
    `- Load: the probe's own load engine (\`src/probe/load.ts\`, what \`epoll-echo probe --load\` runs), driven by \`scripts/bench/measure.ts\` in one Bun process pinned to CPU ${LOAD_CPU}, over 127.0.0.1. Each connection keeps its lines in flight in one preallocated ring of numbered lines (\`src/core/payload.ts\`); every echoed byte is compared with what was sent (\`Buffer#compare\`, no decoding), and every TCP line in flight must come back after the window. Churn and idle connections are the same engine with a budget of one line per connection.`,
    "- **server CPU µs/op** = (utime+stime of the server process over the measured window, from `/proc/PID/stat`) ÷ lines (datagrams, connections) completed in the window. It stays meaningful when the load client is the bottleneck; **client CPU %** shows when it is (≈100 % = client-bound).",
    "- Latency is per line: from the write that sent it to the read that completed its echo (UDP: per datagram; churn: the connection's one line, the handshake not included), so it includes the client's own queueing.",
    `- Before each measurement the runner waits (up to ${QUIET_WAIT_MS / 1000} s) until neither CPU is more than ${NOISY_PCT} % busy, and the load client reads /proc/stat over the window: a row where more than ${NOISY_PCT} % of either CPU went to other processes is marked *noisy* in *valid*.`,
    "",
    "Scenarios:",
    "",
    ...scenarios.map((s) => `- **${s.name}**: ${describe(s)}`),
    ...(withScale ? [`- **${SCALE}**: ${describeScale(scaleOptions)}`] : []),
    "",
    "## Results",
    "",
    table,
    "",
    "## Targets (issue 6)",
    "",
    tgt.text,
    "",
    `${tgt.pass} pass, ${tgt.fail} fail, ${tgt.missing} not measured.${skipped.length ? ` Left out (did not serve): ${skipped.join(", ")}.` : ""}`,
    "",
  ];
  // hand-written analysis below the marker survives re-runs
  const old = existsSync(docPath) ? readFileSync(docPath, "utf8") : "";
  const at = old.indexOf(NOTES_MARKER);
  md.push(NOTES_MARKER, at >= 0 ? old.slice(at + NOTES_MARKER.length).replace(/^\n+/, "") : "");
  mkdirSync(resolve(docPath, ".."), { recursive: true });
  writeFileSync(docPath, md.join("\n"));
  log(`bench: wrote ${relative(ROOT, docPath)}`);
}
process.exit(results.some((r) => !r.result.ok) || scaleRows.some((r) => !r.ok) ? 1 : 0);
