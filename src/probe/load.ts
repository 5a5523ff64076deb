// Load mode: C connections (or UDP sockets), each keeping D lines in flight
// for the duration, every echoed byte compared with what was sent.
//
// Lean by construction: each connection owns one ring of D preallocated
// lines; a line's slot is rewritten (only its sequence digits) for the next
// line once its echo has been verified, and writes go straight from the
// ring. Echoes are compared byte for byte against the ring, never decoded.
// RTTs go into a fixed-size histogram; one clock read per read() or sweep.
import type { Socket } from "bun";
import { LatencyHistogram } from "../core/latency.ts";
import { readSeq, writeLine, writeSeq } from "../core/payload.ts";
import { WriteQueue } from "../core/write-queue.ts";
import { openStream, openUdp, ProbeConnectError, formatHostPort, type Endpoint, type StreamOptions, type UdpClient } from "./net.ts";
import { errorCode, errorText } from "../core/error-text.ts";
import type { LoadReport, Progress } from "./report.ts";
import type { Stopper } from "./stopper.ts";

export interface LoadParams {
  target: string;
  endpoints: Endpoint[];
  /** TCP only: TLS and/or a PROXY header first. */
  stream: StreamOptions;
  udp: boolean;
  connections: number;
  pipeline: number;
  durationMs: number;
  size: number;
  timeoutMs: number;
  stop: Stopper;
  /** About once a second while running. */
  onProgress(p: Progress): void;
  /** A connection-level problem worth a line on stderr (already counted). */
  onEvent(message: string): void;
}

/** Counters shared by every connection of a run. */
class Totals {
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
  running = true;
}

const RECONNECT_DELAY_MS = 100;

class TcpLoadConnection {
  private readonly ring: Uint8Array;
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
  closedForGood = false;

  constructor(
    private readonly ep: Endpoint,
    private readonly stream: StreamOptions,
    private readonly depth: number,
    private readonly size: number,
    private readonly totals: Totals,
    private readonly onEvent: (m: string) => void,
  ) {
    this.ring = new Uint8Array(depth * size);
    this.sentAt = new Float64Array(depth);
    for (let slot = 0; slot < depth; slot++) writeLine(this.ring, slot * size, size, slot);
  }

  get inFlight(): number {
    return this.nextSend - this.nextRecv;
  }

  async connect(): Promise<void> {
    this.socket = await openStream<TcpLoadConnection>(
      this.ep,
      this,
      {
        data: (s, chunk) => s.data.onData(chunk),
        drain: (s) => void s.data.out?.flush(),
        close: (s) => s.data.onClose(),
        error: () => {},
        connectError: () => {},
      },
      this.stream,
    );
    this.socket.setNoDelay(true);
    this.out = new WriteQueue(this.socket);
    this.nextRecv = this.nextSend;
    this.off = 0;
    if (this.totals.running) this.start();
  }

