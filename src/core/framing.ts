// LF line framing for one TCP connection: bytes in, line events out.
// Pure and socket-free: the connection feeds it each chunk it reads and gets
// callbacks with byte ranges, never strings, so the echo path copies nothing
// unless a line straddles two reads.

const LF = 0x0a;
const CR = 0x0d;
/** A line (TCP) or datagram (UDP) starting with this byte is a command. */
export const SLASH = 0x2f;

/** Where a command's text ends: buf[start, end) without a trailing LF, nor the CR before it. */
export function commandEnd(buf: Uint8Array, start: number, end: number): number {
  if (end > start && buf[end - 1] === LF) end--;
  if (end > start && buf[end - 1] === CR) end--;
  return end;
}

export interface FrameSink {
  /** A complete plain line, its own terminator included: buf[start, end). */
  echo(buf: Uint8Array, start: number, end: number): void;
  /** A command line (starts with "/"), without LF or the CR before it. */
  command(buf: Uint8Array, start: number, end: number): void;
  /** A line passed the limit; `fatal` when it is the second one in a row. */
  overflow(fatal: boolean): void;
}

export class LineFramer {
  /** Start of a line not yet terminated, kept across reads (at most maxLine bytes). */
  private carry: Uint8Array | null = null;
  private carryLen = 0;
  /** Dropping the rest of an overlong line up to its LF. */
  private discarding = false;
  /** Overlong lines since the last good one. */
  private overflowStreak = 0;
  private stopped = false;

  constructor(private readonly maxLine: number) {}

  /** True after a second overlong line in a row: the connection must close. */
  get closed(): boolean {
    return this.stopped;
  }

  /** Bytes of an unterminated line held back, for memory accounting. */
  get heldBytes(): number {
    return this.carryLen;
  }

  push(chunk: Uint8Array, sink: FrameSink): void {
    if (this.stopped) return;
    const n = chunk.length;
    let i = 0;
    if (this.discarding) {
      const lf = chunk.indexOf(LF);
      if (lf < 0) return;
      this.discarding = false;
      i = lf + 1;
    }
    if (this.carryLen > 0 && i < n) {
      i = this.continueCarry(chunk, i, sink);
      if (i < 0) return;
    }
    while (i < n) {
      const lf = chunk.indexOf(LF, i);
      if (lf < 0) {
        this.hold(chunk, i, sink);
        return;
      }
      if (lf - i > this.maxLine) {
        if (!this.overflow(sink)) return;
      } else {
        this.line(chunk, i, lf + 1, sink);
      }
      i = lf + 1;
    }
  }

  /** End of input: an unterminated last line is answered like a complete one. */
  finish(sink: FrameSink): void {
    if (this.stopped || this.carryLen === 0) return;
    const carry = this.carry!;
    const len = this.carryLen;
    this.carryLen = 0;
    if (carry[0] === SLASH) {
      sink.command(carry, 0, commandEnd(carry, 0, len));
    } else {
      sink.echo(carry, 0, len);
    }
  }

  /** Complete (or extend) the held line with the start of this chunk; returns where to go on, or -1. */
  private continueCarry(chunk: Uint8Array, from: number, sink: FrameSink): number {
    const lf = chunk.indexOf(LF, from);
    const take = (lf < 0 ? chunk.length : lf) - from;
    if (this.carryLen + take > this.maxLine) {
      this.carryLen = 0;
      if (!this.overflow(sink)) return -1;
      if (lf < 0) {
        this.discarding = true;
        return -1;
      }
      return lf + 1;
    }
    if (lf < 0) {
      this.append(chunk, from, chunk.length);
      return -1;
    }
    this.append(chunk, from, lf + 1);
    const len = this.carryLen;
    this.carryLen = 0;
    this.line(this.carry!, 0, len, sink);
    return lf + 1;
  }

  /** Keep an unterminated tail, or start discarding it if it is already too long. */
  private hold(chunk: Uint8Array, from: number, sink: FrameSink): void {
    if (chunk.length - from > this.maxLine) {
      if (this.overflow(sink)) this.discarding = true;
      return;
    }
    this.append(chunk, from, chunk.length);
  }

  private line(buf: Uint8Array, start: number, end: number, sink: FrameSink): void {
    this.overflowStreak = 0;
    if (buf[start] === SLASH) {
      sink.command(buf, start, commandEnd(buf, start, end));
    } else {
      sink.echo(buf, start, end);
    }
  }

  /** Reports an overlong line; returns false when the connection must close. */
  private overflow(sink: FrameSink): boolean {
    this.overflowStreak++;
    const fatal = this.overflowStreak >= 2;
    if (fatal) this.stopped = true;
    sink.overflow(fatal);
    return !fatal;
  }

  private append(src: Uint8Array, start: number, end: number): void {
    const need = this.carryLen + (end - start);
    let carry = this.carry;
    if (carry === null || carry.length < need) {
      // Grow geometrically, but never past one full line plus its CR LF.
      const size = Math.min(Math.max(need, (carry?.length ?? 64) * 2), this.maxLine + 2);
      const grown = new Uint8Array(Math.max(size, need));
      if (carry !== null) grown.set(carry.subarray(0, this.carryLen));
      this.carry = carry = grown;
    }
    carry.set(src.subarray(start, end), this.carryLen);
    this.carryLen = need;
  }
}
