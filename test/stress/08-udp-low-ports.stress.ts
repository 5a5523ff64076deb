// Scenario 8 — UDP loops and reflection. A reply is never sent to source
// port 0 and, by default, not to source ports 1-1023 (inetd's rule against
// echo <-> chargen loops); --udp-allow-low-ports lifts the second rule.
// Shown from privileged source ports (root can bind them) and, for port 0,
// with a datagram forged through a raw socket (no socket can be bound to
// port 0 as a source: bind(0) means "pick one"). A raw socket that sees
// every UDP datagram on the host proves what was (not) sent back.
// Then the rules of issue 12, between servers on non-loopback addresses (a
// veth namespace of the test's own): a loop between two servers on
// different ports dies at the first reply --udp-rate drops; two servers on
// the same port never answer each other (own-port rule); a flood forged
// from one victim address reflects at most the rate plus the burst.
import { expect, test } from "bun:test";
import { BINARY, startDaemon, type Daemon } from "../support/daemon.ts";
import { countLines, figures, pick } from "../support/stress.ts";
import { createVethNetns, vethNetnsUnavailable } from "../support/veth-netns.ts";
import * as raw from "../support/rawsock.ts";
import { cpuSeconds } from "../support/procfs.ts";

const enc = new TextEncoder();
const LOW_PORTS = [1, 7, 13, 19, 37, 1000, 1023];
/** Our own loopback source address, so a concurrent run binding the same ports cannot take our replies. */
const SRC = `127.${2 + (process.pid % 250)}.${Math.floor(Math.random() * 250) + 1}.1`;

/** Send from SRC:srcPort (a real bound socket); the reply, or null after waitMs. */
async function fromPort(d: Daemon, srcPort: number, payload: string, waitMs = 500): Promise<string | null> {
  const fd = raw.socket(raw.AF_INET, raw.SOCK_DGRAM);
  try {
    raw.setsockoptInt(fd, raw.SOL_SOCKET, raw.SO_REUSEADDR, 1);
    const b = raw.bind(fd, SRC, srcPort);
    if (b < 0) throw new Error(`bind ${SRC}:${srcPort}: errno ${-b}`);
    expect(raw.sendto(fd, enc.encode(payload), "127.0.0.1", d.udpPort)).toBe(payload.length);
    const until = performance.now() + waitMs;
    while (performance.now() < until) {
      const got = raw.recvfrom(fd, 2000, raw.MSG_DONTWAIT);
      if (typeof got !== "number") return new TextDecoder().decode(got.data);
      await Bun.sleep(5);
    }
    return null;
  } finally {
    raw.close(fd);
  }
}

/**
 * Watches every UDP datagram on the host from a raw socket, draining it every
 * 5 ms and keeping those that match, so heavy unrelated UDP traffic (another
 * test run, say) cannot overflow it and hide what matters.
 */
class Sniffer {
  readonly seen: raw.SniffedUdp[] = [];
  private readonly fd = raw.openUdpSniffer();
  private readonly timer: ReturnType<typeof setInterval>;
  constructor(private readonly keep: (p: raw.SniffedUdp) => boolean) {
    expect(this.fd).toBeGreaterThanOrEqual(0); // root: raw sockets available
    this.timer = setInterval(() => this.drain(), 5);
  }
  drain(): void {
    for (const p of raw.drainSniffer(this.fd)) if (this.keep(p)) this.seen.push(p);
  }
  private closed = false;
  /** Stop watching (idempotent: the descriptor is closed once) and return what was kept. */
  close(): raw.SniffedUdp[] {
    if (!this.closed) {
      this.closed = true;
      clearInterval(this.timer);
      this.drain();
      raw.close(this.fd);
    }
    return this.seen;
  }
}

