// TCP clients on plain non-blocking syscalls (bun:ffi), for behaviour a
// runtime's socket API hides: never reading at all, or reading exactly one
// byte per second with a tiny receive buffer.
//   args: { host, port, seed, durationMs, clients: [{ kind, count, targetBytes, rcvbuf? }] }
//   kind "never"     sends lines (1 KiB each) up to targetBytes, never reads
//   kind "never-cmd" sends "/x\n" lines (each answered by a 20-byte ERR) up to targetBytes, never reads
//   kind "slow"      sends like "never" and reads one byte per second, checking it
// Emits "connected", starts on {cmd:"go"}, runs until {cmd:"stop"} or durationMs, emits "result".
import { args, emit, fatal, nextCommand } from "./lib.ts";
import * as raw from "../../support/rawsock.ts";

interface Spec {
  kind: "never" | "never-cmd" | "slow";
  count: number;
  targetBytes: number;
  rcvbuf?: number;
}

// One 64 KiB block of whole lines per kind; the stream sent is that block repeated.
function lineBlock(): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  let n = 0;
  for (let i = 0; n < 65536 - 1024; i++) {
    const body = `never-reader line ${String(i).padStart(6, "0")} `.padEnd(1023, "abcdefghijklmnopqrstuvwxyz0123456789".charAt(i % 36));
    const b = enc.encode(body + "\n");
    parts.push(b);
    n += b.length;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
const PLAIN = lineBlock();
const CMD = new TextEncoder().encode("/x\n".repeat(21845)); // 65535 bytes
const CMD_REPLY = new TextEncoder().encode("ERR unknown-command\n");

interface Conn {
  kind: Spec["kind"];
  fd: number;
  target: number;
  sent: number;
  received: number;
  error: string;
  block: Uint8Array;
}

const host: string = args.host ?? "127.0.0.1";
const conns: Conn[] = [];
for (const spec of args.clients as Spec[]) {
  for (let i = 0; i < spec.count; i++) {
    const fd = raw.tcpConnect(host, args.port, spec.rcvbuf ? { rcvbuf: spec.rcvbuf } : {});
    if (fd < 0) fatal(`connect ${host}:${args.port}: errno ${-fd}`);
    conns.push({ kind: spec.kind, fd, target: spec.targetBytes, sent: 0, received: 0, error: "", block: spec.kind === "never-cmd" ? CMD : PLAIN });
  }
}
emit("connected", { count: conns.length });
const go = await nextCommand("go");
const durationMs: number = go.durationMs ?? args.durationMs ?? 10_000;
let stop = false;
void nextCommand("stop").then(() => (stop = true));
const deadline = performance.now() + durationMs;

let mismatches = 0;
let firstMismatch = "";
const one = new Uint8Array(1);
let lastRead = 0;
while (!stop && performance.now() < deadline) {
  for (const c of conns) {
    if (c.error) continue;
    // Write as much as the kernel takes right now, up to the target.
    for (let k = 0; k < 64 && c.sent < c.target; k++) {
      const off = c.sent % c.block.length;
      const len = Math.min(c.block.length - off, c.target - c.sent);
      const n = raw.send(c.fd, c.block, raw.MSG_DONTWAIT, off, len);
      if (n === -raw.EAGAIN) break;
      if (n < 0) {
        c.error = `send errno ${-n}`;
        break;
      }
      c.sent += n;
    }
  }
  const now = performance.now();
  if (now - lastRead >= 1000) {
    lastRead = now;
    for (const c of conns) {
      if (c.kind !== "slow" || c.error) continue;
      const n = raw.recv(c.fd, one, raw.MSG_DONTWAIT);
      if (n === -raw.EAGAIN) continue;
      if (n <= 0) {
        c.error = n === 0 ? "EOF from server" : `recv errno ${-n}`;
        continue;
      }
      const want = c.block[c.received % c.block.length];
      if (one[0] !== want) {
        mismatches++;
        firstMismatch ||= `slow reader byte ${c.received}: got ${one[0]}, expected ${want}`;
      }
      c.received++;
    }
  }
  await Bun.sleep(20);
}

const byKind = (kind: Spec["kind"]) => conns.filter((c) => c.kind === kind);
const errors = conns.filter((c) => c.error).map((c) => `${c.kind}: ${c.error}`);
emit("result", {
  connections: conns.length,
  neverSentBytes: byKind("never").reduce((n, c) => n + c.sent, 0),
  neverCmdSentBytes: byKind("never-cmd").reduce((n, c) => n + c.sent, 0),
  neverCmdRepliesOwed: Math.floor(byKind("never-cmd").reduce((n, c) => n + c.sent, 0) / 3) * CMD_REPLY.length,
  maxSentPerConn: Math.max(0, ...conns.map((c) => c.sent)),
  slowSentBytes: byKind("slow").reduce((n, c) => n + c.sent, 0),
  slowReadBytes: byKind("slow").reduce((n, c) => n + c.received, 0),
  mismatches,
  firstMismatch,
  errors: errors.length,
  firstError: errors[0] ?? "",
});
// Close with RST so the server is not left draining megabytes nobody reads.
for (const c of conns) {
  raw.setLingerZero(c.fd);
  raw.close(c.fd);
}
process.exit(0);
