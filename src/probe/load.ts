// Load: C connections (or UDP sockets), each keeping D lines in flight, every
// echoed byte compared with what was sent. The repository's one load engine:
// `epoll-echo probe --load` runs it for a duration (runLoad below); the
// benchmark (scripts/bench/measure.ts) drives its phases itself: open, start,
// a warm-up, counters reset when the measured window starts, stop, settle.
// A line budget per connection gives the benchmark's churn (connect, one
// line, close, again) and idle (one line, then quiet) clients.
//
// Lean by construction: each connection owns one ring of D preallocated
// lines; a line's slot is rewritten (only its sequence digits) for the next
// line once its echo has been verified, and writes go straight from the
// ring. The bytes in flight lie in the ring in order, so an echo is checked
// with at most two native compares per read, never decoded. RTTs go into a
// fixed-size histogram; one clock read per read() or sweep.
import type { Socket } from "bun";
import { LatencyHistogram } from "../core/latency.ts";
import { readSeq, writeLine, writeSeq } from "../core/payload.ts";
import { WriteQueue } from "../core/write-queue.ts";
import { errorCode, errorText } from "../core/error-text.ts";
import { openStream, openUdp, ProbeConnectError, streamProto, formatHostPort, type Endpoint, type StreamOptions, type UdpClient } from "./net.ts";
import type { LoadReport, Progress } from "./report.ts";
import type { Stopper } from "./stopper.ts";

/** What each connection (TCP) carries before it is done, and what it does then. */
export interface LineBudget {
  lines: number;
  /** "reconnect": close (FIN) and let a fresh connection take its place; "idle": stay open, quiet. */
  then: "reconnect" | "idle";
}

export interface EngineParams {
  endpoint: Endpoint;
  /** TCP only: TLS and/or a PROXY header first. */
  stream: StreamOptions;
  udp: boolean;
  connections: number;
  pipeline: number;
  size: number;
  /** UDP: a datagram unanswered this long is lost. Both: settle() waits at most this long. */
  timeoutMs: number;
  /** TCP only; default: no limit, a connection carries lines until the run stops. */
  budget?: LineBudget;
  /** A connection-level problem worth a line on stderr (already counted). */
  onEvent(message: string): void;
}

/** Counters shared by every connection of a run. */
export class LoadCounters {
  sent = 0;
  received = 0;
  bytes = 0;
  lost = 0;
  mismatched = 0;
  late = 0;
  disconnects = 0;
  /** RTTs since the last progress tick; merged into `all` at each tick. */
  readonly recent = new LatencyHistogram();
  readonly all = new LatencyHistogram();
  /** New lines may be sent (false once the duration is over). */
  running = false;

  /** Every RTT so far: `recent` merged into `all`. */
  latency(): LatencyHistogram {
    this.all.merge(this.recent);
    this.recent.reset();
    return this.all;
  }

  reset(): void {
    this.sent = this.received = this.bytes = this.lost = this.mismatched = this.late = this.disconnects = 0;
    this.recent.reset();
    this.all.reset();
  }
}

const RECONNECT_DELAY_MS = 100;
/** TCP handshakes in progress at once while connecting (listen backlogs are finite). */
export const CONNECT_BATCH = 100;

class TcpLoadConnection {
  /** A Buffer for its native compare(). */
  private readonly ring: Buffer;
  private readonly sentAt: Float64Array;
  private socket: Socket<TcpLoadConnection> | null = null;
  /**
   * What the kernel has not taken yet, flushed on drain. Not bounded by
   * marks: the pipeline depth bounds it. The queue keeps views of the ring,
   * which stay valid: a slot is only reused once its echo has been verified.
   */
  private out: WriteQueue | null = null;
  private nextSend = 0;
  private nextRecv = 0;
  /** Bytes of line nextRecv verified so far. */
  private off = 0;
  /** Lines this connection may still send before its budget is spent. */
  private unsent = Infinity;
  closedForGood = false;

  constructor(
    private readonly ep: Endpoint,
    private readonly stream: StreamOptions,
    private readonly depth: number,
    private readonly size: number,
    private readonly budget: LineBudget | undefined,
    private readonly totals: LoadCounters,
    private readonly onEvent: (m: string) => void,
  ) {
    this.ring = Buffer.alloc(depth * size);
    this.sentAt = new Float64Array(depth);
    for (let slot = 0; slot < depth; slot++) writeLine(this.ring, slot * size, size, slot);
  }

  get inFlight(): number {
    return this.nextSend - this.nextRecv;
  }

