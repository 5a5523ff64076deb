// Many TCP echo clients in one process, each checking every byte it gets back.
//   args: { host, port, count, seed, mode: "pingpong" | "stream", intervalMs?, window?,
//           lineMin, lineMax, connectConcurrency?, durationMs?, binary? }
// Protocol: emits "connected" once every socket is open, starts on {cmd:"go"},
// stops sending on {cmd:"stop", signalUs?} or after durationMs, then emits "result".
// {cmd:"signal", signalUs} only records the time of a signal and goes on sending.
//  - pingpong: one line in flight per client, the next after ~intervalMs;
//    latency = send to last byte of the echo.
//  - stream: `window` lines in flight per client, the next sent as soon as one
//    is answered; used for the graceful-stop scenario, where {cmd:"stop"}
//    carries the time of the signal and the client then reads until the server
//    closes, and reports which lines written before that time went unanswered.
import type { Socket } from "bun";
import { args, emit, nextCommand, nowUs, onCommand, percentile, pool, Rng, fatal } from "./lib.ts";

const host: string = args.host ?? "127.0.0.1";
const port: number = args.port;
const count: number = args.count;
const mode: "pingpong" | "stream" = args.mode ?? "pingpong";
const intervalMs: number = args.intervalMs ?? 1000;
const window: number = args.window ?? 4;
const lineMin: number = args.lineMin ?? 16;
const lineMax: number = args.lineMax ?? 200;
const binary: boolean = args.binary ?? true;
const rng = new Rng(args.seed ?? 1);

interface Line {
  bytes: Uint8Array;
  sentUs: number;
  /** When the kernel took its last byte (0 = not yet). */
  writtenUs: number;
}

const latenciesMs: number[] = [];
/** The first replies slower than 200 ms: "latency@seconds-after-go". */
const slowest: string[] = [];
let goUs = 0;
let mismatches = 0;
let firstMismatch = "";
let bytesChecked = 0;
let linesAnswered = 0;
/** Stream mode: when each answered line had been written (to split at the signal). */
const answeredWrittenUs: number[] = [];
let sending = false;
let stopAt = Infinity;

class Client {
  socket!: Socket<Client>;
  /** Lines sent (or being sent) and not yet fully echoed, oldest first. */
  readonly inFlight: Line[] = [];
  /** Bytes of inFlight[0] already matched. */
  headMatched = 0;
  /** Output not yet accepted by the kernel. */
  private out: Uint8Array[] = [];
  private outLines: Line[] = [];
  lines = 0;
  maxLatencyMs = 0;
  seq = 0;
  closed = false;
  ended = false;
  error = "";
  timer: ReturnType<typeof setTimeout> | null = null;

  constructor(readonly id: number) {}

  makeLine(): Line {
    const n = rng.int(lineMin, lineMax);
    const head = new TextEncoder().encode(`c${this.id} s${this.seq++} `);
    const b = new Uint8Array(Math.max(n, head.length + 1));
    b.set(head);
    for (let i = head.length; i < b.length - 1; i++) {
      let v = binary ? rng.int(0, 255) : rng.int(0x20, 0x7e);
      if (v === 0x0a) v = 0x0b;
      b[i] = v;
    }
    b[b.length - 1] = 0x0a;
    return { bytes: b, sentUs: nowUs(), writtenUs: 0 };
  }

  send(): void {
    if (!sending || this.closed || nowUs() >= stopAt) return;
    const line = this.makeLine();
    this.inFlight.push(line);
    this.out.push(line.bytes);
    this.outLines.push(line);
    this.flush();
  }

  flush(): void {
    while (this.out.length > 0) {
      const head = this.out[0]!;
      const n = this.socket.write(head);
      if (n < 0) return;
      if (n < head.length) {
        this.out[0] = head.subarray(n);
        return;
      }
      this.out.shift();
      this.outLines.shift()!.writtenUs = nowUs();
    }
  }

  onData(data: Uint8Array): void {
    let i = 0;
    while (i < data.length) {
      const line = this.inFlight[0];
      if (line === undefined) {
        this.mismatch(`unexpected ${data.length - i} bytes with nothing in flight`);
        return;
      }
      const want = line.bytes;
      const take = Math.min(want.length - this.headMatched, data.length - i);
      for (let k = 0; k < take; k++) {
        if (data[i + k] !== want[this.headMatched + k]) {
          this.mismatch(`line ${this.id}/${this.lines}: byte ${this.headMatched + k} is ${data[i + k]}, expected ${want[this.headMatched + k]}`);
          return;
        }
      }
      i += take;
      this.headMatched += take;
      bytesChecked += take;
      if (this.headMatched === want.length) {
        this.inFlight.shift();
        this.headMatched = 0;
        this.lines++;
        linesAnswered++;
        if (mode === "stream") answeredWrittenUs.push(line.writtenUs);
        const lat = (nowUs() - line.sentUs) / 1000;
        latenciesMs.push(lat);
        if (lat > 200 && slowest.length < 20) slowest.push(`${lat.toFixed(0)}ms@${((line.sentUs - goUs) / 1e6).toFixed(2)}s`);
        if (lat > this.maxLatencyMs) this.maxLatencyMs = lat;
        if (mode === "pingpong") {
          const wait = intervalMs * (0.5 + rng.next());
          this.timer = setTimeout(() => this.send(), wait);
        } else {
          this.send();
        }
      }
    }
  }

