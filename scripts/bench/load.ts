// Load client for the benchmark. One process per (server, scenario), started
// by run.ts pinned to CPU 0; prints one JSON result object on stdout.
//
//   bun scripts/bench/load.ts '<json LoadSpec>'
//
// Lean by design, so it does not hide the server's cost: every payload comes
// from one preallocated "tape" of distinct lines, sends are write(tape, off, len)
// without copies, echoes are verified with Buffer#compare against the tape
// (no decoding to strings), and per-connection state lives in typed arrays.
// It reads the server's CPU (utime+stime from /proc/PID/stat) and its own at the
// edges of the measured window.
import { readFileSync } from "node:fs";
import type { Socket, SocketHandler } from "bun";
import { freePort } from "./ports.ts";
import { encodeProxyHeader } from "../../src/core/proxy-header.ts";

export interface LoadSpec {
  scenario: "stream" | "udp" | "churn" | "idle" | "startup";
  host: string;
  tcpPort: number;
  udpPort: number;
  serverPid: number;
  /** stream: connections; udp: sockets; churn: parallel cycles; idle: connections */
  conns: number;
  /** lines (datagrams) in flight per connection (socket) */
  window: number;
  lineLen: number;
  warmupMs: number;
  measureMs: number;
  /** startup only: the server command (without --port) and how many starts */
  cmd?: string[];
  runs?: number;
  /** idle only: at most this many connections being set up at once */
  batch?: number;
  settleMs?: number;
  /** stream only: TLS to tcpPort (no verification: the cost measured is the server's) */
  tls?: boolean;
  /** stream only: a PROXY header (v1 or v2) with the connection's own addresses first */
  proxy?: 1 | 2;
}

export interface LoadResult {
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
  /** echo bytes that differed from what was sent (must be 0) */
  mismatches: number;
  /** lines/datagrams sent but never echoed back (UDP: lost; TCP: must be 0) */
  lost: number;
  reordered?: number;
  rssBeforeKiB?: number;
  rssAfterKiB?: number;
  kibPerConn?: number;
  startupTcpMs?: number;
  startupUdpMs?: number;
  startupTcpAllMs?: number[];
  startupUdpAllMs?: number[];
}

const TICK = Number(process.env.CLK_TCK ?? "100");
const SERVER_CPU = process.env.BENCH_SERVER_CPU ?? "1";
const LOAD_CPU = process.env.BENCH_LOAD_CPU ?? "0";
const nowNs = () => Bun.nanoseconds();

// ---------------------------------------------------------------- /proc

/** utime+stime of a whole process, in ms (resolution 1 clock tick). */
export function cpuMs(pid: number | "self"): number {
  const s = readFileSync(`/proc/${pid}/stat`, "latin1");
  const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
  // fields after ")" start at field 3 (state); utime is field 14, stime 15.
  return ((Number(f[11]) + Number(f[12])) * 1000) / TICK;
}

export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "latin1"));
  return m ? Number(m[1]) : NaN;
}

// ---------------------------------------------------------------- tape

/** Tape lines; a connection starting at line s sends s, s+1, ... (mod K). */
const K = 4096;

/**
 * K distinct lines of `len` bytes (8 decimal digits of the index, a space,
 * printable filler that depends on the index, LF), followed by `extra` copies
 * of the first lines so that any window of `extra` lines is contiguous.
 */
function buildTape(len: number, extra: number): Buffer {
  const tape = Buffer.alloc((K + extra) * len);
  for (let i = 0; i < K; i++) {
    const o = i * len;
    const digits = String(i).padStart(8, "0");
    for (let j = 0; j < len - 1; j++) {
      tape[o + j] = j < 8 ? digits.charCodeAt(j) : j === 8 ? 0x20 : 33 + ((i * 7 + j * 13) % 90);
    }
    tape[o + len - 1] = 0x0a;
  }
  tape.copy(tape, K * len, 0, extra * len);
  return tape;
}

// ---------------------------------------------------------------- latency histogram

