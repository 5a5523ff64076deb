// UDP replies leave from the address the datagram was sent to: one socket per
// local address, re-scanned every UDP_RESCAN_MS and on SIGHUP. Checked inside
// a private network namespace with two addresses of one /24 on lo, where a
// wildcard socket would answer 10.77.0.2 from 10.77.0.1 (the route's
// preferred source) and a connected client would never see the reply.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { BINARY, startDaemon, type Daemon } from "../support/daemon.ts";
import { createTestNetns, exchangeInNetns, type TestNetns } from "../support/netns.ts";
import { UDP_RESCAN_MS } from "../../src/server/udp-sockets.ts";

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
});
afterAll(async () => {
  if (d) expect(await d.stop()).toBe(0);
  ns?.remove();
});

/** The addresses of the last "UDP addresses:" line. */
const udpAddresses = (log: string) => [...log.matchAll(/UDP addresses: ([^\n]*?) port=/g)].at(-1)?.[1]?.split(", ") ?? [];

test.skipIf(skip !== null)("a connected client to each local address gets its echo", () => {
  expect(udpAddresses(d!.stderr())).toEqual(expect.arrayContaining(["127.0.0.1", "10.77.0.1", "10.77.0.2", "198.18.0.1", "::1"]));
  for (const host of ["10.77.0.1", "10.77.0.2", "127.0.0.1", "198.18.0.1", "::1"]) {
    expect(exchangeInNetns(ns!, "udp-connected", host, d!.udpPort, `to ${host}`).toString()).toBe(`to ${host}`);
  }
});

test.skipIf(skip !== null)("an address added after start is answered within the re-scan period", async () => {
  ip("addr", "add", "10.77.0.3/24", "dev", "lo");
  const added = performance.now();
  await d!.waitForLog(/UDP addresses: [^\n]*10\.77\.0\.3[, ]/, UDP_RESCAN_MS + 2000);
  expect(performance.now() - added).toBeLessThan(UDP_RESCAN_MS + 1000);
  expect(exchangeInNetns(ns!, "udp-connected", "10.77.0.3", d!.udpPort, "late").toString()).toBe("late");
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
