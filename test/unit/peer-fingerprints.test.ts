import { describe, expect, test } from "bun:test";
import { FINGERPRINT_CAP, PeerFingerprintSet } from "../../src/core/peer-fingerprints.ts";
import { Stats, UdpPeerTable } from "../../src/core/stats.ts";

describe("PeerFingerprintSet", () => {
  test("a peer is added once, by address and port", () => {
    const s = new PeerFingerprintSet();
    expect(s.add("::1", 5000)).toBe("added");
    expect(s.add("::1", 5000)).toBe("present");
    expect(s.add("::1", 5001)).toBe("added");
    expect(s.add("::ffff:127.0.0.1", 5000)).toBe("added");
    expect(s.add("", 0)).toBe("added");
    expect(s.add("", 0)).toBe("present");
    expect(s.size).toBe(4);
  });

  test("exact for a million distinct peers, in at most 16 MiB", () => {
    expect(FINGERPRINT_CAP).toBeGreaterThanOrEqual(1_000_000);
    const s = new PeerFingerprintSet();
    let added = 0;
    // Addresses as Bun reports them: IPv4, v4-mapped and IPv6, many ports each.
    for (let i = 0; i < 1_000_000; i++) {
      const host = i % 3 === 0 ? `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}` : i % 3 === 1 ? `::ffff:192.168.${(i >>> 8) & 255}.${i & 255}` : `fd00::${(i >>> 4).toString(16)}`;
      if (s.add(host, 1024 + (i % 61_000)) === "added") added++;
    }
    expect(added).toBe(1_000_000);
    expect(s.size).toBe(1_000_000);
    expect(s.bytes).toBeLessThanOrEqual(16 * 1024 * 1024);
    // All of them are found again.
    let present = 0;
    for (let i = 0; i < 1_000_000; i += 7) {
      const host = i % 3 === 0 ? `10.${(i >>> 16) & 255}.${(i >>> 8) & 255}.${i & 255}` : i % 3 === 1 ? `::ffff:192.168.${(i >>> 8) & 255}.${i & 255}` : `fd00::${(i >>> 4).toString(16)}`;
      if (s.add(host, 1024 + (i % 61_000)) === "present") present++;
    }
    expect(present).toBe(Math.ceil(1_000_000 / 7));
  });

  test("past the cap a new peer is reported full, a known one still present", () => {
    const s = new PeerFingerprintSet(3);
    for (const p of [1, 2, 3]) expect(s.add("a", p)).toBe("added");
    expect(s.add("a", 4)).toBe("full");
    expect(s.add("a", 2)).toBe("present");
    expect(s.size).toBe(3);
  });

  test("grows from a small table, keeping what it held", () => {
    const s = new PeerFingerprintSet();
    const small = s.bytes;
    for (let p = 0; p < 5000; p++) s.add("198.18.0.1", p);
    expect(s.bytes).toBeGreaterThan(small);
    for (let p = 0; p < 5000; p++) expect(s.add("198.18.0.1", p)).toBe("present");
  });
});

describe("Stats.udpPeerSeen: total_clients over the process lifetime", () => {
  test("a peer that ages out of the window and comes back is not counted again", () => {
    const s = new Stats(new UdpPeerTable(1000, 10));
    s.udpPeerSeen("10.0.0.1", 4000, 0);
    s.udpPeerSeen("10.0.0.1", 4000, 500);
    s.udpPeerSeen("10.0.0.2", 4000, 500);
    expect(s.snapshot(600)).toEqual([2, 0, 2]);
    expect(s.snapshot(5000)).toEqual([2, 0, 0]);
    s.udpPeerSeen("10.0.0.1", 4000, 6000);
    expect(s.snapshot(6000)).toEqual([2, 0, 1]);
  });

  test("peers past the window table's cap still count once", () => {
    const s = new Stats(new UdpPeerTable(1000, 2));
    for (const port of [1, 2, 3, 4]) s.udpPeerSeen("10.0.0.1", port, 0);
    s.udpPeerSeen("10.0.0.1", 4, 1);
    expect(s.snapshot(10)).toEqual([4, 0, 2]);
  });

  test("past the fingerprint cap a new peer counts as it enters the window table, as before", () => {
    const s = new Stats(new UdpPeerTable(1000, 10), new PeerFingerprintSet(1));
    s.udpPeerSeen("a", 1, 0);
    s.udpPeerSeen("b", 1, 0); // set full: counted on entering the window table
    s.udpPeerSeen("b", 1, 10); // known in the window: not again
    expect(s.snapshot(10)[0]).toBe(2);
    expect(s.snapshot(4000)[2]).toBe(0); // the once-a-second sweep empties the window
    s.udpPeerSeen("b", 1, 5000); // aged out and back: counted again past the cap
    s.udpPeerSeen("a", 1, 5000); // in the set: never again
    expect(s.snapshot(5000)[0]).toBe(3);
  });
});