  async connect(): Promise<void> {
    const socket = await openStream<TcpLoadConnection>(
      this.ep,
      this,
      {
        data: (s, chunk) => s.data.onData(chunk),
        drain: (s) => void s.data.out?.flush(),
        close: (s) => s.data.onClose(s),
        error: () => {},
        connectError: () => {},
      },
      this.stream,
    );
    if (this.closedForGood) return void socket.terminate(); // the run ended while connecting
    socket.setNoDelay(true);
    this.socket = socket;
    this.out = new WriteQueue(socket);
    this.nextRecv = this.nextSend;
    this.off = 0;
    this.unsent = this.budget?.lines ?? Infinity;
    if (this.totals.running) this.start();
  }

  /** Put the whole pipeline in flight. */
  start(): void {
    this.send(Math.min(this.depth, this.unsent));
  }

  /** Lay out and write the next k lines. */
  private send(k: number): void {
    const { ring, size, depth } = this;
    const now = performance.now();
    const first = this.nextSend;
    for (let j = 0; j < k; j++) {
      const seq = first + j;
      const slot = seq % depth;
      writeSeq(ring, slot * size, seq);
      this.sentAt[slot] = now;
    }
    this.nextSend += k;
    this.unsent -= k;
    this.totals.sent += k;
    const out = this.socket === null ? null : this.out;
    if (out === null) return;
    const s0 = first % depth;
    const end = s0 + k;
    if (end <= depth) out.write(ring, s0 * size, end * size);
    else {
      out.write(ring, s0 * size, depth * size);
      out.write(ring, 0, (end - depth) * size);
    }
  }

  private onData(chunk: Buffer): void {
    const { ring, size, depth, totals } = this;
    const n = chunk.length;
    const expected = this.inFlight * size - this.off;
    if (n > expected) return this.fail(`${n - expected} bytes more than was sent`);
    // The bytes in flight lie in the ring in order, wrapping at its end.
    const pos = (this.nextRecv % depth) * size + this.off;
    const head = Math.min(n, ring.length - pos);
    if (ring.compare(chunk, 0, head, pos, pos + head) !== 0 || (head < n && ring.compare(chunk, head, n, 0, n - head) !== 0)) {
      return this.fail(this.whereDiffers(chunk, pos));
    }
    const total = this.off + n;
    const done = Math.floor(total / size);
    this.off = total - done * size;
    if (done === 0) return;
    const now = performance.now();
    for (let k = 0; k < done; k++) totals.recent.record(now - this.sentAt[(this.nextRecv + k) % depth]!);
    this.nextRecv += done;
    totals.received += done;
    totals.bytes += done * size;
    if (!totals.running) return;
    if (this.unsent > 0) this.send(Math.min(done, this.unsent));
    else if (this.inFlight === 0 && this.budget?.then === "reconnect") this.recycle();
  }

  /** The first differing byte of a chunk that failed the compare, as "line L differs at byte B". */
  private whereDiffers(chunk: Uint8Array, pos: number): string {
    const ring = this.ring;
    let j = 0;
    while (j < chunk.length && chunk[j] === ring[(pos + j) % ring.length]) j++;
    const at = this.off + j;
    return `line ${this.nextRecv + Math.floor(at / this.size)} differs at byte ${at % this.size}`;
  }

  /** Wrong bytes: the stream can no longer be matched; count, drop, reconnect. */
  private fail(why: string): void {
    this.totals.mismatched++;
    this.totals.lost += this.inFlight - 1;
    this.nextRecv = this.nextSend;
    this.onEvent(`mismatch on a connection to ${formatHostPort(this.ep.address, this.ep.port)}: ${why}; reconnecting`);
    const s = this.socket;
    this.socket = null;
    s?.terminate();
    this.reconnectLater();
  }

  /** Budget spent: close as a client does (FIN) and connect afresh. */
  private recycle(): void {
    const s = this.socket;
    this.socket = null;
    s?.end();
    this.connect().catch((err) => {
      this.onEvent(`reconnect failed: ${errorText(err)}`);
      this.reconnectLater();
    });
  }

  private onClose(s: Socket<TcpLoadConnection>): void {
    if (this.socket !== s) return; // one we closed ourselves
    this.socket = null;
    if (this.closedForGood) return;
    this.totals.disconnects++;
    this.totals.lost += this.inFlight;
    this.nextRecv = this.nextSend;
    this.onEvent(`connection to ${formatHostPort(this.ep.address, this.ep.port)} closed by the server; reconnecting`);
    this.reconnectLater();
  }

  private reconnectLater(): void {
    if (!this.totals.running || this.closedForGood) return;
    setTimeout(() => {
      if (!this.totals.running || this.closedForGood) return;
      this.connect().catch((err) => {
        this.onEvent(`reconnect failed: ${errorText(err)}`);
        this.reconnectLater();
      });
    }, RECONNECT_DELAY_MS);
  }

