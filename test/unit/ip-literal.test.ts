import { expect, test } from "bun:test";
import { isIPv4 as nodeV4, isIPv6 as nodeV6 } from "node:net";
import { addressBytes, formatIPv6, ipv6Bytes, isIPv4, isIPv6, mapIPv4, unmapIPv4 } from "../../src/core/ip-literal.ts";

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

test("ipv6Bytes and formatIPv6 agree with the URL parser's RFC 5952 form", () => {
  for (const s of samples.filter((x) => isIPv6(x) && !x.includes("%"))) {
    const bytes = ipv6Bytes(s)!;
    expect(bytes).not.toBeNull();
    const ours = formatIPv6(bytes);
    // The URL parser writes IPv4-mapped addresses in hex (::ffff:7f00:1); formatIPv6 keeps the dotted tail.
    const theirs = new URL(`http://[${ours}]/`).hostname.slice(1, -1);
    if (!ours.startsWith("::ffff:")) expect([s, ours]).toEqual([s, theirs]);
    expect(ipv6Bytes(ours)).toEqual(bytes);
  }
  for (const s of samples.filter((x) => !isIPv6(x))) expect([s, ipv6Bytes(s)]).toEqual([s, null]);
});

test("formatIPv6 compresses the longest zero run, the first of equals, never a single group", () => {
  const f = (s: string) => formatIPv6(ipv6Bytes(s)!);
  expect(f("1:0:0:2:0:0:0:3")).toBe("1:0:0:2::3");
  expect(f("1:0:0:2:0:0:3:4")).toBe("1::2:0:0:3:4");
  expect(f("1:0:2:3:4:5:6:7")).toBe("1:0:2:3:4:5:6:7");
  expect(f("::")).toBe("::");
  expect(f("::ffff:1.2.3.4")).toBe("::ffff:1.2.3.4");
  expect(f("0:0:0:0:0:ffff:102:304")).toBe("::ffff:1.2.3.4");
  expect(f("::1.2.3.4")).toBe("::102:304");
});

test("addressBytes maps IPv4, ignores a zone; mapIPv4/unmapIPv4 invert each other", () => {
  expect(addressBytes("1.2.3.4")).toEqual(Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255, 1, 2, 3, 4));
  expect(addressBytes("::ffff:1.2.3.4")).toEqual(addressBytes("1.2.3.4"));
  expect(addressBytes("fe80::1%eth0")).toEqual(ipv6Bytes("fe80::1"));
  expect(addressBytes("localhost")).toBeNull();
  expect(unmapIPv4(mapIPv4(Uint8Array.of(9, 8, 7, 6)))).toEqual(Uint8Array.of(9, 8, 7, 6));
  expect(unmapIPv4(ipv6Bytes("::1")!)).toBeNull();
});