/** Log-linear histogram of nanoseconds, 64 buckets per power of two (≈1.5 %). */
class Histogram {
  counts = new Float64Array(64 + 27 * 64);
  n = 0;
  record(ns: number): void {
    let v = ns > 4294967295 ? 4294967295 : ns < 0 ? 0 : ns >>> 0;
    let idx: number;
    if (v < 64) idx = v;
    else {
      const e = 31 - Math.clz32(v);
      idx = 64 + (e - 6) * 64 + ((v >>> (e - 6)) - 64);
    }
    this.counts[idx]!++;
    this.n++;
  }
  reset(): void {
    this.counts.fill(0);
    this.n = 0;
  }
  /** Value at quantile q, in µs (bucket midpoint). */
  quantileUs(q: number): number {
    if (this.n === 0) return NaN;
    const target = Math.ceil(q * this.n);
    let acc = 0;
    for (let i = 0; i < this.counts.length; i++) {
      acc += this.counts[i]!;
      if (acc >= target) {
        if (i < 64) return i / 1000;
        const e = ((i - 64) >> 6) + 6;
        const sub = (i - 64) & 63;
        const lo = (64 + sub) * 2 ** (e - 6);
        return (lo + 2 ** (e - 7)) / 1000;
      }
    }
    return NaN;
  }
}

// ---------------------------------------------------------------- window bookkeeping

/** Busy and total ticks of each CPU ("cpu0", "cpu1", ...) from /proc/stat. */
function cpuTicks(): Map<string, [number, number]> {
  const m = new Map<string, [number, number]>();
  for (const line of readFileSync("/proc/stat", "latin1").split("\n")) {
    if (!line.startsWith("cpu") || line.startsWith("cpu ")) continue;
    const f = line.split(/\s+/);
    let total = 0;
    for (let i = 1; i <= 8; i++) total += Number(f[i] ?? 0);
    m.set(f[0]!, [total - Number(f[4]) - Number(f[5]), total]);
  }
  return m;
}

/** Share (%) of a CPU's time in the window that went to other work than `ownMs`. */
function otherPct(a: Map<string, [number, number]>, b: Map<string, [number, number]>, cpu: string, ownMs: number): number {
  const x = a.get(cpu);
  const y = b.get(cpu);
  if (!x || !y || y[1] === x[1]) return NaN;
  const busyMs = ((y[0] - x[0]) * 1000) / TICK;
  const totalMs = ((y[1] - x[1]) * 1000) / TICK;
  return Math.max(0, (100 * (busyMs - ownMs)) / totalMs);
}

