import { expect, test } from "bun:test";
import { AF_INET, AF_INET6, decodeSockAddr, encodeSockAddr, isWildcard, portOf, wildcardSockAddr, withPort } from "../../src/core/sockaddr.ts";
import { udpPlan } from "../../src/server/udp-sockets.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

test("sockaddr_in: family (host order), port (network order), address, zero padding", () => {
  const a = encodeSockAddr("10.77.0.2")!;
  expect(a.family).toBe(AF_INET);
  expect(a.text).toBe("10.77.0.2");
  expect(hex(a.bytes)).toBe("0200" + "0000" + "0a4d0002" + "00".repeat(8));
  expect(hex(withPort(a.bytes, 12345))).toBe("0200" + "3039" + "0a4d0002" + "00".repeat(8));
  expect(portOf(withPort(a.bytes, 65535))).toBe(65535);
  expect(hex(a.bytes).slice(4, 8)).toBe("0000"); // withPort copies
});

test("sockaddr_in6: flowinfo 0, address, scope id (host order); text in RFC 5952 form", () => {
  const a = encodeSockAddr("FE80:0:0::1%4")!;
  expect(a.family).toBe(AF_INET6);
  expect(a.text).toBe("fe80::1%4");
  expect(a.bytes.length).toBe(28);
  expect(hex(a.bytes)).toBe("0a00" + "0000" + "00000000" + "fe800000000000000000000000000001" + "04000000");
  expect(encodeSockAddr("::1")!.text).toBe("::1");
});

test("decoding what getifaddrs hands over gives the same address back, port dropped", () => {
  for (const literal of ["127.0.0.1", "192.0.2.200", "::1", "2001:db8::7", "fe80::fc:ff:fe00:1%4"]) {
    const a = encodeSockAddr(literal)!;
    const d = decodeSockAddr(withPort(a.bytes, 999))!;
    expect(d).toEqual(a);
  }
  const unix = new Uint8Array(110);
  unix[0] = 1;
  expect(decodeSockAddr(unix)).toBeNull();
  expect(decodeSockAddr(new Uint8Array([10, 0, 0, 0]))).toBeNull(); // too short for its family
});

test("the wildcards built without parsing are those of the literals", () => {
  expect(wildcardSockAddr(AF_INET)).toEqual(encodeSockAddr("0.0.0.0")!);
  expect(wildcardSockAddr(AF_INET6)).toEqual(encodeSockAddr("::")!);
});

test("malformed literals and scopes are refused", () => {
  for (const bad of ["", "1.2.3", "1.2.3.4.5", "::g", "fe80::1%", "fe80::1%eth0", "fe80::1%99999999999"]) expect(encodeSockAddr(bad)).toBeNull();
});

test("wildcards, and the UDP plan --listen makes", () => {
  for (const w of ["0.0.0.0", "::", "0:0::0"]) expect(isWildcard(w)).toBe(true);
  for (const n of ["127.0.0.1", "::1", "nonsense"]) expect(isWildcard(n)).toBe(false);
  expect(udpPlan([])).toEqual({ kind: "scan", ipv4Only: false });
  expect(udpPlan(["0.0.0.0"])).toEqual({ kind: "scan", ipv4Only: true });
  expect(udpPlan(["::1", "10.0.0.1"])).toEqual({ kind: "fixed", addresses: ["::1", "10.0.0.1"] });
});
