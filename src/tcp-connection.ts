// One TCP client: moves bytes between its socket and the line framer, and
// owns the connection's output queue and its backpressure. It holds no
// protocol logic of its own: framing, commands and counters live elsewhere.
import type { Socket } from "bun";
import { LineFramer, type FrameSink } from "./framing.ts";
import { REPLY } from "./commands.ts";
import { ReplyAssembler } from "./reply-assembler.ts";
import { formatPeer } from "./peer.ts";
import type { TcpService } from "./tcp-server.ts";

/** Stop reading from a client once this much of its output is unsent... */
export const OUTPUT_HIGH_WATER = 1024 * 1024;
/** ...and read again once it is down to this. */
export const OUTPUT_LOW_WATER = 256 * 1024;

// One assembler serves every connection: the server is single-threaded and a
// reply is written (or copied into the queue) before the next read is handled.
const assembler = new ReplyAssembler();

export class TcpConnection implements FrameSink {
  readonly framer: LineFramer;
  /** The chunk being framed now: lines inside it can be written by reference. */
  private chunk: Uint8Array | null = null;
  /** Output the kernel has not taken yet, oldest first; allocated on first need (idle clients cost less). */
  private queue: Uint8Array[] | null = null;
  private queued = 0;
  private paused = false;
  /** No more input will be framed; close once the queue is empty. */
  private closing = false;
  /** Monotonic seconds of the last byte received (for --idle-timeout). */
  lastActive: number;
  /** Reads so far, so a stop can tell when a client has gone quiet. */
  reads = 0;

  constructor(
    readonly id: number,
    private readonly socket: Socket<TcpConnection>,
    readonly address: string,
    readonly port: number,
    readonly loopback: boolean,
    private readonly service: TcpService,
  ) {
    this.framer = new LineFramer(service.maxLine);
    this.lastActive = service.clock.seconds;
  }

  get peer(): string {
    return formatPeer(this.address, this.port);
  }

  /** Bytes owed to this client and not yet accepted by the kernel. */
  get pendingOutput(): number {
    return this.queued;
  }

  onData(chunk: Uint8Array): void {
    this.reads++;
    this.lastActive = this.service.clock.seconds;
    this.service.stats.tcpBytesIn += chunk.length;
    if (this.closing) return;
    this.chunk = chunk;
    this.framer.push(chunk, this);
    this.chunk = null;
    this.flushReplies();
    if (this.framer.closed) this.closeWhenFlushed();
  }

  /** The client sent FIN: answer an unterminated last line, deliver all, close. */
  onEnd(): void {
    if (!this.closing) {
      this.framer.finish(this);
      this.flushReplies();
    }
    this.closeWhenFlushed();
  }

  onDrain(): void {
    const queue = this.queue;
    while (queue !== null && queue.length > 0) {
      const head = queue[0]!;
      const n = this.socket.write(head);
      if (n < 0) return;
      this.sent(n);
      if (n < head.length) {
        queue[0] = head.subarray(n);
        break;
      }
      queue.shift();
    }
    if (this.paused && this.queued <= OUTPUT_LOW_WATER) {
      this.paused = false;
      this.socket.resume();
    }
    if (this.queued === 0 && this.closing) this.socket.end();
  }

  /** Called once by the close handler: release the queue's accounting. */
  onClose(): void {
    this.service.stats.tcpPendingOutput -= this.queued;
    this.queued = 0;
    this.queue = null;
  }

  /** Stop framing input; the socket closes as soon as all owed output is out. */
  closeWhenFlushed(): void {
    this.closing = true;
    if (this.queued === 0) this.socket.end();
  }

  /** Cut the connection now, whatever is still owed (stop deadline passed). */
  terminate(): void {
    this.socket.terminate();
  }

  // FrameSink: called by the framer while it walks a chunk.

  echo(buf: Uint8Array, start: number, end: number): void {
    this.service.stats.tcpLines++;
    if (buf === this.chunk) assembler.appendRun(buf, start, end);
    else assembler.appendCopy(buf, start, end);
    if (this.service.log.traceOn) this.service.log.trace("line", { conn: this.id, bytes: end - start });
  }

  command(buf: Uint8Array, start: number, end: number): void {
    assembler.appendCopy(this.service.runCommand(this, buf, start, end));
  }

  overflow(fatal: boolean): void {
    this.service.stats.tcpOverflows++;
    assembler.appendCopy(REPLY.tooLong);
    if (this.service.log.debugOn) {
      this.service.log.debug(fatal ? "second overlong line in a row, closing" : "overlong line discarded", {
        conn: this.id,
        peer: this.peer,
      });
    }
  }

  private flushReplies(): void {
    const out = assembler.take();
    if (out === null) return;
    if (this.queued === 0) {
      const n = this.socket.write(out);
      if (n < 0) return; // closed under us; the close handler cleans up
      this.sent(n);
      if (n === out.length) return;
      this.enqueue(out.slice(n));
    } else {
      this.enqueue(out.slice());
    }
  }

  private enqueue(bytes: Uint8Array): void {
    (this.queue ??= []).push(bytes);
    this.queued += bytes.length;
    this.service.stats.tcpPendingOutput += bytes.length;
    if (!this.paused && this.queued > OUTPUT_HIGH_WATER) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private sent(n: number): void {
    const stats = this.service.stats;
    stats.tcpBytesOut += n;
    if (this.queued > 0) {
      const fromQueue = Math.min(n, this.queued);
      this.queued -= fromQueue;
      stats.tcpPendingOutput -= fromQueue;
    }
  }
}