  /** End of the run: lines still in flight are lost. */
  close(): void {
    this.closedForGood = true;
    this.totals.lost += this.inFlight;
    this.nextRecv = this.nextSend;
    const s = this.socket;
    this.socket = null;
    s?.terminate();
  }
}

class UdpLoadSocket {
  private readonly ring: Uint8Array;
  /** Slot s's line, as its own view: one send() per datagram, no view per send. */
  private readonly lines: Uint8Array[] = [];
  private readonly sentAt: Float64Array;
  /** Seq in flight per slot, -1 when the slot is idle. */
  private readonly slotSeq: Float64Array;
  /** Slots whose send the kernel refused (buffer full): retried on drain. */
  private blocked: number[] = [];
  private socket: UdpClient | null = null;

  constructor(
    private readonly ep: Endpoint,
    private readonly depth: number,
    private readonly size: number,
    private readonly timeoutMs: number,
    private readonly totals: LoadCounters,
    private readonly onEvent: (m: string) => void,
  ) {
    this.ring = new Uint8Array(depth * size);
    this.sentAt = new Float64Array(depth);
    this.slotSeq = new Float64Array(depth).fill(-1);
    // Slot s carries seqs s, s + depth, s + 2*depth...: seq % depth finds the slot.
    for (let slot = 0; slot < depth; slot++) {
      writeLine(this.ring, slot * size, size, slot);
      this.lines.push(this.ring.subarray(slot * size, (slot + 1) * size));
    }
  }

  get inFlight(): number {
    let n = 0;
    for (const s of this.slotSeq) if (s >= 0) n++;
    return n;
  }

  async open(): Promise<void> {
    this.socket = await openUdp(this.ep, {
      datagram: (d) => this.onDatagram(d),
      error: (err) => this.onError(err),
      drain: () => this.retryBlocked(),
    });
  }

  /** Put every slot in flight. */
  start(): void {
    const now = performance.now();
    for (let slot = 0; slot < this.depth; slot++) this.launch(slot, slot, now);
  }

  private launch(slot: number, seq: number, now: number): void {
    writeSeq(this.ring, slot * this.size, seq);
    this.slotSeq[slot] = seq;
    this.sentAt[slot] = now;
    this.totals.sent++;
    this.transmit(slot);
  }

  private transmit(slot: number): void {
    const socket = this.socket;
    if (socket === null) return;
    let ok = false;
    try {
      ok = socket.send(this.lines[slot]!);
    } catch {
      ok = false;
    }
    if (!ok) this.blocked.push(slot);
  }

  private retryBlocked(): void {
    const slots = this.blocked;
    this.blocked = [];
    const now = performance.now();
    for (const slot of slots) {
      this.sentAt[slot] = now;
      this.transmit(slot);
    }
  }

  private next(slot: number, now: number): void {
    if (this.totals.running) this.launch(slot, this.slotSeq[slot]! + this.depth, now);
    else this.slotSeq[slot] = -1;
  }

  private onDatagram(d: Uint8Array): void {
    const totals = this.totals;
    const seq = readSeq(d);
    const slot = seq >= 0 ? seq % this.depth : -1;
    if (slot < 0 || this.slotSeq[slot] !== seq) {
      // Unreadable sequence digits are a corrupted echo; a readable one that
      // is not in flight answers a datagram already counted lost.
      if (seq < 0) totals.mismatched++;
      else totals.late++;
      return;
    }
    const now = performance.now();
    totals.received++;
    totals.bytes += d.length;
    totals.recent.record(now - this.sentAt[slot]!);
    if (Buffer.compare(this.lines[slot]!, d) !== 0) totals.mismatched++;
    this.next(slot, now);
  }

  private onError(err: unknown): void {
    if (errorCode(err) === "ECONNREFUSED") return; // the sweep counts the loss
    this.onEvent(`UDP socket error: ${errorText(err)}`);
  }

  /** Give up on datagrams older than the timeout (run a few times a second). */
  sweep(now: number): void {
    const limit = now - this.timeoutMs;
    for (let slot = 0; slot < this.depth; slot++) {
      if (this.slotSeq[slot]! >= 0 && this.sentAt[slot]! <= limit) {
        this.totals.lost++;
        this.next(slot, now);
      }
    }
  }

  close(): void {
    for (let slot = 0; slot < this.depth; slot++) {
      if (this.slotSeq[slot]! >= 0) this.totals.lost++;
      this.slotSeq[slot] = -1;
    }
    this.socket?.close();
    this.socket = null;
  }
}

const UDP_SWEEP_MS = 50;

