// Gathers the replies to one read into a single buffer for a single write.
// The common case, a run of plain lines that sit back to back in the chunk
// just read, is passed through as a subarray of that chunk: no copy at all.
// Anything else (a line completed from an earlier read, a command reply, an
// error) is copied into a scratch buffer reused across reads.

export class ReplyAssembler {
  private ref: Uint8Array | null = null;
  private refStart = 0;
  private refEnd = 0;
  private scratch = new Uint8Array(16 * 1024);
  private scratchLen = 0;

  /** Bytes of `buf` that stay valid until take(): kept by reference when contiguous. */
  appendRun(buf: Uint8Array, start: number, end: number): void {
    if (this.scratchLen === 0) {
      if (this.ref === null) {
        this.ref = buf;
        this.refStart = start;
        this.refEnd = end;
        return;
      }
      if (this.ref === buf && this.refEnd === start) {
        this.refEnd = end;
        return;
      }
    }
    this.copy(buf, start, end);
  }

  /** Bytes that may change before take(): always copied. */
  appendCopy(buf: Uint8Array, start = 0, end = buf.length): void {
    this.copy(buf, start, end);
  }

  /** The reply taken by take(): bytes [outStart, outEnd) of outBuf. */
  outBuf: Uint8Array = this.scratch;
  outStart = 0;
  outEnd = 0;

  /**
   * Take the reply so far into outBuf/outStart/outEnd (valid until the next
   * append) and start empty again; false when there is nothing to send. A
   * range rather than a subarray: one object less per read on the hot path.
   */
  take(): boolean {
    if (this.scratchLen > 0) {
      this.outBuf = this.scratch;
      this.outStart = 0;
      this.outEnd = this.scratchLen;
      this.scratchLen = 0;
      return true;
    }
    if (this.ref === null) return false;
    this.outBuf = this.ref;
    this.outStart = this.refStart;
    this.outEnd = this.refEnd;
    this.ref = null;
    return true;
  }

  private copy(buf: Uint8Array, start: number, end: number): void {
    if (this.ref !== null) {
      const ref = this.ref;
      this.ref = null;
      this.copy(ref, this.refStart, this.refEnd);
    }
    const need = this.scratchLen + (end - start);
    if (need > this.scratch.length) {
      const grown = new Uint8Array(Math.max(need, this.scratch.length * 2));
      grown.set(this.scratch.subarray(0, this.scratchLen));
      this.scratch = grown;
    }
    this.scratch.set(buf.subarray(start, end), this.scratchLen);
    this.scratchLen = need;
  }
}
