import { expect, test } from "bun:test";
import { formatPeer, isLoopback } from "../../src/core/peer.ts";

test("loopback: 127.0.0.0/8, ::1 and v4-mapped loopback", () => {
  for (const a of ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "::ffff:127.255.0.9"]) expect(isLoopback(a)).toBe(true);
  for (const a of ["128.0.0.1", "10.0.0.1", "::2", "::ffff:10.0.0.1", "fe80::1", "1127.0.0.1", "::ffff:1.2.3.4", "127.0.0"]) {
    expect(isLoopback(a)).toBe(false);
  }
});

test("peers format as host:port, IPv6 in brackets, v4-mapped shown as IPv4", () => {
  expect(formatPeer("::ffff:127.0.0.1", 5)).toBe("127.0.0.1:5");
  expect(formatPeer("::1", 5)).toBe("[::1]:5");
  expect(formatPeer("10.1.1.1", 80)).toBe("10.1.1.1:80");
});
