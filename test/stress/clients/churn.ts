// Connection churn on plain non-blocking sockets: `cycles` connect / send /
// close cycles, `concurrency` at a time, in three kinds taking turns:
//   "rst"   4 KiB receive buffer, sends 256 KiB of lines, waits for the first
//           echoed bytes (the server is then mid-reply, its output backed up
//           behind our tiny window) and closes with RST (SO_LINGER 0)
//   "eof"   sends 1-20 lines (the last one sometimes unterminated), half-closes,
//           reads until the server's FIN: every byte must come back
//   "close" sends 1-20 lines, reads the echo, closes
// Every byte received is checked against what was sent (lines echo verbatim).
//   args: { host, port, cycles, concurrency, seed }
import { args, emit, Rng } from "./lib.ts";
import * as raw from "../../support/rawsock.ts";

type Kind = "rst" | "eof" | "close";
const KINDS: Kind[] = ["rst", "eof", "close"];
const rng = new Rng(args.seed ?? 5);
const host: string = args.host ?? "127.0.0.1";
const port: number = args.port;
const RST_BYTES = 256 * 1024;
const CYCLE_TIMEOUT_MS = 15_000;

interface Cycle {
  kind: Kind;
  fd: number;
  out: Uint8Array;
  sent: number;
  got: number;
  halfClosed: boolean;
  started: number;
}

function lines(n: number, unterminatedTail: boolean): Uint8Array {
  const parts: number[] = [];
  for (let i = 0; i < n; i++) {
    const len = rng.int(1, 120);
    for (let k = 0; k < len; k++) {
      const v = rng.int(0x20, 0x7e);
      parts.push(v === 0x2f ? 0x2e : v); // no "/": a line starting with it would be a command
    }
    parts.push(0x0a);
  }
  if (unterminatedTail) for (let k = rng.int(1, 40); k > 0; k--) parts.push(0x41 + (k % 26));
  return Uint8Array.from(parts);
}

const rstBlock = (() => {
  const b = new Uint8Array(RST_BYTES);
  for (let i = 0; i < b.length; i++) b[i] = i % 128 === 127 ? 0x0a : 0x61 + (i % 26);
  return b;
})();

let started = 0;
let done = 0;
const counts: Record<Kind, number> = { rst: 0, eof: 0, close: 0 };
let bytesChecked = 0;
let mismatches = 0;
let firstMismatch = "";
let errors = 0;
let firstError = "";
let rstMidReply = 0;
const buf = new Uint8Array(65536);

function fail(c: Cycle, what: string): void {
  errors++;
  firstError ||= `${c.kind}: ${what}`;
  raw.setLingerZero(c.fd);
  raw.close(c.fd);
}

function start(): Cycle | null {
  const kind = KINDS[started % 3]!;
  started++;
  const fd = raw.tcpConnect(host, port, kind === "rst" ? { rcvbuf: 4096 } : {});
  if (fd < 0) {
    errors++;
    firstError ||= `connect errno ${-fd}`;
    return null;
  }
  const out = kind === "rst" ? rstBlock : lines(rng.int(1, 20), kind === "eof" && rng.next() < 0.5);
  return { kind, fd, out, sent: 0, got: 0, halfClosed: false, started: performance.now() };
}

/** Advance a cycle; true when it is over. */
function step(c: Cycle): boolean {
  if (c.sent < c.out.length) {
    const n = raw.send(c.fd, c.out, raw.MSG_DONTWAIT, c.sent);
    if (n > 0) c.sent += n;
    else if (n !== -raw.EAGAIN) {
      fail(c, `send errno ${-n}`);
      return true;
    }
  }
  if (c.kind === "eof" && c.sent === c.out.length && !c.halfClosed) {
    raw.shutdownWrite(c.fd);
    c.halfClosed = true;
  }
  for (;;) {
    const n = raw.recv(c.fd, buf, raw.MSG_DONTWAIT);
    if (n === -raw.EAGAIN) break;
    if (n < 0) {
      fail(c, `recv errno ${-n}`);
      return true;
    }
    if (n === 0) {
      // The server closed: only right for "eof", and only once everything came back.
      if (c.kind === "eof" && c.got === c.out.length) {
        raw.close(c.fd);
        counts.eof++;
        return true;
      }
      fail(c, `server closed after ${c.got} of ${c.out.length} bytes`);
      return true;
    }
    for (let i = 0; i < n; i++) {
      if (c.got + i >= c.sent || buf[i] !== c.out[c.got + i]) {
        mismatches++;
        firstMismatch ||= `${c.kind}: byte ${c.got + i}: got ${buf[i]}, expected ${c.out[c.got + i]}`;
        fail(c, "mismatch");
        return true;
      }
    }
    c.got += n;
    bytesChecked += n;
    if (c.kind === "rst") break; // one read is enough: reset now, mid-reply
  }
  if (c.kind === "rst" && c.got > 0 && c.sent === c.out.length) {
    if (c.got < c.out.length) rstMidReply++;
    raw.setLingerZero(c.fd);
    raw.close(c.fd);
    counts.rst++;
    return true;
  }
  if (c.kind === "close" && c.got === c.out.length) {
    raw.close(c.fd);
    counts.close++;
    return true;
  }
  if (performance.now() - c.started > CYCLE_TIMEOUT_MS) {
    fail(c, `timed out: sent ${c.sent}/${c.out.length}, got ${c.got}`);
    return true;
  }
  return false;
}

const total: number = args.cycles;
const concurrency: number = args.concurrency ?? 32;
const active: Cycle[] = [];
const t0 = performance.now();
while (done < total) {
  while (active.length < concurrency && started < total) {
    const c = start();
    if (c === null) done++;
    else active.push(c);
  }
  let progressed = false;
  for (let i = active.length - 1; i >= 0; i--) {
    if (step(active[i]!)) {
      active.splice(i, 1);
      done++;
      progressed = true;
    }
  }
  if (!progressed) await Bun.sleep(1);
}
emit("result", {
  cycles: done,
  rst: counts.rst,
  eof: counts.eof,
  close: counts.close,
  rstMidReply,
  bytesChecked,
  mismatches,
  firstMismatch,
  errors,
  firstError,
  seconds: Math.round((performance.now() - t0) / 100) / 10,
});
process.exit(0);