  /** Put the whole pipeline in flight. */
  start(): void {
    this.send(this.depth);
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

  private onData(chunk: Uint8Array): void {
    const { ring, size, depth, totals } = this;
    const n = chunk.length;
    let i = 0;
    let done = 0;
    let off = this.off;
    const now = performance.now();
    while (i < n) {
      if (this.nextRecv === this.nextSend) return this.fail(`${n - i} bytes more than was sent`);
      const slot = this.nextRecv % depth;
      const base = slot * size + off;
      const take = Math.min(size - off, n - i);
      for (let k = 0; k < take; k++) {
        if (chunk[i + k] !== ring[base + k]) return this.fail(`line ${this.nextRecv} differs at byte ${off + k}`);
      }
      i += take;
      off += take;
      if (off === size) {
        off = 0;
        done++;
        this.nextRecv++;
        totals.recent.record(now - this.sentAt[slot]!);
      }
    }
    this.off = off;
    if (done > 0) {
      totals.received += done;
      totals.bytes += done * size;
      if (totals.running) this.send(done);
    }
  }

  /** Wrong bytes: the stream can no longer be matched; count, drop, reconnect. */
  private fail(why: string): void {
    this.totals.mismatched++;
    this.totals.lost += this.inFlight - 1;
    this.nextRecv = this.nextSend;
    this.onEvent(`mismatch on a connection to ${formatHostPort(this.ep.address, this.ep.port)}: ${why}; reconnecting`);
    this.drop();
  }

  private onClose(): void {
    if (this.socket === null) return; // we closed it ourselves
    this.socket = null;
    if (this.closedForGood) return;
    this.totals.disconnects++;
    this.totals.lost += this.inFlight;
    this.nextRecv = this.nextSend;
    this.onEvent(`connection to ${formatHostPort(this.ep.address, this.ep.port)} closed by the server; reconnecting`);
    this.reconnectLater();
  }

  private drop(): void {
    const s = this.socket;
    this.socket = null;
    s?.terminate();
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
    private readonly totals: Totals,
    private readonly onEvent: (m: string) => void,
  ) {
    this.ring = new Uint8Array(depth * size);
    this.sentAt = new Float64Array(depth);
    this.slotSeq = new Float64Array(depth).fill(-1);
    // Slot s carries seqs s, s + depth, s + 2*depth...: seq % depth finds the slot.
    for (let slot = 0; slot < depth; slot++) writeLine(this.ring, slot * size, size, slot);
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
      ok = socket.send(this.ring.subarray(slot * this.size, (slot + 1) * this.size));
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
    const size = this.size;
    const base = slot * size;
    const ring = this.ring;
    let same = d.length === size;
    for (let k = 0; same && k < size; k++) same = d[k] === ring[base + k];
    totals.received++;
    totals.bytes += d.length;
    totals.recent.record(now - this.sentAt[slot]!);
    if (!same) totals.mismatched++;
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

const PROGRESS_MS = 1000;
const UDP_SWEEP_MS = 50;

export async function runLoad(p: LoadParams): Promise<LoadReport> {
  const totals = new Totals();
  const ep = p.endpoints[0]!;
  const tcp: TcpLoadConnection[] = [];
  const udp: UdpLoadSocket[] = [];
  if (p.udp) {
    for (let i = 0; i < p.connections; i++) udp.push(new UdpLoadSocket(ep, p.pipeline, p.size, p.timeoutMs, totals, p.onEvent));
    await Promise.all(udp.map((u) => u.open()));
  } else {
    for (let i = 0; i < p.connections; i++) tcp.push(new TcpLoadConnection(ep, p.stream, p.pipeline, p.size, totals, p.onEvent));
    // Connect first, then start sending: the run's clock starts with all of them up.
    totals.running = false;
    const results = await Promise.allSettled(tcp.map((c) => c.connect()));
    const failed = results.find((r) => r.status === "rejected");
    if (failed) {
      for (const c of tcp) c.close();
      const reason = (failed as PromiseRejectedResult).reason;
      throw new ProbeConnectError(`cannot connect to ${formatHostPort(ep.address, ep.port)}: ${errorText(reason)}`);
    }
    totals.running = true;
    for (const c of tcp) c.start();
  }

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
    totals.all.merge(totals.recent);
    totals.recent.reset();
    lastTick = now;
    lastReceived = totals.received;
    lastBytes = totals.bytes;
  };
  const progress = setInterval(tick, PROGRESS_MS);
  const sweeper = p.udp ? setInterval(() => {
    const now = performance.now();
    for (const u of udp) u.sweep(now);
  }, UDP_SWEEP_MS) : null;

  await p.stop.sleep(p.durationMs);
  totals.running = false;
  const end = performance.now();

  // Let the lines in flight come back (bounded by the reply timeout).
  const inFlight = () => (p.udp ? udp.reduce((n, u) => n + u.inFlight, 0) : tcp.reduce((n, c) => n + (c.closedForGood ? 0 : c.inFlight), 0));
  const settleBy = performance.now() + p.timeoutMs;
  while (inFlight() > 0 && performance.now() < settleBy) await Bun.sleep(5);
  clearInterval(progress);
  if (sweeper) clearInterval(sweeper);
  for (const c of tcp) c.close();
  for (const u of udp) u.close();
  totals.all.merge(totals.recent);
  totals.recent.reset();

  return {
    target: p.target,
    address: ep.address,
    proto: p.udp ? "udp" : "tcp",
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
    rtt: totals.all.summary(),
  };
}