/** The connections (or UDP sockets) of one run and its counters, driven phase by phase. */
export class LoadEngine {
  readonly counters = new LoadCounters();
  private readonly tcp: TcpLoadConnection[] = [];
  private readonly udp: UdpLoadSocket[] = [];
  private sweeper: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly p: EngineParams) {
    const { endpoint: ep, connections, pipeline, size } = p;
    for (let i = 0; i < connections; i++) {
      if (p.udp) this.udp.push(new UdpLoadSocket(ep, pipeline, size, p.timeoutMs, this.counters, p.onEvent));
      else this.tcp.push(new TcpLoadConnection(ep, p.stream, pipeline, size, p.budget, this.counters, p.onEvent));
    }
  }

  /**
   * Connect every TCP connection (CONNECT_BATCH handshakes at a time) or open
   * every UDP socket; nothing is sent yet. A TCP connection that cannot be
   * made ends the run: ProbeConnectError.
   */
  async open(): Promise<void> {
    if (this.p.udp) return void (await Promise.all(this.udp.map((u) => u.open())));
    let next = 0;
    let failure: unknown = null;
    const worker = async () => {
      while (failure === null && next < this.tcp.length) {
        try {
          await this.tcp[next++]!.connect();
        } catch (err) {
          failure ??= err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONNECT_BATCH, this.tcp.length) }, worker));
    if (failure !== null) {
      this.close();
      const ep = this.p.endpoint;
      throw new ProbeConnectError(`cannot connect to ${formatHostPort(ep.address, ep.port)}: ${errorText(failure)}`);
    }
  }

  /** Put every pipeline in flight. */
  start(): void {
    this.counters.running = true;
    for (const c of this.tcp) c.start();
    for (const u of this.udp) u.start();
    if (this.p.udp) {
      this.sweeper = setInterval(() => {
        const now = performance.now();
        for (const u of this.udp) u.sweep(now);
      }, UDP_SWEEP_MS);
    }
  }

  /** Count from zero again (a measured window starts); lines in flight count when they return. */
  resetCounters(): void {
    this.counters.reset();
  }

  /** Send no new lines; those in flight may still come back. */
  stopSending(): void {
    this.counters.running = false;
  }

  get inFlight(): number {
    return this.p.udp ? this.udp.reduce((n, u) => n + u.inFlight, 0) : this.tcp.reduce((n, c) => n + (c.closedForGood ? 0 : c.inFlight), 0);
  }

  /** Wait (at most the reply timeout) for the lines in flight to come back. */
  async settle(): Promise<void> {
    const settleBy = performance.now() + this.p.timeoutMs;
    while (this.inFlight > 0 && performance.now() < settleBy) await Bun.sleep(5);
  }

  /** Close everything: lines still in flight are lost. */
  close(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    this.counters.running = false;
    for (const c of this.tcp) c.close();
    for (const u of this.udp) u.close();
  }
}

export interface LoadParams extends Omit<EngineParams, "endpoint" | "budget"> {
  target: string;
  endpoints: Endpoint[];
  durationMs: number;
  stop: Stopper;
  /** About once a second while running. */
  onProgress(p: Progress): void;
}

const PROGRESS_MS = 1000;

/** The probe's load mode: connect, run for the duration, let the lines in flight come back, report. */
export async function runLoad(p: LoadParams): Promise<LoadReport> {
  const ep = p.endpoints[0]!;
  const engine = new LoadEngine({ ...p, endpoint: ep });
  const totals = engine.counters;
  // Connect first, then start sending: the run's clock starts with all of them up.
  await engine.open();
  engine.start();

  const start = performance.now();
  let lastTick = start;
  let lastReceived = 0;
  let lastBytes = 0;
  const tick = () => {
    const now = performance.now();
    const dt = (now - lastTick) / 1000;
    p.onProgress({
      elapsedS: (now - start) / 1000,
      linesPerS: dt > 0 ? (totals.received - lastReceived) / dt : 0,
      mbPerS: dt > 0 ? (totals.bytes - lastBytes) / dt / 1e6 : 0,
      p50: totals.recent.percentile(50),
      p99: totals.recent.percentile(99),
      lost: totals.lost,
      mismatched: totals.mismatched,
    });
    totals.latency();
    lastTick = now;
    lastReceived = totals.received;
    lastBytes = totals.bytes;
  };
  const progress = setInterval(tick, PROGRESS_MS);

  await p.stop.sleep(p.durationMs);
  engine.stopSending();
  const end = performance.now();
  await engine.settle();
  clearInterval(progress);
  engine.close();

  return {
    target: p.target,
    address: ep.address,
    proto: p.udp ? "udp" : streamProto(p.stream),
    size: p.size,
    connections: p.connections,
    pipeline: p.pipeline,
    durationS: (end - start) / 1000,
    sent: totals.sent,
    received: totals.received,
    lost: totals.lost,
    mismatched: totals.mismatched,
    late: totals.late,
    disconnects: totals.disconnects,
    bytes: totals.bytes,
    rtt: totals.latency().summary(),
  };
}
