// One TCP client: moves bytes between its socket and the line framer, writes
// the replies through its output queue, and holds input back while that queue
// is over the mark or the turn's framing budget is spent. It holds no protocol
// logic of its own: framing, commands and counters live elsewhere.
import type { Socket } from "bun";
import { LineFramer, type FrameSink } from "../core/framing.ts";
import { fixedReply, type Transport } from "../core/commands.ts";
import { ReplyAssembler } from "../core/reply-assembler.ts";
import type { ProxySource } from "../core/proxy-header.ts";
import { formatPeer } from "../core/peer.ts";
import type { Stats } from "../core/stats.ts";
import type { CoarseClock } from "../core/clock.ts";
import type { Logger, Fields } from "../sys/log.ts";
import { WriteQueue, type WritePolicy } from "../core/write-queue.ts";
import type { CommandRunner, CommandSender } from "./command-runner.ts";

/** What a connection uses of the server around it. */
export interface ConnectionContext {
  maxLine: number;
  log: Logger;
  stats: Stats;
  clock: CoarseClock;
  commands: CommandRunner;
  /** Called after an accepted /shutdown's reply has been queued. */
  onShutdownRequest(): void;
  /** How replies are queued: one policy for all connections (outputPolicy). */
  output: WritePolicy;
}

/** Stop reading from a client once this much of its output is unsent... */
export const OUTPUT_HIGH_WATER = 1024 * 1024;
/** ...and read again once it is down to this. */
export const OUTPUT_LOW_WATER = 256 * 1024;
/**
 * Input is framed this many bytes at a time, the queue checked after each: a
 * read can be 512 KiB, and its replies up to 10x that (2-byte "/" lines each
 * answered by a 20-byte ERR), so framing a whole read at once could queue
 * megabytes past the high-water mark. Per slice it is at most ~160 KiB.
 */
export const FRAME_SLICE = 16 * 1024;
/**
 * Framing one client's input may take this long per turn of the event loop;
 * the rest waits for the next turn, so a client whose lines are costly (a read
 * of 512 KiB of 2-byte commands takes ~25 ms) cannot hold up everyone else.
 */
export const FRAME_BUDGET_MS = 1;

/** The output policy of client connections: the marks above, reply bytes copied (the assembler reuses its buffer), counted in Stats. */
export function outputPolicy(stats: Stats): WritePolicy {
  return {
    highWater: OUTPUT_HIGH_WATER,
    lowWater: OUTPUT_LOW_WATER,
    copy: true,
    meter: {
      written: (n) => void (stats.tcpBytesOut += n),
      queued: (delta) => void (stats.tcpPendingOutput += delta),
    },
  };
}

// One assembler serves every connection: the server is single-threaded and a
// reply is written (or copied into the queue) before the next read is handled.
const assembler = new ReplyAssembler();

export class TcpConnection implements FrameSink, CommandSender {
  readonly framer: LineFramer;
  /** The chunk being framed now: lines inside it can be written by reference. */
  private chunk: Uint8Array | null = null;
  /** Replies the kernel has not taken yet; it pauses reading over OUTPUT_HIGH_WATER. */
  private readonly out: WriteQueue;
  /**
   * Input read but not framed yet, oldest first: the rest of a read that
   * pushed the output over the mark, and whatever Bun still delivers while the
   * socket is paused (it drains the kernel's receive queue when the peer sends
   * FIN or RST). Framed once the output drains; dropped if the peer is gone.
   */
  private held: Uint8Array[] | null = null;
  /** The client sent FIN; answer the last line once held input is framed. */
  private eof = false;
  /** A continuation of held input is scheduled for the next turn of the loop. */
  private continuing = false;
  /** The socket has closed. */
  private gone = false;
  /** No more input will be framed; close once the queue is empty. */
  private closing = false;
  /**
   * Monotonic seconds of the last completed line (for --idle-timeout). Bytes
   * of an unfinished line do not count, or a client trickling one byte every
   * few seconds (slowloris) would never time out.
   */
  lastActive: number;
  /** Refused /shutdown attempts so far (counted by the CommandRunner, which says when to close). */
  shutdownRefusals = 0;
  /** Reads so far, so a stop can tell when a client has gone quiet. */
  reads = 0;
  /**
   * The client as /whoami and the logs see it: the socket peer, set at
   * accept; a PROXY header may replace it with the address it carries.
   * `loopback` stays the real peer's (what /shutdown judges).
   */
  clientAddress: string;
  clientPort: number;

  constructor(
    readonly id: number,
    private readonly socket: Socket<TcpConnection>,
    address: string,
    port: number,
    readonly loopback: boolean,
    private readonly ctx: ConnectionContext,
  ) {
    this.framer = new LineFramer(ctx.maxLine);
    this.out = new WriteQueue(socket, ctx.output);
    this.lastActive = ctx.clock.seconds;
    this.clientAddress = address;
    this.clientPort = port;
  }

  /** A PROXY header named the client: /whoami and the logs use it from now on. */
  setClient(client: ProxySource): void {
    this.clientAddress = client.address;
    this.clientPort = client.port;
  }

  get peer(): string {
    return formatPeer(this.clientAddress, this.clientPort);
  }

  get transport(): Transport {
    return "tcp";
  }

  logFields(): Fields {
    return { conn: this.id, peer: this.peer };
  }