/** Datagrams the sniffer saw leaving the server's UDP port for SRC:dstPort. */
const repliesTo = (seen: raw.SniffedUdp[], d: Daemon, dstPort: number) =>
  seen.filter((p) => p.srcPort === d.udpPort && p.dstPort === dstPort && p.dstAddr === SRC);

test("udp: no reply to source port 0 nor, by default, to ports below 1024; --udp-allow-low-ports answers those", async () => {
  const d = await startDaemon(["--port", "0"]);
  const lax = await startDaemon(["--port", "0", "--udp-allow-low-ports"]);
  const sniffer = new Sniffer((p) => p.srcAddr === SRC || p.dstAddr === SRC);
  try {
    // Default server: nothing back to any privileged port, repeatedly.
    for (const p of LOW_PORTS) expect([p, await fromPort(d, p, `from ${p}`, 300)]).toEqual([p, null]);
    for (let i = 0; i < 50; i++) await fromPort(d, 1000, `again ${i}`, 0);
    // ...and port 1024 is answered.
    expect(await fromPort(d, 1024, "from 1024")).toBe("from 1024");
    // Port 0, forged through a raw socket.
    expect(raw.sendForgedUdp(SRC, 0, "127.0.0.1", d.udpPort, enc.encode("from port 0"))).toBeGreaterThan(0);
    expect(raw.sendForgedUdp(SRC, 0, "127.0.0.1", lax.udpPort, enc.encode("from port 0"))).toBeGreaterThan(0);
    // The lax server answers privileged ports, still not port 0.
    for (const p of [7, 19, 1000]) expect(await fromPort(lax, p, `lax ${p}`)).toBe(`lax ${p}`);
    await Bun.sleep(500);
    const seen = sniffer.close();
    const arrivedPort0 = seen.filter((p) => p.srcPort === 0 && p.srcAddr === SRC && (p.dstPort === d.udpPort || p.dstPort === lax.udpPort)).length;
    const toLow = LOW_PORTS.reduce((n, p) => n + repliesTo(seen, d, p).length, 0);
    const toZero = repliesTo(seen, d, 0).length + repliesTo(seen, lax, 0).length;
    const warnings = countLines(d.stderr(), /WARN .*not answering UDP from source ports below 1024/);
    figures("08 udp low ports", {
      lowPortsTried: LOW_PORTS.join("/"),
      datagramsFromLowPorts: LOW_PORTS.length + 50,
      repliesToLowPorts: toLow,
      port0Delivered: arrivedPort0,
      repliesToPort0: toZero,
      laxRepliesToLowPorts: [7, 19, 1000].reduce((n, p) => n + repliesTo(seen, lax, p).length, 0),
      lowPortWarnings: warnings,
    });
    expect(arrivedPort0).toBe(2); // the forged datagrams did reach the servers' port...
    expect(toZero).toBe(0); // ...and nothing went back to port 0
    expect(toLow).toBe(0);
    expect(repliesTo(seen, d, 1024).length).toBe(1);
    expect(warnings).toBe(1); // warned once, not once per datagram
    expect(countLines(lax.stderr(), /not answering UDP/)).toBe(0);
  } finally {
    sniffer.close();
    expect(await d.stop()).toBe(0);
    expect(await lax.stop()).toBe(0);
  }
}, 60_000);

/** Skip reason for the parts that need a veth namespace, or null. */
const vethSkip = vethNetnsUnavailable();

