// Output to a non-blocking socket: what the kernel does not take at once is
// kept, oldest first, and written when the socket drains. Above a high-water
// mark the queue stops the socket's reading, so a peer that sends without
// reading cannot make us buffer without bound; once the queue is down to the
// low-water mark, flush() tells the owner, who resumes reading when it is
// ready to (it may first have held-back input to deal with). Pure: the socket
// is anything with write/pause/resume, so it is tested with a fake one.

/** What the queue needs of a socket (Bun's TCP Socket has it). */
export interface QueueSocket {
  /** Bytes the kernel took, possibly fewer than given; -1 once the socket is closed. */
  write(data: Uint8Array, byteOffset?: number, byteLength?: number): number;
  /** Stop delivering received data... */
  pause(): void;
  /** ...and deliver it again. */
  resume(): void;
}

/** Counters outside the queue, kept in step with it (e.g. the server's Stats). */
export interface WriteMeter {
  /** The kernel took this many bytes. */
  written(bytes: number): void;
  /** The bytes waiting in the queue changed by this much. */
  queued(delta: number): void;
}

/** Settings shared by every queue of one kind (one object, not one per socket). */
export interface WritePolicy {
  /** Reading is paused while more than this many bytes wait; Infinity = never. */
  highWater: number;
  /** flush() reports when a paused queue is down to this many. */
  lowWater: number;
  /**
   * Copy bytes into the queue: the caller reuses its buffer once write()
   * returns. Without it the queue keeps a view, and the caller must leave
   * those bytes alone until they are written.
   */
  copy: boolean;
  meter?: WriteMeter;
}

/** No marks, no copies, no meter: for callers whose own window bounds what is in flight. */
export const UNBOUNDED: WritePolicy = { highWater: Infinity, lowWater: Infinity, copy: false };

export class WriteQueue {
  /** Unwritten bytes, oldest first; allocated on first need (most sockets never queue). */
  private chunks: Uint8Array[] | null = null;
  private queued = 0;
  private paused = false;

  constructor(
    private readonly socket: QueueSocket,
    private readonly policy: WritePolicy = UNBOUNDED,
  ) {}

  /** Bytes given to write() and not yet taken by the kernel. */
  get pending(): number {
    return this.queued;
  }

  /** More than the high-water mark is waiting. */
  get overHighWater(): boolean {
    return this.queued > this.policy.highWater;
  }

  get readingPaused(): boolean {
    return this.paused;
  }

  /**
   * Send buf[start, end): straight to the socket when nothing is queued, the
   * rest (or all of it, behind older bytes) into the queue. Nothing is kept
   * once the socket is closed.
   */
  write(buf: Uint8Array, start = 0, end = buf.length): void {
    if (this.queued === 0) {
      const n = this.socket.write(buf, start, end - start);
      if (n < 0) return; // closed under us; whoever handles the close cleans up
      this.policy.meter?.written(n);
      start += n;
      if (start === end) return;
    }
    if (this.policy.copy) this.enqueue(buf.slice(start, end));
    else this.enqueue(start === 0 && end === buf.length ? buf : buf.subarray(start, end));
  }

  /**
   * Call when the socket drains: write queued bytes until the kernel takes no
   * more. Returns true when reading is paused and the queue is down to the
   * low-water mark: time for the owner to resume.
   */
  flush(): boolean {
    const chunks = this.chunks;
    while (chunks !== null && chunks.length > 0) {
      const head = chunks[0]!;
      const n = this.socket.write(head);
      if (n < 0) return false;
      this.taken(n);
      if (n < head.length) {
        chunks[0] = head.subarray(n);
        break;
      }
      chunks.shift();
    }
    return this.paused && this.queued <= this.policy.lowWater;
  }

  /** Stop the socket's reading (idempotent): over the mark, or for the owner's own reasons. */
  pauseReading(): void {
    if (this.paused) return;
    this.paused = true;
    this.socket.pause();
  }

  /** Let the socket read again (idempotent). */
  resumeReading(): void {
    if (!this.paused) return;
    this.paused = false;
    this.socket.resume();
  }

  /** The socket is gone: drop what is queued (and take it off the meter). */
  clear(): void {
    if (this.queued > 0) this.policy.meter?.queued(-this.queued);
    this.queued = 0;
    this.chunks = null;
  }

  private enqueue(bytes: Uint8Array): void {
    (this.chunks ??= []).push(bytes);
    this.queued += bytes.length;
    this.policy.meter?.queued(bytes.length);
    if (this.queued > this.policy.highWater) this.pauseReading();
  }

  private taken(n: number): void {
    this.policy.meter?.written(n);
    this.queued -= n;
    this.policy.meter?.queued(-n);
  }
}
