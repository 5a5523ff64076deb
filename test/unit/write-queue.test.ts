import { describe, expect, test } from "bun:test";
import { WriteQueue, type QueueSocket, type WritePolicy } from "../../src/core/write-queue.ts";

/** A socket whose kernel takes at most `room` bytes until given more; it keeps what it took. */
class FakeSocket implements QueueSocket {
  taken: number[] = [];
  calls: { data: Uint8Array; offset: number; length: number }[] = [];
  pauses = 0;
  resumes = 0;
  closed = false;
  constructor(public room = Infinity) {}

  write(data: Uint8Array, byteOffset = 0, byteLength = data.length - byteOffset): number {
    this.calls.push({ data, offset: byteOffset, length: byteLength });
    if (this.closed) return -1;
    const n = Math.min(byteLength, this.room);
    this.room -= n;
    for (let i = 0; i < n; i++) this.taken.push(data[byteOffset + i]!);
    return n;
  }
  pause(): void {
    this.pauses++;
  }
  resume(): void {
    this.resumes++;
  }
}

const bytes = (n: number, from = 0) => Uint8Array.from({ length: n }, (_, i) => (from + i) & 0xff);

function metered(policy: Omit<WritePolicy, "meter">) {
  const m = { written: 0, queued: 0 };
  const p: WritePolicy = { ...policy, meter: { written: (n) => void (m.written += n), queued: (d) => void (m.queued += d) } };
  return { m, p };
}

describe("WriteQueue", () => {
  test("what the kernel takes at once is never queued; the socket gets the caller's buffer, offset and length", () => {
    const s = new FakeSocket();
    const { m, p } = metered({ highWater: 100, lowWater: 10, copy: true });
    const q = new WriteQueue(s, p);
    const buf = bytes(50);
    q.write(buf, 10, 30);
    expect(s.calls).toEqual([{ data: buf, offset: 10, length: 20 }]);
    expect(s.calls[0]!.data).toBe(buf); // no copy on the way out
    expect(q.pending).toBe(0);
    expect(m).toEqual({ written: 20, queued: 0 });
    expect(s.taken).toEqual([...bytes(20, 10)]);
  });

  test("a partial write queues the rest; later writes wait behind it; drain delivers all, in order", () => {
    const s = new FakeSocket(3);
    const { m, p } = metered({ highWater: Infinity, lowWater: Infinity, copy: true });
    const q = new WriteQueue(s, p);
    q.write(bytes(10, 0));
    q.write(bytes(5, 10));
    expect(s.calls.length).toBe(1); // the second write did not jump the queue
    expect(q.pending).toBe(12);
    expect(m).toEqual({ written: 3, queued: 12 });

    s.room = 4;
    q.flush();
    expect(q.pending).toBe(8);
    s.room = Infinity;
    q.flush();
    expect(q.pending).toBe(0);
    expect(s.taken).toEqual([...bytes(15)]);
    expect(m).toEqual({ written: 15, queued: 0 });
  });

  test("copy: the caller may reuse its buffer at once; without copy the queue keeps a view", () => {
    for (const copy of [true, false]) {
      const s = new FakeSocket(2);
      const q = new WriteQueue(s, { highWater: Infinity, lowWater: Infinity, copy });
      const buf = bytes(6);
      q.write(buf);
      buf.fill(0xee); // the caller's buffer changes after write() returned
      s.room = Infinity;
      q.flush();
      expect(s.taken).toEqual(copy ? [...bytes(6)] : [0, 1, 0xee, 0xee, 0xee, 0xee]);
    }
  });

  test("over the high-water mark reading pauses once; flush reports when it is down to the low-water mark", () => {
    const s = new FakeSocket(0);
    const q = new WriteQueue(s, { highWater: 100, lowWater: 40, copy: true });
    q.write(bytes(100));
    expect(q.overHighWater).toBe(false);
    expect(s.pauses).toBe(0); // at the mark is not over it
    q.write(bytes(1));
    q.write(bytes(50));
    expect(q.overHighWater).toBe(true);
    expect(q.readingPaused).toBe(true);
    expect(s.pauses).toBe(1);

    s.room = 100; // 151 -> 51: under the high mark, still over the low one
    expect(q.flush()).toBe(false);
    expect(q.overHighWater).toBe(false);
    s.room = 11; // 51 -> 40
    expect(q.flush()).toBe(true);
    expect(s.resumes).toBe(0); // resuming is the owner's call
    q.resumeReading();
    q.resumeReading();
    expect(s.resumes).toBe(1);
    expect(q.readingPaused).toBe(false);
    expect(q.flush()).toBe(false); // not paused: nothing to report
  });

  test("the owner can pause for its own reasons; a drain with an empty queue then reports at once", () => {
    const s = new FakeSocket();
    const q = new WriteQueue(s, { highWater: 100, lowWater: 40, copy: true });
    q.pauseReading();
    q.pauseReading();
    expect(s.pauses).toBe(1);
    expect(q.flush()).toBe(true);
  });

  test("a closed socket: nothing is queued, a flush keeps what it has", () => {
    const s = new FakeSocket(2);
    const { m, p } = metered({ highWater: Infinity, lowWater: Infinity, copy: true });
    const q = new WriteQueue(s, p);
    q.write(bytes(5));
    s.closed = true;
    q.write(bytes(5)); // queued behind the rest, not written
    expect(q.flush()).toBe(false);
    expect(q.pending).toBe(8);
    const fresh = new WriteQueue(s, p);
    fresh.write(bytes(5));
    expect(fresh.pending).toBe(0);
    q.clear();
    expect(q.pending).toBe(0);
    expect(m).toEqual({ written: 2, queued: 0 });
  });

  test("bounded: a peer that never reads costs at most the high-water mark plus one write", () => {
    const s = new FakeSocket(0);
    const q = new WriteQueue(s, { highWater: 1000, lowWater: 250, copy: true });
    let writes = 0;
    // The owner's rule: stop feeding once reading is paused (no more input, no more replies).
    while (!q.readingPaused) {
      q.write(bytes(64));
      writes++;
    }
    expect(q.pending).toBe(64 * writes);
    expect(q.pending).toBeLessThanOrEqual(1000 + 64);
  });
});
