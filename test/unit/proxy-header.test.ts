import { describe, expect, test } from "bun:test";
import { encodeProxyHeader, parseProxyHeader, V1_MAX, V2_SIGNATURE, type ProxyVerdict } from "../../src/core/proxy-header.ts";

const text = (s: string) => new TextEncoder().encode(s);
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};
/** A v2 header from its 13th byte on: ver/cmd, fam/proto, then the address block. */
const v2 = (verCmd: number, famProto: number, block: number[]) =>
  cat(V2_SIGNATURE, Uint8Array.of(verCmd, famProto, block.length >> 8, block.length & 0xff, ...block));

const FULL_V6 = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
/** The specification's worst case, exactly 107 bytes. */
const V1_MAX_HEADER = text(`PROXY UNKNOWN ${FULL_V6} ${FULL_V6} 65535 65535\r\n`);

/** Valid headers and what each must yield. */
const VALID: [string, Uint8Array, ProxyVerdict][] = [
  ["v1 TCP4", text("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n"), { kind: "header", length: 45, source: { address: "192.0.2.1", port: 56324 } }],
  [
    "v1 TCP6, normalised",
    text("PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 1 65535\r\n"),
    { kind: "header", length: 45, source: { address: "2001:db8::1", port: 1 } },
  ],
  ["v1 TCP6 mapped", text("PROXY TCP6 ::ffff:10.1.2.3 ::1 0 7\r\n"), { kind: "header", length: 36, source: { address: "::ffff:10.1.2.3", port: 0 } }],
  ["v1 UNKNOWN", text("PROXY UNKNOWN\r\n"), { kind: "header", length: 15, source: null }],
  ["v1 UNKNOWN with addresses", text("PROXY UNKNOWN ffff:: 1.2.3.4 1 2\r\n"), { kind: "header", length: 34, source: null }],
  ["v1 longest", V1_MAX_HEADER, { kind: "header", length: V1_MAX, source: null }],
  ["v1 longest TCP6", text(`PROXY TCP6 ${FULL_V6} ${FULL_V6} 65535 65535\r\n`), { kind: "header", length: 104, source: { address: FULL_V6, port: 65535 } }],
  [
    "v2 PROXY TCP4",
    v2(0x21, 0x11, [203, 0, 113, 9, 10, 0, 0, 1, 0xc3, 0x50, 0x30, 0x39]),
    { kind: "header", length: 28, source: { address: "203.0.113.9", port: 50000 } },
  ],
  [
    "v2 PROXY TCP6 with a TLV",
    v2(0x21, 0x21, [0x20, 0x01, 0x0d, 0xb8, ...Array(11).fill(0), 5, ...Array(15).fill(0), 1, 0x00, 0x50, 0x01, 0xbb, 0x04, 0x00, 0x01, 0x00]),
    { kind: "header", length: 56, source: { address: "2001:db8::5", port: 80 } },
  ],
  ["v2 LOCAL", v2(0x20, 0x00, []), { kind: "header", length: 16, source: null }],
  ["v2 LOCAL with addresses", v2(0x20, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]), { kind: "header", length: 28, source: null }],
  ["v2 PROXY UNSPEC keeps the peer", v2(0x21, 0x00, []), { kind: "header", length: 16, source: null }],
  ["v2 PROXY UDP4 keeps the peer", v2(0x21, 0x12, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]), { kind: "header", length: 28, source: null }],
  ["v2 PROXY UNIX keeps the peer", v2(0x21, 0x31, Array(216).fill(0)), { kind: "header", length: 232, source: null }],
];