class Window {
  sys0 = new Map<string, [number, number]>();
  sys1 = new Map<string, [number, number]>();
  t0 = 0;
  srv0 = 0;
  cli0 = 0;
  t1 = 0;
  srv1 = 0;
  cli1 = 0;
  constructor(private readonly pid: number) {}
  start(): void {
    this.sys0 = cpuTicks();
    this.srv0 = cpuMs(this.pid);
    this.cli0 = cpuMs("self");
    this.t0 = nowNs();
  }
  stop(): void {
    this.t1 = nowNs();
    this.srv1 = cpuMs(this.pid);
    this.cli1 = cpuMs("self");
    this.sys1 = cpuTicks();
  }
  result(ops: number, bytes: number): Pick<LoadResult, "ops" | "seconds" | "opsPerSec" | "mbPerSec" | "serverCpuMs" | "serverCpuPct" | "serverCpuUsPerOp" | "clientCpuPct" | "otherOnServerCpuPct" | "otherOnLoadCpuPct"> {
    const seconds = (this.t1 - this.t0) / 1e9;
    const srv = this.srv1 - this.srv0;
    return {
      ops,
      seconds,
      opsPerSec: ops / seconds,
      mbPerSec: bytes / seconds / 1e6,
      serverCpuMs: srv,
      serverCpuPct: (srv / 10 / seconds),
      serverCpuUsPerOp: ops > 0 ? (srv * 1000) / ops : NaN,
      clientCpuPct: ((this.cli1 - this.cli0) / 10 / seconds),
      otherOnServerCpuPct: otherPct(this.sys0, this.sys1, `cpu${SERVER_CPU}`, srv),
      otherOnLoadCpuPct: otherPct(this.sys0, this.sys1, `cpu${LOAD_CPU}`, this.cli1 - this.cli0),
    };
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- TCP streams (ping-pong, pipelined, bulk, fan-in)

/** One stream connection as the spec says: plain, after a PROXY header, over TLS (handshake done), or both. */
async function connectStream(spec: LoadSpec, id: number, handlers: SocketHandler<number>): Promise<Socket<number>> {
  const connect = (h: SocketHandler<number>) => Bun.connect<number>({ hostname: spec.host, port: spec.tcpPort, data: id, socket: h });
  if (!spec.tls) {
    const s = await connect(handlers);
    if (spec.proxy) s.write(header(spec.proxy, s));
    return s;
  }
  let done!: () => void;
  const handshake = new Promise<void>((r) => (done = r));
  const secured = { ...handlers, handshake: () => done() };
  const tls = { rejectUnauthorized: false };
  let s: Socket<number>;
  if (spec.proxy) {
    const raw = await connect({ data() {}, close() {}, error() {} });
    raw.write(header(spec.proxy, raw));
    s = raw.upgradeTLS<number>({ tls, socket: secured, data: id })[1];
  } else {
    s = await Bun.connect<number>({ hostname: spec.host, port: spec.tcpPort, data: id, socket: secured, tls });
  }
  await handshake;
  return s;
}

function header(version: 1 | 2, s: Socket<unknown>): Uint8Array {
  return encodeProxyHeader(version, { address: s.localAddress, port: s.localPort }, { address: s.remoteAddress, port: s.remotePort });
}

async function streamScenario(spec: LoadSpec): Promise<LoadResult> {
  const C = spec.conns;
  const W = spec.window;
  const L = spec.lineLen;
  const tape = buildTape(L, W);
  const period = K * L;
  const txLines = new Float64Array(C);
  const rxBytes = new Float64Array(C);
  const base = new Float64Array(C); // byte offset of the connection's first line in the tape
  const pendOff = new Float64Array(C);
  const pendLen = new Float64Array(C);
  const ring = new Float64Array(C * W); // send timestamps
  const sockets: (Socket<number> | undefined)[] = new Array(C);
  const hist = new Histogram();
  const win = new Window(spec.serverPid);
  let stopping = false;
  let measuring = false;
  let lines = 0;
  let bytes = 0;
  let mismatches = 0;
  let closedEarly = 0;

  function send(s: Socket<number>, id: number): void {
    if (stopping || pendLen[id]! > 0) return;
    const inflight = txLines[id]! - Math.floor(rxBytes[id]! / L);
    const n = W - inflight;
    if (n <= 0) return;
    const off = (base[id]! + txLines[id]! * L) % period;
    const len = n * L;
    const now = nowNs();
    const tx = txLines[id]!;
    for (let k = 0; k < n; k++) ring[id * W + ((tx + k) % W)] = now;
    txLines[id] = tx + n;
    const w = s.write(tape, off, len);
    if (w < len) {
      const done = w > 0 ? w : 0;
      pendOff[id] = off + done;
      pendLen[id] = len - done;
    }
  }

  const handlers = {
    open(s: Socket<number>) {
      s.setNoDelay(true);
    },
    data(s: Socket<number>, chunk: Buffer) {
      const id = s.data;
      const len = chunk.length;
      const rx = rxBytes[id]!;
      const pos = (base[id]! + rx) % period;
      if (pos + len > tape.length || tape.compare(chunk, 0, len, pos, pos + len) !== 0) mismatches++;
      const before = Math.floor(rx / L);
      const after = Math.floor((rx + len) / L);
      rxBytes[id] = rx + len;
      if (after > before) {
        if (measuring) {
          const now = nowNs();
          for (let k = before; k < after; k++) hist.record(now - ring[id * W + (k % W)]!);
          lines += after - before;
          bytes += (after - before) * L;
        }
        send(s, id);
      }
    },
    drain(s: Socket<number>) {
      const id = s.data;
      if (pendLen[id]! <= 0) return;
      const w = s.write(tape, pendOff[id]!, pendLen[id]!);
      if (w > 0) {
        pendOff[id] = pendOff[id]! + w;
        pendLen[id] = pendLen[id]! - w;
      }
    },
    close(s: Socket<number>) {
      if (!stopping) closedEarly++;
      sockets[s.data] = undefined;
    },
    error() {},
  };

  // connect, at most 100 handshakes at a time (listen backlogs differ)
  let next = 0;
  async function connector(): Promise<void> {
    while (next < C) {
      const id = next++;
      base[id] = ((id * 7919) % K) * L;
      sockets[id] = await connectStream(spec, id, handlers);
    }
  }
  await Promise.all(Array.from({ length: Math.min(100, C) }, connector));
  for (let id = 0; id < C; id++) send(sockets[id]!, id);

  await sleep(spec.warmupMs);
  hist.reset();
  lines = 0;
  bytes = 0;
  measuring = true;
  win.start();
  await sleep(spec.measureMs);
  win.stop();
  measuring = false;
  stopping = true;

  // let every line in flight come back, then verify nothing is missing
  const deadline = Date.now() + 5000;
  const missing = () => {
    let m = 0;
    for (let id = 0; id < C; id++) m += txLines[id]! * L - rxBytes[id]!;
    return m;
  };
  while (missing() > 0 && Date.now() < deadline) await sleep(5);
  const lostBytes = missing();
  for (const s of sockets) s?.end();

  const r = win.result(lines, bytes);
  const err = mismatches ? `${mismatches} echoed chunks differ from what was sent` : lostBytes ? `${lostBytes} bytes never echoed` : closedEarly ? `${closedEarly} connections closed by the server` : undefined;
  return {
    ok: !err,
    error: err,
    ...r,
    p50us: hist.quantileUs(0.5),
    p99us: hist.quantileUs(0.99),
    p999us: hist.quantileUs(0.999),
    mismatches,
    lost: Math.ceil(lostBytes / L),
  };
}

// ---------------------------------------------------------------- UDP

async function udpScenario(spec: LoadSpec): Promise<LoadResult> {
  const S = spec.conns;
  const W = spec.window;
  const L = spec.lineLen;
  const tape = buildTape(L, 0);
  const views: Buffer[] = [];
  for (let k = 0; k < K; k++) views.push(tape.subarray(k * L, k * L + L));
  const txSeq = new Float64Array(S);
  const rxSeq = new Float64Array(S);
  const inflight = new Float64Array(S);
  const lastRx = new Float64Array(S);
  const start = new Float64Array(S);
  const sendTs = new Float64Array(S * K); // indexed by tape line
  const hist = new Histogram();
  const win = new Window(spec.serverPid);
  let stopping = false;
  let measuring = false;
  let dgrams = 0;
  let mismatches = 0;
  let reordered = 0;
  let lost = 0;
  const socks: Bun.udp.ConnectedSocket<"buffer">[] = [];

  function send(id: number): void {
    const sock = socks[id]!;
    const now = nowNs();
    while (inflight[id]! < W && !stopping) {
      const k = (start[id]! + txSeq[id]!) % K;
      sendTs[id * K + k] = now;
      txSeq[id]!++;
      inflight[id]!++;
      sock.send(views[k]!);
    }
  }

  for (let id = 0; id < S; id++) {
    start[id] = (id * 7919) % K;
    const sock = await Bun.udpSocket({
      connect: { hostname: spec.host, port: spec.udpPort },
      socket: {
        data(_s, buf) {
          const len = buf.length;
          let k = 0;
          for (let j = 0; j < 8 && j < len; j++) k = k * 10 + (buf[j]! - 48);
          if (len !== L || !(k >= 0 && k < K) || tape.compare(buf, 0, L, k * L, k * L + L) !== 0) {
            mismatches++;
            return;
          }
          if (k !== (start[id]! + rxSeq[id]!) % K) reordered++;
          rxSeq[id]!++;
          if (inflight[id]! > 0) inflight[id]!--;
          const now = nowNs();
          lastRx[id] = now;
          if (measuring) {
            dgrams++;
            hist.record(now - sendTs[id * K + k]!);
          }
          send(id);
        },
        error() {},
      },
    });
    socks.push(sock as Bun.udp.ConnectedSocket<"buffer">);
  }
  // a socket whose datagrams were all lost gets a fresh window after 100 ms
  const stall = setInterval(() => {
    const now = nowNs();
    for (let id = 0; id < S; id++) {
      if (inflight[id]! > 0 && now - lastRx[id]! > 100e6) {
        lost += inflight[id]!;
        inflight[id] = 0;
        lastRx[id] = now;
        send(id);
      }
    }
  }, 50);
  const t = nowNs();
  for (let id = 0; id < S; id++) {
    lastRx[id] = t;
    send(id);
  }
  await sleep(spec.warmupMs);
  hist.reset();
  lost = 0;
  reordered = 0;
  measuring = true;
  win.start();
  await sleep(spec.measureMs);
  win.stop();
  measuring = false;
  stopping = true;
  const deadline = Date.now() + 1000;
  const pending = () => inflight.reduce((a, b) => a + b, 0);
  while (pending() > 0 && Date.now() < deadline) await sleep(5);
  lost += pending();
  clearInterval(stall);
  for (const s of socks) s.close();
  const r = win.result(dgrams, dgrams * L);
  const err = mismatches ? `${mismatches} datagrams differ from what was sent` : undefined;
  return { ok: !err, error: err, ...r, p50us: hist.quantileUs(0.5), p99us: hist.quantileUs(0.99), p999us: hist.quantileUs(0.999), mismatches, lost, reordered };
}

// ---------------------------------------------------------------- churn: connect, one line, close

async function churnScenario(spec: LoadSpec): Promise<LoadResult> {
  const P = spec.conns;
  const L = spec.lineLen;
  const tape = buildTape(L, 0);
  const rx = new Float64Array(P);
  const t0 = new Float64Array(P);
  const hist = new Histogram();
  const win = new Window(spec.serverPid);
  let stopping = false;
  let measuring = false;
  let cycles = 0;
  let mismatches = 0;
  let failures = 0;
  let running = 0;
  let lastError = "";

  const handlers = {
    open(s: Socket<number>) {
      s.setNoDelay(true);
      const id = s.data;
      rx[id] = 0;
      s.write(tape, (id % K) * L, L);
    },
    data(s: Socket<number>, chunk: Buffer) {
      const id = s.data;
      const pos = (id % K) * L + rx[id]!;
      const len = chunk.length;
      if (rx[id]! + len > L || tape.compare(chunk, 0, len, pos, pos + len) !== 0) mismatches++;
      rx[id] = rx[id]! + len;
      if (rx[id]! >= L) s.end();
    },
    close(s: Socket<number>) {
      const id = s.data;
      if (rx[id] !== L) failures++;
      else if (measuring) {
        cycles++;
        hist.record(nowNs() - t0[id]!);
      }
      cycle(id);
    },
    error() {},
  };

  function cycle(id: number): void {
    if (stopping) {
      running--;
      return;
    }
    t0[id] = nowNs();
    Bun.connect<number>({ hostname: spec.host, port: spec.tcpPort, data: id, socket: handlers }).catch((e) => {
      failures++;
      lastError = String(e?.code ?? e);
      setTimeout(() => cycle(id), 10);
    });
  }

  for (let id = 0; id < P; id++) {
    running++;
    cycle(id);
  }
  await sleep(spec.warmupMs);
  hist.reset();
  measuring = true;
  win.start();
  await sleep(spec.measureMs);
  win.stop();
  measuring = false;
  stopping = true;
  const deadline = Date.now() + 3000;
  while (running > 0 && Date.now() < deadline) await sleep(5);
  const r = win.result(cycles, cycles * L);
  const err = mismatches ? `${mismatches} echoes differ` : failures ? `${failures} connections failed (${lastError || "no echo"})` : undefined;
  return { ok: !err, error: err, ...r, p50us: hist.quantileUs(0.5), p99us: hist.quantileUs(0.99), p999us: hist.quantileUs(0.999), mismatches, lost: failures };
}

// ---------------------------------------------------------------- idle: N connections, one echo each, then silence

async function idleScenario(spec: LoadSpec): Promise<LoadResult> {
  const N = spec.conns;
  const L = spec.lineLen;
  const B = spec.batch ?? 100;
  const tape = buildTape(L, 0);
  const rx = new Float64Array(N);
  const resolvers: ((ok: boolean) => void)[] = new Array(N);
  const sockets: Socket<number>[] = [];
  let mismatches = 0;
  let closedEarly = 0;
  let phaseDone = false;

  const handlers = {
    open(s: Socket<number>) {
      s.setNoDelay(true);
      s.write(tape, (s.data % K) * L, L);
    },
    data(s: Socket<number>, chunk: Buffer) {
      const id = s.data;
      const pos = (id % K) * L + rx[id]!;
      const len = chunk.length;
      if (rx[id]! + len > L || tape.compare(chunk, 0, len, pos, pos + len) !== 0) mismatches++;
      rx[id] = rx[id]! + len;
      if (rx[id]! >= L) resolvers[id]?.(true);
    },
    close(s: Socket<number>) {
      if (!phaseDone) closedEarly++;
      resolvers[s.data]?.(false);
    },
    error() {},
  };

  async function open(id: number): Promise<boolean> {
    const done = new Promise<boolean>((r) => (resolvers[id] = r));
    sockets.push(await Bun.connect<number>({ hostname: spec.host, port: spec.tcpPort, data: id, socket: handlers }));
    return done;
  }

  // warm-up: a few connections opened and closed, so lazy setup is behind us
  const warm: Socket<number>[] = [];
  for (let id = 0; id < Math.min(100, N); id++) {
    const s = await Bun.connect<number>({ hostname: spec.host, port: spec.tcpPort, data: id, socket: { ...handlers, close() {} } });
    warm.push(s);
  }
  await sleep(200);
  for (const s of warm) s.end();
  rx.fill(0);
  await sleep(spec.settleMs ?? 1000);

  const rssBefore = rssKiB(spec.serverPid);
  const win = new Window(spec.serverPid);
  win.start();
  let next = 0;
  let failed = 0;
  async function worker(): Promise<void> {
    while (next < N) {
      const id = next++;
      if (!(await open(id).catch(() => false))) failed++;
    }
  }
  await Promise.all(Array.from({ length: Math.min(B, N) }, worker));
  win.stop();
  await sleep(spec.settleMs ?? 1000);
  const rssAfter = rssKiB(spec.serverPid);
  const stillOpen = sockets.length - closedEarly;
  phaseDone = true;
  for (const s of sockets) s.end();
  await sleep(200);
  const r = win.result(N - failed, (N - failed) * L);
  const err = mismatches ? `${mismatches} echoes differ` : failed ? `${failed} connections failed` : closedEarly ? `${closedEarly} connections closed by the server while idle` : undefined;
  return {
    ok: !err,
    error: err,
    ...r,
    mismatches,
    lost: failed,
    rssBeforeKiB: rssBefore,
    rssAfterKiB: rssAfter,
    kibPerConn: (rssAfter - rssBefore) / Math.max(1, stillOpen),
  };
}

// ---------------------------------------------------------------- startup: spawn to first TCP echo / first UDP echo


async function startupScenario(spec: LoadSpec): Promise<LoadResult> {
  const L = spec.lineLen;
  const tape = buildTape(L, 0);
  const line = tape.subarray(0, L);
  const tcpTimes: number[] = [];
  const udpTimes: number[] = [];
  let mismatches = 0;
  // run -1 is a warm-up start (the first start after another binary is often far slower): not counted
  for (let run = -1; run < (spec.runs ?? 5); run++) {
    const port = await freePort();
    let tcpAt = 0;
    let udpAt = 0;
    let t0 = 0;
    const udp = await Bun.udpSocket({
      socket: {
        data(_s, buf) {
          if (udpAt) return;
          if (buf.length !== L || tape.compare(buf, 0, L, 0, L) !== 0) mismatches++;
          udpAt = nowNs() - t0;
        },
        error() {},
      },
    });
    let rx = 0;
    const tcpHandlers = {
      open(s: Socket<undefined>) {
        s.write(line);
      },
      data(s: Socket<undefined>, chunk: Buffer) {
        if (tape.compare(chunk, 0, chunk.length, rx, rx + chunk.length) !== 0) mismatches++;
        rx += chunk.length;
        if (rx >= L && !tcpAt) {
          tcpAt = nowNs() - t0;
          s.end();
        }
      },
      error() {},
    };
    t0 = nowNs();
    const proc = Bun.spawn(["taskset", "-c", "1", ...spec.cmd!, "--port", String(port)], { stdout: "ignore", stderr: "ignore" });
    const giveUp = t0 + 10e9;
    // TCP: retry connect as soon as it is refused
    const tcpProbe = (async () => {
      while (!tcpAt && nowNs() < giveUp) {
        try {
          rx = 0;
          const s = await Bun.connect({ hostname: spec.host, port, socket: tcpHandlers });
          while (!tcpAt && nowNs() < giveUp) await new Promise((r) => setImmediate(r));
          s.end();
        } catch {
          await new Promise((r) => setImmediate(r));
        }
      }
    })();
    // UDP: a datagram every 200 µs until one comes back
    const udpProbe = (async () => {
      let last = 0;
      while (!udpAt && nowNs() < giveUp) {
        const n = nowNs();
        if (n - last >= 200e3) {
          try {
            udp.send(line, port, spec.host);
          } catch {} // ECONNREFUSED from the ICMP error of the previous try
          last = n;
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    await Promise.all([tcpProbe, udpProbe]);
    udp.close();
    proc.kill("SIGKILL");
    await proc.exited;
    if (!tcpAt || !udpAt) return { ...emptyResult(), ok: false, error: `server did not echo within 10 s (tcp=${!!tcpAt} udp=${!!udpAt})` };
    if (run >= 0) {
      tcpTimes.push(tcpAt / 1e6);
      udpTimes.push(udpAt / 1e6);
    }
    await sleep(50);
  }
  const err = mismatches ? `${mismatches} echoes differ` : undefined;
  return {
    ...emptyResult(),
    ok: !err,
    error: err,
    mismatches,
    startupTcpMs: median(tcpTimes),
    startupUdpMs: median(udpTimes),
    startupTcpAllMs: tcpTimes.map((x) => Math.round(x * 100) / 100),
    startupUdpAllMs: udpTimes.map((x) => Math.round(x * 100) / 100),
  };
}

export function median(xs: number[]): number {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

function emptyResult(): LoadResult {
  return { ok: true, ops: 0, seconds: 0, opsPerSec: NaN, mbPerSec: NaN, serverCpuMs: NaN, serverCpuPct: NaN, serverCpuUsPerOp: NaN, clientCpuPct: NaN, mismatches: 0, lost: 0 };
}

// ---------------------------------------------------------------- readiness

/** Wait until the server echoes one TCP line and one UDP datagram (10 s at most). */
async function waitReady(spec: LoadSpec): Promise<void> {
  const deadline = Date.now() + 10_000;
  const line = Buffer.from("ready-probe-0123456789\n");
  for (;;) {
    try {
      const got = await new Promise<boolean>((resolve, reject) => {
        let n = 0;
        // As the measured connections will connect (TLS, PROXY header), so readiness means that works too.
        connectStream(spec, 0, {
          data(s, c) {
            n += c.length;
            if (n >= line.length) {
              resolve(true); // before end(): end() may run close() synchronously
              s.end();
            }
          },
          close() {
            resolve(n >= line.length);
          },
          error() {},
        }).then((s) => s.write(line), reject);
      });
      if (got) break;
    } catch {}
    if (Date.now() > deadline) throw new Error("server never echoed a TCP line");
    await sleep(20);
  }
  let ok = false;
  const udp = await Bun.udpSocket({
    socket: {
      data() {
        ok = true;
      },
      error() {},
    },
  });
  while (!ok) {
    if (Date.now() > deadline) throw new Error("server never echoed a UDP datagram");
    try {
      udp.send(line, spec.udpPort, spec.host);
    } catch {}
    await sleep(20);
  }
  udp.close();
}

// ---------------------------------------------------------------- main

if (import.meta.main) {
  const spec = JSON.parse(process.argv[2] ?? "{}") as LoadSpec;
  let result: LoadResult;
  try {
    if (spec.scenario !== "startup") await waitReady(spec);
    switch (spec.scenario) {
      case "stream":
        result = await streamScenario(spec);
        break;
      case "udp":
        result = await udpScenario(spec);
        break;
      case "churn":
        result = await churnScenario(spec);
        break;
      case "idle":
        result = await idleScenario(spec);
        break;
      case "startup":
        result = await startupScenario(spec);
        break;
      default:
        throw new Error(`unknown scenario ${spec.scenario}`);
    }
  } catch (e) {
    result = { ...emptyResult(), ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  process.stdout.write(JSON.stringify(result) + "\n");
  process.exit(0);
}
