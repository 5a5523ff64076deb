import { describe, expect, test } from "bun:test";
import { Stats, UdpPeerTable } from "../../src/core/stats.ts";

describe("UdpPeerTable", () => {
  test("a peer is new once, by address and port", () => {
    const t = new UdpPeerTable(60_000, 100);
    expect(t.touch("::1", 5000, 0)).toBe("new");
    expect(t.touch("::1", 5000, 10)).toBe("known");
    expect(t.touch("::1", 5001, 10)).toBe("new");
    expect(t.touch("::ffff:127.0.0.1", 5000, 10)).toBe("new");
    expect(t.active(20)).toBe(3);
  });

  test("peers age out after the window and count again when they return", () => {
    const t = new UdpPeerTable(1000, 100);
    t.touch("a", 1, 0);
    t.touch("b", 1, 500);
    expect(t.active(999)).toBe(2);
    expect(t.active(1000)).toBe(1); // "a" last seen exactly one window ago
    t.touch("b", 1, 1400); // refreshed
    expect(t.active(2000)).toBe(1);
    expect(t.active(2400)).toBe(0);
    expect(t.touch("a", 1, 2500)).toBe("new");
  });

  test("past the cap new peers are answered but not recorded", () => {
    const t = new UdpPeerTable(60_000, 2);
    expect(t.touch("a", 1, 0)).toBe("new");
    expect(t.touch("b", 1, 0)).toBe("new");
    expect(t.touch("c", 1, 0)).toBe("unrecorded");
    expect(t.active(1)).toBe(2);
    expect(t.touch("a", 1, 1)).toBe("known"); // known peers still refresh
    expect(t.active(2)).toBe(2);
  });
});

describe("Stats", () => {
  test("snapshot: TCP accepted plus UDP peers counted, connected, active", () => {
    const s = new Stats(new UdpPeerTable(1000, 10));
    s.tcpAccepted = 3;
    s.tcpConnected = 1;
    s.udpPeersCounted = 2;
    s.udpPeers.touch("x", 9, 0);
    expect(s.snapshot(10)).toEqual([5, 1, 1]);
    expect(s.snapshot(5000)).toEqual([5, 1, 0]);
  });
});