test("udp: a forged loop between two servers on non-loopback addresses dies within 1 s (--udp-rate), both back to idle", async () => {
  if (vethSkip !== null) return void console.log(`[stress] 08b skipped: ${vethSkip}`);
  const ns = createVethNetns();
  // Both servers in this namespace, reached on the veth's host address: not loopback, so rate-limited (default 1000/s).
  const X = ns.hostAddress;
  const a = await startDaemon(["--port", "0"]);
  const b = await startDaemon(["--port", "0"]);
  const times: number[] = [];
  const between = (p: raw.SniffedUdp) => {
    const hit = p.srcAddr === X && p.dstAddr === X && ((p.srcPort === a.udpPort && p.dstPort === b.udpPort) || (p.srcPort === b.udpPort && p.dstPort === a.udpPort));
    if (hit) times.push(performance.now());
    return hit;
  };
  let sniffer: Sniffer | null = null;
  try {
    await Bun.sleep(200);
    sniffer = new Sniffer(between);
    const cpu0 = cpuSeconds(a.pid) + cpuSeconds(b.pid);
    const t0 = performance.now();
    // One datagram forged from A's UDP port to B: B answers A, A answers B, ... until a bucket runs dry.
    expect(raw.sendForgedUdp(X, a.udpPort, X, b.udpPort, enc.encode("ping"))).toBeGreaterThan(0);
    await Bun.sleep(1000);
    const cpuLoop = cpuSeconds(a.pid) + cpuSeconds(b.pid) - cpu0;
    const atOneSecond = times.length;
    const cpu1 = cpuSeconds(a.pid) + cpuSeconds(b.pid);
    await Bun.sleep(2000);
    const cpuAfter = cpuSeconds(a.pid) + cpuSeconds(b.pid) - cpu1;
    const seen = sniffer.close();
    const lastMs = times.length > 0 ? times[times.length - 1]! - t0 : 0;
    await Promise.any([a.waitForLog(/over --udp-rate/), b.waitForLog(/over --udp-rate/)]);
    const warnings = countLines(a.stderr() + b.stderr(), /WARN .*over --udp-rate 1000\/s/);
    figures("08b udp loop between two servers", {
      forged: 1,
      address: X,
      datagramsBounced: seen.length,
      lastBounceMs: Math.round(lastMs),
      afterOneSecond: seen.length - atOneSecond,
      cpuFirstSecond: cpuLoop,
      cpuNextTwoSeconds: cpuAfter,
      rateWarnings: warnings,
    });
    expect(seen.length).toBeGreaterThan(0); // it did bounce...
    expect(lastMs).toBeLessThan(1000); // ...and stopped within 1 s
    expect(seen.length - atOneSecond).toBe(0);
    expect(seen.length).toBeLessThanOrEqual(2 * (1000 + 1000) + 2); // each server's bucket for X, burst + 1 s of refill
    expect(cpuAfter / 2).toBeLessThan(0.05); // both back to idle: < 5 % of a core between them
    expect(warnings).toBeGreaterThanOrEqual(1);
    expect(warnings).toBeLessThanOrEqual(2); // one per server at most
  } finally {
    sniffer?.close();
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
    ns.destroy();
  }
}, 30_000);

