// Scenario 8 — UDP loops and reflection. A reply is never sent to source
// port 0 and, by default, not to source ports 1-1023 (inetd's rule against
// echo <-> chargen loops); --udp-allow-low-ports lifts the second rule.
// Shown from privileged source ports (root can bind them) and, for port 0,
// with a datagram forged through a raw socket (no socket can be bound to
// port 0 as a source: bind(0) means "pick one"). A raw socket that sees
// every UDP datagram on the host proves what was (not) sent back.
// Also measured, not asserted: two servers on ports >= 1024 bounce one
// forged datagram between them forever (the residual loop risk).
import { expect, test } from "bun:test";
import { startDaemon, type Daemon } from "../support/daemon.ts";
import { countLines, figures } from "../support/stress.ts";
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

test("udp: residual loop risk between two echo servers on ports >= 1024 (measured)", async () => {
  const a = await startDaemon(["--port", "0"]);
  const b = await startDaemon(["--port", "0"]);
  const between = (p: raw.SniffedUdp) => (p.srcPort === a.udpPort && p.dstPort === b.udpPort) || (p.srcPort === b.udpPort && p.dstPort === a.udpPort);
  let sniffer: Sniffer | null = null;
  let bounced = 0;
  let cpu = 0;
  let wall = 0;
  try {
    await Bun.sleep(200);
    sniffer = new Sniffer(between);
    const cpu0 = cpuSeconds(a.pid) + cpuSeconds(b.pid);
    const t0 = performance.now();
    // One datagram forged from A's UDP port to B: B answers A, A answers B, ...
    raw.sendForgedUdp("127.0.0.1", a.udpPort, "127.0.0.1", b.udpPort, enc.encode("ping"));
    await Bun.sleep(1000);
    cpu = cpuSeconds(a.pid) + cpuSeconds(b.pid) - cpu0;
    wall = (performance.now() - t0) / 1000;
    bounced = sniffer.close().length;
  } finally {
    sniffer?.close();
    expect(await a.stop()).toBe(0);
    expect(await b.stop()).toBe(0);
  }
  figures("08b udp loop between two servers", {
    forged: 1,
    seconds: Math.round(wall * 100) / 100,
    datagramsSniffed: bounced,
    bothServersCpuSeconds: cpu,
    coresBusy: Math.round((cpu / wall) * 100) / 100,
  });
  // Documented, not a pass/fail criterion: the <1024 rule cannot stop this (see docs/reliability.md).
  expect(bounced).toBeGreaterThan(0);
}, 30_000);
