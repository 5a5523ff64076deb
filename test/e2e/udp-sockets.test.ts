// The wildcard-first UDP socket set, with real sockets on loopback and the
// server's own UdpSockets fed a chosen address list: one wildcard at start,
// the per-address sockets FIRST_SCAN_DELAY_MS later, a datagram that reaches
// the wildcard asks for a rescan (at most one a second), SO_REUSEADDR is off
// once our binds are done (no other socket can take one of our addresses),
// and a port in use is a one-line startup error of the binary.
import { afterEach, expect, test } from "bun:test";
import { FIRST_SCAN_DELAY_MS, RESCAN_GAP_MS, UdpSockets } from "../../src/server/udp-sockets.ts";
import { encodeSockAddr, withPort } from "../../src/core/sockaddr.ts";
import * as libc from "../../src/sys/libc.ts";
import type { Logger } from "../../src/sys/log.ts";
import { runBinary } from "../support/daemon.ts";
import { udpRequest } from "../support/net.ts";
import type { udp } from "bun";

const entry = (literal: string) => ({ name: "lo", flags: 0, addr: encodeSockAddr(literal)!.bytes });

/** A logger that keeps the info and warning lines and lets a test wait for one. */
function capture() {
  const infos: string[] = [];
  const warnings: string[] = [];
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const info = (m: string) => {
    infos.push(m);
    for (const w of waiters.splice(0)) (w.pattern.test(m) ? w.resolve(m) : waiters.push(w));
  };
  const log = { warn: (m: string) => warnings.push(m), info, debug() {}, error() {}, trace() {}, debugOn: false, traceOn: false } as unknown as Logger;
  const next = (pattern: RegExp) => new Promise<string>((resolve) => waiters.push({ pattern, resolve }));
  return { log, infos, warnings, next };
}

const echo = {
  data: (s: udp.Socket<"uint8array">, data: Uint8Array, port: number, address: string) => void s.send(data, port, address),
};

/** bind(2) of a fresh UDP socket with SO_REUSEADDR, as another process could: 0 or -errno. */
function bindWithReuseAddr(literal: string, port: number): number {
  const addr = encodeSockAddr(literal)!;
  const fd = libc.socket(addr.family, libc.SOCK_DGRAM | libc.SOCK_CLOEXEC);
  libc.setsockoptInt(fd, libc.SOL_SOCKET, libc.SO_REUSEADDR, 1);
  const rc = libc.bind(fd, withPort(addr.bytes, port));
  libc.close(fd);
  return rc;
}

let sockets: UdpSockets | null = null;
afterEach(() => {
  sockets?.close();
  sockets = null;
});

test("one wildcard socket at start, answering at once; the per-address ones a moment later; SO_REUSEADDR left off on all of them", async () => {
  const { log, infos, next } = capture();
  let listed = 0;
  const listAddresses = () => (listed++, [entry("127.0.0.1"), entry("::1")]);
  sockets = new UdpSockets({ plan: { kind: "scan", ipv4Only: false }, handlers: echo, log, reusePort: false, listAddresses });
  const scanned = next(/^UDP addresses: /);
  const started = performance.now();
  await sockets.start(0);
  expect(sockets.sockets.length).toBe(1);
  expect((await udpRequest(sockets.port, "early", "127.0.0.1")).toString()).toBe("early");
  expect(listed).toBe(0);
  expect(infos).toEqual([]);
  expect(await scanned).toBe("UDP addresses: 127.0.0.1, ::1 (others on the wildcard ::)");
  expect(performance.now() - started).toBeGreaterThanOrEqual(FIRST_SCAN_DELAY_MS - 1);
  expect(sockets.sockets.length).toBe(3);
  for (const host of ["127.0.0.1", "::1", "127.0.0.2"]) expect((await udpRequest(sockets.port, host, host)).toString()).toBe(host);
  // Nobody else can bind our addresses, nor one we have no socket for, on our port.
  for (const host of ["127.0.0.1", "::1", "127.0.0.2", "0.0.0.0", "::"]) expect(bindWithReuseAddr(host, sockets.port)).toBe(-98); // EADDRINUSE
});

test("a datagram on the wildcard asks for a rescan: a new address gets its socket; a flood draws one rescan a second", async () => {
  const { log, next } = capture();
  let addresses = [entry("127.0.0.1")];
  let listed = 0;
  const listAddresses = () => (listed++, addresses);
  sockets = new UdpSockets({ plan: { kind: "scan", ipv4Only: false }, handlers: echo, log, reusePort: false, listAddresses });
  const first = next(/^UDP addresses: /);
  await sockets.start(0);
  await first;
  expect(listed).toBe(1);

  // ::1 appears; its first datagram is answered (by the wildcard) and brings the rescan that binds it.
  addresses = [entry("127.0.0.1"), entry("::1")];
  const rebound = next(/^UDP addresses: 127\.0\.0\.1, ::1 /);
  const sent = performance.now();
  expect((await udpRequest(sockets.port, "new", "::1")).toString()).toBe("new");
  await rebound;
  expect(performance.now() - sent).toBeLessThan(RESCAN_GAP_MS + 1000);
  expect(sockets.sockets.length).toBe(3);

  // 127.0.0.2 never gets a socket (it is not listed): every datagram to it reaches the wildcard, and is answered.
  const before = listed;
  const t0 = performance.now();
  let answered = 0;
  while (performance.now() - t0 < 2500) {
    await Promise.all(Array.from({ length: 10 }, () => udpRequest(sockets!.port, "x", "127.0.0.2").then(() => answered++)));
  }
  const seconds = (performance.now() - t0) / 1000;
  expect(answered).toBeGreaterThan(50);
  const rescans = listed - before;
  expect(rescans).toBeGreaterThanOrEqual(1);
  expect(rescans).toBeLessThanOrEqual(Math.ceil(seconds) + 1);
});

test("a UDP port in use on the wildcard, or on one address: exit 1 with one line naming the port", async () => {
  for (const hostname of ["::", "127.0.0.1"]) {
    const holder = await Bun.udpSocket({ hostname, port: 0 });
    try {
      const r = runBinary(["--tcp-port", "0", "--udp-port", String(holder.port)]);
      expect(r.code).toBe(1);
      const errors = r.stderr.split("\n").filter((l) => l.includes("cannot listen"));
      expect(errors).toEqual([expect.stringContaining(`cannot listen on UDP port ${holder.port}: address already in use (EADDRINUSE)`)]);
      expect(r.stderr).not.toContain("    at ");
    } finally {
      holder.close();
    }
  }
});