  /** Every reply is with the kernel and no input is held back unanswered. */
  get owesNothing(): boolean {
    return this.out.pending === 0 && this.held === null;
  }

  onData(chunk: Uint8Array): void {
    this.reads++;
    this.ctx.stats.tcpBytesIn += chunk.length;
    if (this.closing) return;
    // Paused (output over the mark) or older input waiting: keep it, unframed, for later.
    if (this.out.readingPaused || this.held !== null) (this.held ??= []).push(chunk);
    else this.frame(chunk, performance.now());
  }

  /** The client sent FIN: answer an unterminated last line, deliver all, close. */
  onEnd(): void {
    this.eof = true;
    this.finishIfDone();
  }

  /**
   * Frame a chunk slice by slice. Stops, holding the rest, when the output
   * passes the mark (the drain picks it up) or when this turn's time budget is
   * spent (picked up on the next turn, after other sockets had theirs).
   * Returns false if it stopped early.
   */
  private frame(chunk: Uint8Array, turnStart: number): boolean {
    for (let i = 0; i < chunk.length; ) {
      const end = Math.min(i + FRAME_SLICE, chunk.length);
      const part = i === 0 && end === chunk.length ? chunk : chunk.subarray(i, end);
      this.chunk = part;
      this.framer.push(part, this);
      this.chunk = null;
      this.flushReplies();
      i = end;
      if (this.framer.closed || this.closing) {
        this.held = null;
        this.closeWhenFlushed();
        return false;
      }
      if (i < chunk.length && (this.out.overHighWater || performance.now() - turnStart > FRAME_BUDGET_MS)) {
        (this.held ??= []).unshift(chunk.subarray(i));
        if (!this.out.overHighWater) this.yieldTurn();
        return false;
      }
    }
    return true;
  }

  /** Out of time with input left: stop reading and go on at the next turn of the loop. */
  private yieldTurn(): void {
    this.out.pauseReading();
    if (this.continuing) return;
    this.continuing = true;
    setImmediate(() => {
      this.continuing = false;
      this.continueHeld();
    });
  }

  /** Frame held input while the output stays under the mark; read again once all is framed. */
  private continueHeld(): void {
    if (this.gone) return;
    const turnStart = performance.now();
    while (this.held !== null && !this.closing && !this.out.overHighWater) {
      const next = this.held.shift();
      if (this.held.length === 0) this.held = null;
      if (next === undefined || !this.frame(next, turnStart)) break;
      if (this.held !== null && performance.now() - turnStart > FRAME_BUDGET_MS) {
        this.yieldTurn();
        break;
      }
    }
    if (this.held === null && !this.out.overHighWater) this.out.resumeReading();
    this.finishIfDone();
    if (this.out.pending === 0 && this.closing) this.socket.end();
  }

  /** After FIN and once nothing is held: answer an unterminated last line, then close. */
  private finishIfDone(): void {
    if (!this.eof || this.held !== null) return;
    if (!this.closing) {
      this.framer.finish(this);
      this.flushReplies();
    }
    this.closeWhenFlushed();
  }

  onDrain(): void {
    if (this.out.flush()) this.continueHeld();
    else if (this.out.pending === 0 && this.closing) this.socket.end();
  }

  /** Called once by the close handler: release the queue and its accounting. */
  onClose(): void {
    this.out.clear();
    this.held = null;
    this.gone = true;
  }

  /** Stop framing input; the socket closes as soon as all owed output is out. */
  closeWhenFlushed(): void {
    this.closing = true;
    if (this.out.pending === 0) this.socket.end();
  }

  /** Cut the connection now, whatever is still owed (stop deadline passed). */
  terminate(): void {
    this.socket.terminate();
  }

  // FrameSink: called by the framer while it walks a chunk.

  echo(buf: Uint8Array, start: number, end: number): void {
    if (this.closing) return;
    this.ctx.stats.tcpLines++;
    if (buf === this.chunk) assembler.appendRun(buf, start, end);
    else assembler.appendCopy(buf, start, end);
    if (this.ctx.log.traceOn) this.ctx.log.trace("line", { conn: this.id, bytes: end - start });
  }

  command(buf: Uint8Array, start: number, end: number): void {
    if (this.closing) return;
    const outcome = this.ctx.commands.run(this, buf, start, end);
    if (outcome.shutdown) this.ctx.onShutdownRequest();
    // Answer nothing after this line; frame() closes once the replies so far are out.
    else if (outcome.close) this.closing = true;
    assembler.appendCopy(outcome.reply);
  }

  overflow(fatal: boolean): void {
    if (this.closing) return;
    this.ctx.stats.tcpOverflows++;
    assembler.appendCopy(fixedReply("tooLong"));
    if (this.ctx.log.debugOn) {
      this.ctx.log.debug(fatal ? "second overlong line in a row, closing" : "overlong line discarded", {
        conn: this.id,
        peer: this.peer,
      });
    }
  }

  private flushReplies(): void {
    if (!assembler.take()) return;
    // Every completed line (echo, command or overlong) has a reply: that is activity.
    this.lastActive = this.ctx.clock.seconds;
    // Straight from the read's buffer where the reply is a run of echoed lines.
    this.out.write(assembler.outBuf, assembler.outStart, assembler.outEnd);
  }
}
