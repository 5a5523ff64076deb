import { expect, test } from "bun:test";
import { matchesAny, parseCidr, parseCidrList } from "../../src/core/cidr.ts";

const list = (s: string) => parseCidrList(s);

test("IPv4 prefixes match plain and IPv4-mapped peers alike", () => {
  const cidrs = list("10.0.0.0/8,192.168.1.0/24");
  for (const peer of ["10.0.0.1", "10.255.255.255", "::ffff:10.1.2.3", "192.168.1.200", "::ffff:192.168.1.0"]) {
    expect([peer, matchesAny(cidrs, peer)]).toEqual([peer, true]);
  }
  for (const peer of ["11.0.0.1", "9.255.255.255", "192.168.2.1", "::ffff:11.0.0.1", "::1", "a00:1::", "::10.0.0.1"]) {
    expect([peer, matchesAny(cidrs, peer)]).toEqual([peer, false]);
  }
});

test("IPv6 prefixes, odd prefix lengths, bare hosts and /0", () => {
  expect(matchesAny(list("2001:db8::/32"), "2001:db8:ffff::1")).toBe(true);
  expect(matchesAny(list("2001:db8::/32"), "2001:db9::1")).toBe(false);
  expect(matchesAny(list("fe80::/10"), "febf::1")).toBe(true);
  expect(matchesAny(list("fe80::/10"), "fec0::1")).toBe(false);
  expect(matchesAny(list("fe80::/10"), "fe80::1%eth0")).toBe(true);
  expect(matchesAny(list("10.0.0.0/9"), "10.127.0.1")).toBe(true);
  expect(matchesAny(list("10.0.0.0/9"), "10.128.0.1")).toBe(false);
  expect(matchesAny(list("127.0.0.1"), "127.0.0.1")).toBe(true);
  expect(matchesAny(list("127.0.0.1"), "127.0.0.2")).toBe(false);
  expect(matchesAny(list("::1"), "::1")).toBe(true);
  expect(matchesAny(list("0.0.0.0/0"), "203.0.113.1")).toBe(true);
  expect(matchesAny(list("0.0.0.0/0"), "::1")).toBe(false);
  expect(matchesAny(list("::/0"), "::ffff:1.2.3.4")).toBe(true);
  expect(matchesAny(list("::/0"), "not-an-address")).toBe(false);
});

test("host bits past the prefix are ignored; bad prefixes are refused", () => {
  expect(parseCidr("10.1.2.3/8")).toEqual(parseCidr("10.0.0.0/8"));
  expect(parseCidr("2001:db8::1/32")).toEqual(parseCidr("2001:db8::/32"));
  for (const bad of ["", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/08", "10.0.0/8", "host/8", "::1%lo/128", "1.2.3.4/-1"]) {
    expect([bad, parseCidr(bad)]).toEqual([bad, null]);
  }
  expect(() => list("10.0.0.0/8,nope")).toThrow('not an address prefix: "nope"');
  expect(() => list("10.0.0.0/8,")).toThrow('not an address prefix: ""');
});