  mismatch(what: string): void {
    mismatches++;
    if (!firstMismatch) firstMismatch = what;
    this.socket.terminate();
  }
}

const clients = Array.from({ length: count }, (_, i) => new Client((args.idBase ?? 0) + i));
let connectErrors = 0;
let firstConnectError = "";
const t0 = performance.now();
await pool(clients, args.connectConcurrency ?? 100, async (c) => {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      c.socket = await Bun.connect<Client>({
        hostname: host,
        port,
        data: c,
        allowHalfOpen: true,
        socket: {
          data: (s, d) => s.data.onData(d),
          drain: (s) => s.data.flush(),
          end: (s) => {
            s.data.ended = true;
            s.end();
          },
          close: (s, err) => {
            s.data.closed = true;
            if (err) s.data.error = err.message;
            if (s.data.timer) clearTimeout(s.data.timer);
          },
          error: (s, err) => {
            s.data.error = err.message;
          },
        },
      });
      c.socket.setNoDelay(true);
      return;
    } catch (e) {
      if (attempt === 2) {
        connectErrors++;
        firstConnectError ||= String(e);
        c.closed = true;
      } else {
        await Bun.sleep(50);
      }
    }
  }
});
emit("connected", { count: count - connectErrors, connectErrors, firstConnectError, ms: Math.round(performance.now() - t0) });
if (connectErrors > 0 && !args.tolerateConnectErrors) fatal(`${connectErrors} connects failed: ${firstConnectError}`);

let markedSignalUs: number | undefined;
onCommand((m) => {
  if (m.cmd === "signal") markedSignalUs = m.signalUs;
});
const go = await nextCommand("go");
sending = true;
goUs = nowUs();
const durationMs: number = go.durationMs ?? args.durationMs ?? 0;
if (durationMs > 0) stopAt = nowUs() + durationMs * 1000;
// Start everyone spread over one interval, so the load is even.
for (const c of clients) {
  if (c.closed) continue;
  if (mode === "pingpong") c.timer = setTimeout(() => c.send(), rng.next() * intervalMs);
  else for (let k = 0; k < window; k++) c.send();
}

const stopMsg = await Promise.race([
  nextCommand("stop"),
  durationMs > 0 ? Bun.sleep(durationMs).then(() => ({ cmd: "stop" }) as Record<string, any>) : new Promise<never>(() => {}),
]);
sending = false;
stopAt = Math.min(stopAt, nowUs());
const signalUs: number | undefined = stopMsg.signalUs ?? markedSignalUs;

if (mode === "pingpong") {
  // Let the last lines come back, then close from our side.
  const deadline = performance.now() + (args.drainMs ?? 5000);
  while (performance.now() < deadline && clients.some((c) => !c.closed && c.inFlight.length > 0)) await Bun.sleep(20);
} else {
  // Graceful stop: read until the server closes every connection.
  const deadline = performance.now() + (args.drainMs ?? 8000);
  while (performance.now() < deadline && clients.some((c) => !c.closed)) await Bun.sleep(20);
}

let answeredBeforeSignal = 0;
let answeredAfterSignal = 0;
let unansweredBeforeSignal = 0;
let firstUnanswered = "";
let unansweredAfterSignal = 0;
let closedByServer = 0;
let resets = 0;
let stillOpen = 0;
let starved = 0;
let minLines = Infinity;
for (const c of clients) {
  if (c.ended || c.closed) closedByServer += c.ended ? 1 : 0;
  if (/reset|ECONNRESET/i.test(c.error)) resets++;
  if (!c.closed) stillOpen++;
  if (c.lines < minLines) minLines = c.lines;
  if (c.maxLatencyMs > 1000 || (mode === "pingpong" && c.lines === 0)) starved++;
  if (signalUs !== undefined) {
    for (const l of c.inFlight) {
      if (l.writtenUs !== 0 && l.writtenUs < signalUs) {
        unansweredBeforeSignal++;
        firstUnanswered ||= `client ${c.id}: line written ${((signalUs - l.writtenUs) / 1000).toFixed(1)} ms before the signal, ${c.headMatched} of ${l.bytes.length} bytes back; error=${c.error}`;
      } else unansweredAfterSignal++;
    }
  }
}
if (signalUs !== undefined) {
  for (const w of answeredWrittenUs) {
    if (w < signalUs) answeredBeforeSignal++;
    else answeredAfterSignal++;
  }
}
const lat = latenciesMs.slice();
emit("result", {
  clients: count - connectErrors,
  lines: linesAnswered,
  bytesChecked,
  mismatches,
  firstMismatch,
  maxLatencyMs: Math.round(percentile(lat, 100)),
  p50LatencyMs: Math.round(percentile(lat, 50) * 10) / 10,
  p99LatencyMs: Math.round(percentile(lat, 99) * 10) / 10,
  starved,
  slowest: slowest.join(" "),
  minLinesPerClient: minLines === Infinity ? 0 : minLines,
  answeredBeforeSignal,
  answeredAfterSignal,
  unansweredBeforeSignal,
  firstUnanswered,
  unansweredAfterSignal,
  closedByServer,
  resets,
  stillOpen,
});
for (const c of clients) if (!c.closed) c.socket.terminate();
process.exit(0);