describe("parseProxyHeader", () => {
  for (const [name, header, verdict] of VALID) {
    test(`${name}: more at every split point, the header when whole, the data after it untouched`, () => {
      for (let k = 0; k < header.length; k++) expect([k, parseProxyHeader(header.subarray(0, k))]).toEqual([k, { kind: "more" }]);
      expect(parseProxyHeader(header)).toEqual(verdict);
      expect(parseProxyHeader(cat(header, text("hello\nPROXY UNKNOWN\r\n")))).toEqual(verdict);
    });
  }

  const INVALID: [string, Uint8Array, string][] = [
    ["a plain line", text("hello\n"), "no PROXY header"],
    ["a command", text("/stats\n"), "no PROXY header"],
    ["a lower-case v1", text("proxy TCP4"), "no PROXY header"],
    ["PROXY without its space", text("PROXYTCP4"), "no PROXY header"],
    ["v1 without CRLF in 107 bytes", text("PROXY " + "x".repeat(V1_MAX - 6)), "v1 header too long"],
    ["v1 ending in a bare LF", text("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"), "v1 header malformed"],
    ["v1 unknown protocol", text("PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n"), "v1 header malformed"],
    ["v1 TCP4 with IPv6", text("PROXY TCP4 ::1 ::1 1 2\r\n"), "v1 header malformed"],
    ["v1 TCP6 with IPv4", text("PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n"), "v1 header malformed"],
    ["v1 bad address", text("PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n"), "v1 header malformed"],
    ["v1 bad destination", text("PROXY TCP4 1.2.3.4 5.6.7 1 2\r\n"), "v1 header malformed"],
    ["v1 port too big", text("PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n"), "v1 header malformed"],
    ["v1 port with a leading zero", text("PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"), "v1 header malformed"],
    ["v1 missing field", text("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n"), "v1 header malformed"],
    ["v1 double space", text("PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n"), "v1 header malformed"],
    ["v1 empty", text("PROXY \r\n"), "v1 header malformed"],
    ["v2 signature broken", cat(V2_SIGNATURE.subarray(0, 11), text("X")), "no PROXY header"],
    ["v2 version 1", v2(0x11, 0x11, []), "v2 header: unsupported version"],
    ["v2 version 3", v2(0x31, 0x11, []), "v2 header: unsupported version"],
    ["v2 command 2", v2(0x22, 0x11, []), "v2 header: unsupported command"],
    ["v2 family 4", v2(0x21, 0x41, []), "v2 header: unsupported address family"],
    ["v2 transport 3", v2(0x21, 0x13, []), "v2 header: unsupported address family"],
    ["v2 TCP4 short block", v2(0x21, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0]), "v2 header: address block too short"],
    ["v2 TCP6 short block", v2(0x21, 0x21, Array(35).fill(0)), "v2 header: address block too short"],
  ];
  for (const [name, bytes, reason] of INVALID) {
    test(`${name}: an error, and never one before the bytes that make it one`, () => {
      expect(parseProxyHeader(bytes)).toEqual({ kind: "error", reason });
      expect(parseProxyHeader(cat(bytes, text("more\r\n")))).toEqual({ kind: "error", reason });
    });
  }

  test("errors come as soon as the prefix is impossible, not at the size limit", () => {
    expect(parseProxyHeader(text("P"))).toEqual({ kind: "more" });
    expect(parseProxyHeader(text("PROXX"))).toEqual({ kind: "error", reason: "no PROXY header" });
    expect(parseProxyHeader(V2_SIGNATURE.subarray(0, 5))).toEqual({ kind: "more" });
    expect(parseProxyHeader(Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x01))).toEqual({ kind: "error", reason: "no PROXY header" });
    expect(parseProxyHeader(text("PROXY " + "x".repeat(V1_MAX - 7)))).toEqual({ kind: "more" });
  });

  test("v2 carries up to 65535 bytes of addresses and TLVs", () => {
    const big = v2(0x21, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 9, 0, 2, ...Array(0xffff - 12).fill(0)]);
    expect(parseProxyHeader(big.subarray(0, big.length - 1))).toEqual({ kind: "more" });
    expect(parseProxyHeader(big)).toEqual({ kind: "header", length: 16 + 0xffff, source: { address: "1.2.3.4", port: 9 } });
  });
});

describe("encodeProxyHeader", () => {
  // source, destination, the source address the header carries (mixed families go as IPv6)
  const cases: [string, string, string][] = [
    ["127.0.0.1", "127.0.0.2", "127.0.0.1"],
    ["::ffff:127.0.0.1", "::ffff:127.0.0.1", "127.0.0.1"],
    ["2001:db8::1", "::1", "2001:db8::1"],
    ["::ffff:10.0.0.1", "fe80::1", "::ffff:10.0.0.1"],
    ["10.0.0.1", "::1", "::ffff:10.0.0.1"],
  ];
  for (const [sa, da, address] of cases) {
    for (const version of [1, 2] as const) {
      test(`v${version} ${sa} -> ${da} parses back to its source`, () => {
        const bytes = encodeProxyHeader(version, { address: sa, port: 40000 }, { address: da, port: 12345 });
        expect(parseProxyHeader(bytes)).toEqual({ kind: "header", length: bytes.length, source: { address, port: 40000 } });
      });
    }
  }

  test("exact bytes", () => {
    const v1 = encodeProxyHeader(1, { address: "::ffff:192.0.2.1", port: 5000 }, { address: "192.0.2.2", port: 80 });
    expect(new TextDecoder().decode(v1)).toBe("PROXY TCP4 192.0.2.1 192.0.2.2 5000 80\r\n");
    const v2bytes = encodeProxyHeader(2, { address: "192.0.2.1", port: 5000 }, { address: "192.0.2.2", port: 80 });
    expect([...v2bytes]).toEqual([...V2_SIGNATURE, 0x21, 0x11, 0, 12, 192, 0, 2, 1, 192, 0, 2, 2, 0x13, 0x88, 0, 80]);
  });
});
