import { expect, test } from "bun:test";
import { isIPv4 as nodeV4, isIPv6 as nodeV6 } from "node:net";
import { isIPv4, isIPv6 } from "../../src/core/ip-literal.ts";

const samples = [
  "127.0.0.1", "0.0.0.0", "255.255.255.255", "256.1.1.1", "1.2.3", "01.2.3.4", "1.2.3.4.5", "a.b.c.d", "",
  "::", "::1", "1::", "fe80::1%eth0", "fe80::1%", "2001:db8::8a2e:370:7334", "2001:0db8:0000:0000:0000:ff00:0042:8329",
  "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "1::2::3", ":::", "::ffff:127.0.0.1", "::ffff:1.2.3.256",
  "1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:7:1.2.3.4", "12345::", "g::1", "::1:", ":1::", "localhost", "[::1]",
];

test("agrees with node:net on every sample", () => {
  for (const s of samples) {
    expect([s, isIPv4(s)]).toEqual([s, nodeV4(s)]);
    expect([s, isIPv6(s)]).toEqual([s, nodeV6(s)]);
  }
});