test("udp: two servers on the same port never answer each other (own-port rule, even with --udp-rate 0)", async () => {
  if (vethSkip !== null) return void console.log(`[stress] 08c skipped: ${vethSkip}`);
  const ns = createVethNetns();
  const a = await startDaemon(["--port", "0", "--udp-rate", "0"]);
  // B in the namespace on A's port: what two machines running the default 12345 look like.
  const b = await startDaemon(["--port", String(a.udpPort), "--udp-rate", "0"], { command: ns.command([BINARY]) });
  const sniffer = new Sniffer((p) => p.srcPort === a.udpPort && p.dstPort === a.udpPort);
  try {
    await Bun.sleep(200);
    const cpu0 = cpuSeconds(a.pid) + cpuSeconds(b.pid);
    // Forged from A's address and port to B (across the veth); and to A from its own port.
    for (let i = 0; i < 5; i++) {
      expect(raw.sendForgedUdp(ns.hostAddress, a.udpPort, ns.nsAddress, a.udpPort, enc.encode(`to b ${i}`))).toBeGreaterThan(0);
      expect(raw.sendForgedUdp(ns.hostAddress, a.udpPort, ns.hostAddress, a.udpPort, enc.encode(`to a ${i}`))).toBeGreaterThan(0);
    }
    await b.waitForLog(/not answering UDP from this server's own port/);
    await a.waitForLog(/not answering UDP from this server's own port/);
    await Bun.sleep(1000);
    const cpu = cpuSeconds(a.pid) + cpuSeconds(b.pid) - cpu0;
    const seen = sniffer.close();
    // The sniffer sees what arrives in this namespace: the 5 forged to A, and anything B sent back over the veth.
    const fromB = seen.filter((p) => p.srcAddr === ns.nsAddress).length;
    const toA = seen.filter((p) => p.dstAddr === ns.hostAddress && p.srcAddr === ns.hostAddress).length;
    const warnings = countLines(a.stderr() + b.stderr(), /not answering UDP from this server's own port/);
    figures("08c udp same port", { forged: 10, sniffedSamePort: seen.length, repliesFromB: fromB, toA, cpuSeconds: cpu, ownPortWarnings: warnings });
    expect(toA).toBe(5); // the sniffer works: it saw the 5 forged to A...
    expect(fromB).toBe(0); // ...and B answered none of its 5 (nor did A, or B would have heard from it)
    expect(warnings).toBe(2); // one per server, not one per datagram
    expect(cpu).toBeLessThan(0.2);
  } finally {
    sniffer.close();
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
    ns.destroy();
  }
}, 30_000);

test("udp: a flood forged from one victim address draws at most --udp-rate plus the burst of replies a second", async () => {
  if (vethSkip !== null) return void console.log(`[stress] 08d skipped: ${vethSkip}`);
  const ns = createVethNetns();
  const d = await startDaemon(["--port", "0"]);
  const SECONDS = pick(3, 6);
  const arrivals: number[] = [];
  let t0 = 0;
  // The "victim": a socket on a non-loopback address of this host; every reply it gets is one the flood reflected.
  const victim = await Bun.udpSocket({
    hostname: ns.hostAddress,
    socket: { data: () => void arrivals.push(performance.now() - t0) },
  });
  let sent = 0;
  try {
    await Bun.sleep(200);
    const payload = enc.encode("reflect me");
    const batch: (Uint8Array | number | string)[] = [];
    for (let i = 0; i < 40; i++) batch.push(payload, d.udpPort, ns.hostAddress);
    t0 = performance.now();
    // About 40 datagrams a millisecond, from several source ports of the one address.
    while (performance.now() - t0 < SECONDS * 1000) {
      sent += victim.sendMany(batch);
      await Bun.sleep(1);
    }
    await Bun.sleep(300);
    const perSecond = Array.from({ length: SECONDS }, (_, s) => arrivals.filter((t) => t >= s * 1000 && t < (s + 1) * 1000).length);
    // At any moment t (ms) since the first datagram, replies so far <= burst + rate * t (one of slack for timer skew).
    let worst = 0;
    arrivals.forEach((t, i) => (worst = Math.max(worst, i + 1 - (1000 + t))));
    const limited = countLines(d.stderr(), /over --udp-rate 1000\/s/);
    figures("08d udp reflection bound", { seconds: SECONDS, sent, sentPerSecond: Math.round(sent / SECONDS), replies: arrivals.length, repliesPerSecond: perSecond.join("/"), worstOverBound: worst, rateWarnings: limited });
    expect(sent).toBeGreaterThan(SECONDS * 5000); // a real flood, several times the rate
    expect(perSecond[0]!).toBeLessThanOrEqual(2000);
    for (const n of perSecond.slice(1)) expect(n).toBeLessThanOrEqual(1000 + 20);
    expect(worst).toBeLessThanOrEqual(1);
    expect(perSecond[SECONDS - 1]!).toBeGreaterThan(900); // the limit, not a stall: the rate keeps being served
    expect(limited).toBe(1); // one warning per 10 s
  } finally {
    victim.close();
    expect(await d.stop()).toBe(0);
    ns.destroy();
  }
}, 30_000);
