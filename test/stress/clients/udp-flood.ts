// UDP load on plain non-blocking sockets (bun:ffi), one socket per peer so
// every peer has its own source port.
//   mode "echo":  args { port, peers, perPeer, maxDatagram, seed, timeoutMs }
//     each peer sends perPeer datagrams one at a time and checks each reply:
//     valid ones (0..maxDatagram bytes, some exactly maxDatagram) must come
//     back verbatim, oversize ones (maxDatagram+1 .. 9000) as the ERR line.
//     Reports the kernel's drop counters of its own sockets too. Then emits
//     "flooded", and on {cmd:"touch"} has every peer send one more datagram
//     (paced, retried until answered) so all are fresh in the server's window.
//   mode "spray": args { port, addresses: ["127.0.0.2", ...], firstPort, perAddress, batch }
//     one datagram from each (address, port), sockets closed at once, `batch`
//     at a time, each batch sent once the server's socket has taken the last
//     one in (its receive queue in /proc/net/udp, at most 2 s of waiting):
//     a flood of distinct peers for the peer table, as fast as it keeps up.
import { args, emit, nextCommand, Rng } from "./lib.ts";
import * as raw from "../../support/rawsock.ts";
import { udpDrops, udpSockets } from "../../support/procfs.ts";

const TRUNCATED = new TextEncoder().encode("ERR datagram-truncated\n");
const rng = new Rng(args.seed ?? 6);

function payload(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.int(0, 255);
  // A datagram starting with "/" is a command; keep these plain.
  if (n > 0 && b[0] === 0x2f) b[0] = 0x2e;
  return b;
}

if (args.mode === "spray") {
  let sent = 0;
  let bindFailed = 0;
  const one = new TextEncoder().encode("peer");
  for (const address of args.addresses as string[]) {
    for (let p = args.firstPort; p < args.firstPort + args.perAddress; p++) {
      const fd = raw.socket(raw.AF_INET, raw.SOCK_DGRAM);
      if (raw.bind(fd, address, p) < 0) {
        bindFailed++;
        raw.close(fd);
        continue;
      }
      if (raw.sendto(fd, one, "127.0.0.1", args.port) === one.length) sent++;
      raw.close(fd);
      if (sent % (args.batch ?? 100) === 0) {
        const until = performance.now() + 2000;
        while (udpSockets(args.port).some((r) => r.rxQueue > 16_384) && performance.now() < until) await Bun.sleep(1);
      }
    }
  }
  emit("result", { sent, bindFailed });
  process.exit(0);
}

interface Peer {
  fd: number;
  port: number;
  left: number;
  want: Uint8Array | null;
  sentAt: number;
}
const maxDatagram: number = args.maxDatagram;
const timeoutMs: number = args.timeoutMs ?? 2000;
const peers: Peer[] = [];
for (let i = 0; i < args.peers; i++) {
  const fd = raw.socket(raw.AF_INET, raw.SOCK_DGRAM);
  raw.bind(fd, "127.0.0.1", 0);
  peers.push({ fd, port: raw.localPort(fd), left: args.perPeer, want: null, sentAt: 0 });
}
let valid = 0;
let oversize = 0;
let exactMax = 0;
let empty = 0;
let answered = 0;
let truncatedReplies = 0;
let lost = 0;
let lostTruncated = 0;
let mismatches = 0;
let firstMismatch = "";
let bytesChecked = 0;
let sendErrors = 0;

function sendNext(p: Peer): void {
  if (p.left === 0) return;
  p.left--;
  const r = rng.next();
  let data: Uint8Array;
  let want: Uint8Array;
  if (r < 0.1) {
    data = payload(rng.int(maxDatagram + 1, 9000));
    want = TRUNCATED;
    oversize++;
  } else if (r < 0.15) {
    data = payload(maxDatagram);
    want = data;
    valid++;
    exactMax++;
  } else if (r < 0.2) {
    data = new Uint8Array(0);
    want = data;
    valid++;
    empty++;
  } else {
    data = payload(rng.int(1, 1400));
    want = data;
    valid++;
  }
  p.want = want;
  p.sentAt = performance.now();
  if (raw.sendto(p.fd, data, "127.0.0.1", args.port) !== data.length) sendErrors++;
}

const t0 = performance.now();
for (const p of peers) sendNext(p);
let busy = peers.length;
while (busy > 0) {
  busy = 0;
  for (const p of peers) {
    if (p.want === null) continue;
    busy++;
    const d = raw.recvfrom(p.fd, 70_000, raw.MSG_DONTWAIT);
    if (typeof d === "number") {
      if (performance.now() - p.sentAt > timeoutMs) {
        if (p.want !== TRUNCATED) lost++;
        else lostTruncated++;
        p.want = null;
        sendNext(p);
      }
      continue;
    }
    const want = p.want;
    if (d.port !== args.port || d.data.length !== want.length || !d.data.every((b, i) => b === want[i])) {
      mismatches++;
      firstMismatch ||= `peer ${p.port}: got ${d.data.length} bytes from ${d.port}, wanted ${want.length}`;
    } else {
      bytesChecked += d.data.length;
      if (want === TRUNCATED) truncatedReplies++;
      else answered++;
    }
    p.want = null;
    sendNext(p);
  }
  if (busy > 0) await Bun.sleep(1);
}
// The kernel's per-socket drop counters of our sockets (replies discarded because our buffer was full).
const mine = new Set(peers.map((p) => p.port));
let clientDrops = 0;
for (const port of mine) clientDrops += udpDrops(port);
const floodSeconds = Math.round((performance.now() - t0) / 100) / 10;
emit("flooded", {});
await nextCommand("touch");
// Every peer once more, 50 at a time, each retried until answered (at most 20 tries).
const hello = new TextEncoder().encode("still here");
let touched = 0;
for (let i = 0; i < peers.length; i += 50) {
  const batch = peers.slice(i, i + 50);
  const pending = new Set(batch);
  for (let attempt = 0; attempt < 20 && pending.size > 0; attempt++) {
    for (const p of pending) raw.sendto(p.fd, hello, "127.0.0.1", args.port);
    const until = performance.now() + 200;
    while (pending.size > 0 && performance.now() < until) {
      for (const p of pending) {
        const d = raw.recvfrom(p.fd, 100, raw.MSG_DONTWAIT);
        if (typeof d !== "number") {
          pending.delete(p);
          touched++;
        }
      }
      await Bun.sleep(1);
    }
  }
}
// Late replies to retries are left unread: the sockets close next.
emit("result", {
  touched,
  peers: peers.length,
  valid,
  exactMax,
  empty,
  oversize,
  answered,
  truncatedReplies,
  lost,
  lostTruncated,
  mismatches,
  firstMismatch,
  bytesChecked,
  sendErrors,
  clientDrops,
  seconds: floodSeconds,
});
for (const p of peers) raw.close(p.fd);
process.exit(0);
