// The hand-over codec and the counters' state (src/core/handover.ts,
// src/core/stats.ts): pure, no sockets.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { decodeHandover, encodeHandover, execEnvironment, handoverFd, HandoverError, type Handover } from "../../src/core/handover.ts";
import { HANDOVER_VARIABLE, IDLE_SETTINGS, settingsText, wantsIdleSettings } from "../../src/core/idle-settings.ts";
import { Stats, UdpPeerTable } from "../../src/core/stats.ts";
import { unitEnvironment } from "../../scripts/bench/wakeups.ts";

const ROOT = join(import.meta.dir, "..", "..");

function busyStats(now: number): Stats {
  const s = new Stats(new UdpPeerTable(60_000, 100));
  s.tcpAccepted = 7;
  s.tcpRejectedBusy = 2;
  s.tcpConnected = 3; // live: not carried
  s.tcpLines = 1234;
  s.tcpBytesIn = 2 ** 40 + 5; // past 32 bits
  s.tcpPendingOutput = 99; // live: not carried
  s.udpDatagrams = 50;
  s.udpLoopGuardDrops["own-port"] = 4;
  s.tlsHandshakes.failed = 1;
  s.commands.stats = 3;
  s.shutdownRejected["token-invalid"] = 2;
  for (let i = 0; i < 1500; i++) s.udpPeerSeen(`10.0.${i >> 8}.${i & 255}`, 40000 + i, now - 1000 * (i % 70)); // grows the fingerprint table
  return s;
}

test("the idle settings are the packaged unit's Environment= (one list, not two)", () => {
  expect(Object.fromEntries(IDLE_SETTINGS)).toEqual(unitEnvironment(ROOT));
  expect(settingsText()).toBe("BUN_JSC_numberOfGCMarkers=1 MIMALLOC_SCAVENGER=0");
});

test("any value of BUN_JSC_numberOfGCMarkers is the operator's choice: no re-exec", () => {
  expect(wantsIdleSettings({})).toBe(true);
  expect(wantsIdleSettings({ MIMALLOC_SCAVENGER: "1" })).toBe(true);
  expect(wantsIdleSettings({ BUN_JSC_numberOfGCMarkers: "4" })).toBe(false);
  expect(wantsIdleSettings({ BUN_JSC_numberOfGCMarkers: "" })).toBe(false);
});

test("the new environment adds the settings where unset, keeps the operator's, and names the hand-over last", () => {
  const env = execEnvironment({ PATH: "/bin", MIMALLOC_SCAVENGER: "1", [HANDOVER_VARIABLE]: "stale", GONE: undefined }, 9);
  expect(env).toEqual(["PATH=/bin", "MIMALLOC_SCAVENGER=1", "BUN_JSC_numberOfGCMarkers=1", `${HANDOVER_VARIABLE}=9`]);
});

test("the hand-over variable is a descriptor number or nothing", () => {
  expect(handoverFd("12")).toBe(12);
  for (const bad of ["", "-1", "1.5", "12x", "99999999999"]) expect(handoverFd(bad)).toBeNull();
});

test("counters, peer window and peer set survive save, encode, decode, restore", () => {
  const now = 5_000_000;
  const before = busyStats(now);
  const handover: Handover = {
    sockets: [
      { fd: 11, kind: "tcp" },
      { fd: 12, kind: "tls" },
      { fd: 13, kind: "metrics" },
      { fd: 14, kind: "udp-wildcard" },
      { fd: 15, kind: "udp-address", address: "fe80::1%4" },
    ],
    udpScanned: true,
    stats: before.save(now),
    execAt: 1764612345678.25,
    name: "epoll-echo",
  };
  const decoded = decodeHandover(encodeHandover(handover));
  expect(decoded.sockets).toEqual(handover.sockets);
  expect(decoded.udpScanned).toBe(true);
  expect(decoded.execAt).toBe(handover.execAt);
  expect(decoded.name).toBe("epoll-echo");

  // Another process: another clock origin.
  const later = 20;
  const after = new Stats(new UdpPeerTable(60_000, 100));
  after.restore(decoded.stats, later);
  for (const k of ["tcpAccepted", "tcpRejectedBusy", "tcpLines", "tcpBytesIn", "udpDatagrams", "udpPeersCounted"] as const) expect(after[k]).toBe(before[k]);
  expect(after.tcpConnected).toBe(0);
  expect(after.tcpPendingOutput).toBe(0);
  expect(after.udpLoopGuardDrops).toEqual(before.udpLoopGuardDrops);
  expect(after.tlsHandshakes).toEqual(before.tlsHandshakes);
  expect(after.commands).toEqual(before.commands);
  expect(after.shutdownRejected).toEqual(before.shutdownRejected);
  // The window: the same peers, as old as they were (the table's cap of 100 held them).
  expect(after.udpPeers.active(later)).toBe(before.udpPeers.active(now));
  expect(after.udpPeers.active(later + 60_000)).toBe(before.udpPeers.active(now + 60_000));
  // The lifetime set: a peer from before is no new client; a new one is.
  const counted = after.udpPeersCounted;
  after.udpPeerSeen("10.0.0.1", 40001, later);
  expect(after.udpPeersCounted).toBe(counted);
  after.udpPeerSeen("192.0.2.1", 1234, later);
  expect(after.udpPeersCounted).toBe(counted + 1);
  // /stats agrees.
  expect(after.snapshot(later)[0]).toBe(before.tcpAccepted + before.udpPeersCounted + 1);
});

test("bytes that are not a hand-over are refused with a reason, never half-read", () => {
  const good = encodeHandover({ sockets: [{ fd: 3, kind: "tcp" }], udpScanned: false, stats: new Stats(new UdpPeerTable(1000, 10)).save(0), execAt: 1, name: "x" });
  const text = new TextDecoder().decode(good.subarray(0, good.indexOf(0x0a, 22)));
  const bad = (s: string, tail = good.subarray(good.indexOf(0x0a, 22))) => {
    const head = new TextEncoder().encode(s);
    const out = new Uint8Array(head.length + tail.length);
    out.set(head);
    out.set(tail, head.length);
    return out;
  };
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(0), /not a hand-over/],
    [new TextEncoder().encode("EPOLL-ECHO-HANDOVER/2\n{}\n"), /not a hand-over/],
    [good.subarray(0, 40), /truncated|unreadable/],
    [good.subarray(0, good.length - 4), /peer table size/],
    [bad(text.replace('"kind":"tcp"', '"kind":"sctp"')), /bad socket entry/],
    [bad(text.replace('"fd":3', '"fd":-1')), /bad socket entry/],
    [bad(text.replace('"tcpLines":0', '"tcpLines":"0"')), /incomplete counters/],
    [bad(text.replace('"execAt":1', '"execAt":null')), /incomplete description/],
    [bad(text.replace('"name":"x"', '"name":7')), /incomplete description/],
  ];
  for (const [bytes, why] of cases) {
    expect(() => decodeHandover(bytes)).toThrow(HandoverError);
    expect(() => decodeHandover(bytes)).toThrow(why);
  }
});

test("a fingerprint table of the wrong shape is refused", () => {
  const s = new Stats(new UdpPeerTable(1000, 10));
  expect(() => s.udpPeersEver.restore({ size: 1, slots: new Uint32Array(6) })).toThrow(/not a table/);
  expect(() => s.udpPeersEver.restore({ size: 2000, slots: new Uint32Array(2048 * 2) })).toThrow(/not a table/);
});
