// UDP replies leave from the address the datagram was sent to: one socket per
// local address, bound just after start and re-scanned when a datagram
// reaches the wildcard socket (an address without a socket of its own) and on
// SIGHUP. Checked inside a private network namespace with addresses of one
// /24 on lo, where the wildcard socket answers 10.77.0.2 from 10.77.0.1 (the
// route's preferred source) and a connected client never sees that reply.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { BINARY, startDaemon, type Daemon } from "../support/daemon.ts";
import { createTestNetns, exchangeInNetns, tryExchangeInNetns, type TestNetns } from "../support/netns.ts";

let ns: TestNetns | null = null;
let d: Daemon | null = null;
const skip = (() => {
  const made = createTestNetns();
  if (typeof made === "string") return made;
  ns = made;
  return null;
})();

const ip = (...args: string[]) => {
  const r = Bun.spawnSync(["ip", "-n", ns!.name, ...args], { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.toString()}`);
};

beforeAll(async () => {
  if (skip) return;
  ip("addr", "add", "10.77.0.1/24", "dev", "lo");
  ip("addr", "add", "10.77.0.2/24", "dev", "lo");
  d = await startDaemon(["--port", "0"], { command: [...ns!.exec, BINARY] });
  await d.waitForLog(/UDP addresses: /); // the per-address sockets, bound just after start
});
afterAll(async () => {
  if (d) expect(await d.stop()).toBe(0);
  ns?.remove();
});

/** The per-address sockets of the last "UDP addresses:" line. */
const udpAddresses = (log: string) => [...log.matchAll(/UDP addresses: ([^\n]*?) \(others on the wildcard/g)].at(-1)?.[1]?.split(", ") ?? [];

test.skipIf(skip !== null)("a connected client to each local address gets its echo", () => {
  expect(udpAddresses(d!.stderr())).toEqual(expect.arrayContaining(["127.0.0.1", "10.77.0.1", "10.77.0.2", "198.18.0.1", "::1"]));
  for (const host of ["10.77.0.1", "10.77.0.2", "127.0.0.1", "198.18.0.1", "::1"]) {
    expect(exchangeInNetns(ns!, "udp-connected", host, d!.udpPort, `to ${host}`).toString()).toBe(`to ${host}`);
  }
});

test.skipIf(skip !== null)("an address added after start: a connected client sending again and again is answered within about a second", async () => {
  ip("addr", "add", "10.77.0.3/24", "dev", "lo");
  const added = performance.now();
  // The first datagram reaches the wildcard, which answers from 10.77.0.1 (the
  // connected client drops that) and asks for the rescan that binds 10.77.0.3.
  expect(tryExchangeInNetns(ns!, "udp-connected", "10.77.0.3", d!.udpPort, "late", 5000, 100).toString()).toBe("late");
  expect(performance.now() - added).toBeLessThan(3000);
  await d!.waitForLog(/UDP addresses: [^\n]*10\.77\.0\.3[, ]/, 1000);
});

test.skipIf(skip !== null)("the first datagram to a new address is answered (by the wildcard) and brings its socket", async () => {
  ip("addr", "add", "10.77.0.5/24", "dev", "lo");
  const sent = performance.now();
  expect(exchangeInNetns(ns!, "udp", "10.77.0.5", d!.udpPort, "first").toString()).toBe("first");
  await d!.waitForLog(/UDP addresses: [^\n]*10\.77\.0\.5[, ]/, 3000);
  expect(performance.now() - sent).toBeLessThan(3000);
  expect(exchangeInNetns(ns!, "udp-connected", "10.77.0.5", d!.udpPort, "second").toString()).toBe("second");
});

test.skipIf(skip !== null)("SIGHUP re-scans at once: a new address is answered, a removed one's socket closed", async () => {
  ip("addr", "add", "10.77.0.4/24", "dev", "lo");
  const sent = performance.now();
  d!.proc.kill("SIGHUP");
  await d!.waitForLog(/UDP addresses: [^\n]*10\.77\.0\.4[, ]/, 3000);
  expect(performance.now() - sent).toBeLessThan(1000);
  expect(exchangeInNetns(ns!, "udp-connected", "10.77.0.4", d!.udpPort, "hup").toString()).toBe("hup");
  ip("addr", "del", "10.77.0.4/24", "dev", "lo");
  d!.proc.kill("SIGHUP");
  await d!.waitForLog(/SIGHUP received[^]*SIGHUP received[^]*UDP addresses: /, 3000);
  expect(udpAddresses(d!.stderr())).not.toContain("10.77.0.4");
  expect(exchangeInNetns(ns!, "udp-connected", "10.77.0.2", d!.udpPort, "still").toString()).toBe("still");
  expect(d!.proc.exitCode).toBeNull();
});

test.skipIf(skip !== null)("/stats counts peers, not sockets: one peer per client whatever address it asked", () => {
  // A fresh server: each exchange is a new client (its own port), each to another address.
  const before = exchangeInNetns(ns!, "udp", "127.0.0.1", d!.udpPort, "/stats").toString();
  const [total, , active] = before.trim().split(" ").map(Number);
  for (const host of ["10.77.0.1", "10.77.0.2", "::1"]) exchangeInNetns(ns!, "udp", host, d!.udpPort, "x");
  const after = exchangeInNetns(ns!, "udp", "10.77.0.2", d!.udpPort, "/stats").toString();
  expect(after).toBe(`${total! + 4} 0 ${active! + 4}\n`);
});
