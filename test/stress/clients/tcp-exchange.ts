// One fuzz exchange over TCP, shared by the fuzz clients: send a byte stream
// in random segments with random pauses (so the server's reads split it
// anywhere), half-close, and collect every byte until the server closes.
import type { Socket } from "bun";
import type { Rng } from "./lib.ts";

export interface Outcome {
  got: Uint8Array;
  reset: boolean;
  /** The client's own port, for /whoami. */
  localPort: number;
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Where two replies first differ, or -1 if they are equal. */
export function firstDifference(got: Uint8Array, want: Uint8Array): number {
  const n = Math.min(got.length, want.length);
  for (let k = 0; k < n; k++) if (got[k] !== want[k]) return k;
  return got.length === want.length ? -1 : n;
}

/** A few bytes around `from`, in hex, for a mismatch report. */
export const hexAround = (b: Uint8Array, from: number) =>
  Array.from(b.subarray(Math.max(0, from - 8), from + 16))
    .map((x) => x.toString(16).padStart(2, "0"))
    .join(" ");

export async function runTcp(r: Rng, port: number, stream: Uint8Array): Promise<Outcome> {
  const chunks: Uint8Array[] = [];
  let done!: (o: Outcome) => void;
  const finished = new Promise<Outcome>((res) => (done = res));
  let reset = false;
  let closed = false;
  let localPort = 0;
  const pending: Uint8Array[] = [];
  const socket: Socket<undefined> = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    allowHalfOpen: true,
    socket: {
      data: (_s, d) => void chunks.push(new Uint8Array(d)),
      drain: (s) => {
        while (pending.length > 0) {
          const n = s.write(pending[0]!);
          if (n < 0) return;
          if (n < pending[0]!.length) {
            pending[0] = pending[0]!.subarray(n);
            return;
          }
          pending.shift();
        }
      },
      error: (_s, e) => {
        if (/reset|ECONNRESET|EPIPE/i.test(e.message)) reset = true;
      },
      close: () => {
        closed = true;
        done({ got: concat(chunks), reset, localPort });
      },
    },
  });
  localPort = socket.localPort;
  socket.setNoDelay(true);
  for (let i = 0; i < stream.length && !closed; ) {
    const n = Math.min(stream.length - i, r.pick([1, 1, 2, 3, 7, 16, 64, 500, 4096, stream.length]));
    const seg = stream.subarray(i, i + n);
    i += n;
    if (pending.length > 0) pending.push(seg);
    else {
      const w = socket.write(seg);
      if (w >= 0 && w < seg.length) pending.push(seg.subarray(w));
    }
    if (r.next() < 0.3) await Bun.sleep(r.int(0, 2));
  }
  for (let k = 0; k < 500 && pending.length > 0 && !closed; k++) await Bun.sleep(2);
  if (!closed) socket.shutdown(); // FIN: the server answers a last unterminated line, then closes
  const timeout = setTimeout(() => socket.terminate(), 10_000);
  const out = await finished;
  clearTimeout(timeout);
  return out;
}
