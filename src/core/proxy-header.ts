// The PROXY protocol header a proxy or load balancer puts before a client's
// first byte, versions 1 (text) and 2 (binary), as HAProxy's specification
// (doc/proxy-protocol.txt) defines them. Pure: the bytes received so far in,
// a verdict out. The caller feeds it the connection's first bytes until it
// answers something other than "more".
import { addressBytes, formatIPv4, formatIPv6, ipv4Bytes, ipv6Bytes, mapIPv4, unmapIPv4 } from "./ip-literal.ts";

/** Longest v1 header: "PROXY TCP6 " + two full IPv6 + two 5-digit ports + CRLF. */
export const V1_MAX = 107;
/** v2: 16 fixed bytes and up to 65535 bytes of addresses and TLVs. */
export const V2_MAX = 16 + 0xffff;

export const V1_PREFIX = new TextEncoder().encode("PROXY ");
export const V2_SIGNATURE = Uint8Array.of(0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a);

export interface ProxySource {
  /** IPv4 dotted quad or IPv6 text (RFC 5952). */
  address: string;
  port: number;
}

export type ProxyVerdict =
  /** Valid so far; a longer prefix is needed. */
  | { kind: "more" }
  /** Not a valid header: the connection must be closed. */
  | { kind: "error"; reason: string }
  /**
   * A complete header of `length` bytes (the client's data starts after it).
   * `source` is the client it names; null for v2 LOCAL, v1 UNKNOWN and
   * families other than TCP over IPv4/IPv6: keep the socket's real peer.
   */
  | { kind: "header"; length: number; source: ProxySource | null };

const MORE: ProxyVerdict = { kind: "more" };
const fail = (reason: string): ProxyVerdict => ({ kind: "error", reason });

/** Judge the first bytes of a connection that must start with a PROXY header. */
export function parseProxyHeader(buf: Uint8Array): ProxyVerdict {
  if (buf.length === 0) return MORE;
  if (buf[0] === V1_PREFIX[0]) return parseV1(buf);
  if (buf[0] === V2_SIGNATURE[0]) return parseV2(buf);
  return fail("no PROXY header");
}

function prefixMismatch(buf: Uint8Array, prefix: Uint8Array): boolean {
  const n = Math.min(buf.length, prefix.length);
  for (let i = 0; i < n; i++) if (buf[i] !== prefix[i]) return true;
  return false;
}

function parseV1(buf: Uint8Array): ProxyVerdict {
  if (prefixMismatch(buf, V1_PREFIX)) return fail("no PROXY header");
  const limit = Math.min(buf.length, V1_MAX);
  let lf = -1;
  for (let i = V1_PREFIX.length; i < limit; i++) {
    if (buf[i] === 0x0a) {
      lf = i;
      break;
    }
  }
  if (lf < 0) return buf.length >= V1_MAX ? fail("v1 header too long") : MORE;
  if (buf[lf - 1] !== 0x0d) return fail("v1 header malformed");
  const line = String.fromCharCode(...buf.subarray(V1_PREFIX.length, lf - 1));
  const length = lf + 1;
  if (line === "UNKNOWN" || line.startsWith("UNKNOWN ")) return { kind: "header", length, source: null };
  const fields = line.split(" ");
  if (fields.length !== 5) return fail("v1 header malformed");
  const [proto, src, dst, srcPort, dstPort] = fields as [string, string, string, string, string];
  const parse = proto === "TCP4" ? ipv4Bytes : proto === "TCP6" ? ipv6Bytes : null;
  if (parse === null) return fail("v1 header malformed");
  const srcBytes = parse(src);
  const port = v1Port(srcPort);
  if (srcBytes === null || parse(dst) === null || port < 0 || v1Port(dstPort) < 0) return fail("v1 header malformed");
  const address = proto === "TCP4" ? src : formatIPv6(srcBytes);
  return { kind: "header", length, source: { address, port } };
}

/** A decimal port 0-65535 without leading zeros, or -1. */
function v1Port(s: string): number {
  if (!/^(?:0|[1-9][0-9]{0,4})$/.test(s)) return -1;
  const n = Number(s);
  return n <= 0xffff ? n : -1;
}

const CMD_LOCAL = 0x0;
const CMD_PROXY = 0x1;
const TCP_OVER_IPV4 = 0x11;
const TCP_OVER_IPV6 = 0x21;

function parseV2(buf: Uint8Array): ProxyVerdict {
  if (prefixMismatch(buf, V2_SIGNATURE)) return fail("no PROXY header");
  if (buf.length < 16) return MORE;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) return fail("v2 header: unsupported version");
  const cmd = verCmd & 0x0f;
  if (cmd !== CMD_LOCAL && cmd !== CMD_PROXY) return fail("v2 header: unsupported command");
  const famProto = buf[13]!;
  // Families UNSPEC, INET, INET6, UNIX; transports UNSPEC, STREAM, DGRAM. Anything else is invalid.
  if (famProto >> 4 > 3 || (famProto & 0x0f) > 2) return fail("v2 header: unsupported address family");
  const addrLen = (buf[14]! << 8) | buf[15]!;
  const length = 16 + addrLen;
  if (buf.length < length) return MORE;
  if (cmd === CMD_LOCAL) return { kind: "header", length, source: null };
  if (famProto === TCP_OVER_IPV4) {
    if (addrLen < 12) return fail("v2 header: address block too short");
    return { kind: "header", length, source: { address: formatIPv4(buf, 16), port: (buf[24]! << 8) | buf[25]! } };
  }
  if (famProto === TCP_OVER_IPV6) {
    if (addrLen < 36) return fail("v2 header: address block too short");
    return { kind: "header", length, source: { address: formatIPv6(buf, 16), port: (buf[48]! << 8) | buf[49]! } };
  }
  // UNSPEC, UNIX or datagram families: valid, but they name no TCP client; keep the real peer.
  return { kind: "header", length, source: null };
}

/**
 * Header bytes naming `source` as the client of a connection to `destination`
 * (addresses as Bun reports them; IPv4-mapped IPv6 is sent as IPv4). Mixed
 * families are sent as IPv6, the IPv4 side mapped.
 */
export function encodeProxyHeader(version: 1 | 2, source: ProxySource, destination: ProxySource): Uint8Array {
  const src = endpointBytes(source.address);
  const dst = endpointBytes(destination.address);
  const v4 = src.length === 4 && dst.length === 4;
  const as16 = (b: Uint8Array) => (b.length === 16 ? b : mapIPv4(b));
  const [s, d] = v4 ? [src, dst] : [as16(src), as16(dst)];
  if (version === 1) {
    const text = v4
      ? `PROXY TCP4 ${formatIPv4(s)} ${formatIPv4(d)} ${source.port} ${destination.port}\r\n`
      : `PROXY TCP6 ${formatIPv6(s)} ${formatIPv6(d)} ${source.port} ${destination.port}\r\n`;
    return new TextEncoder().encode(text);
  }
  const addrLen = v4 ? 12 : 36;
  const out = new Uint8Array(16 + addrLen);
  out.set(V2_SIGNATURE);
  out[12] = 0x20 | CMD_PROXY;
  out[13] = v4 ? TCP_OVER_IPV4 : TCP_OVER_IPV6;
  out[15] = addrLen;
  out.set(s, 16);
  out.set(d, 16 + s.length);
  const ports = 16 + 2 * s.length;
  out[ports] = source.port >> 8;
  out[ports + 1] = source.port & 0xff;
  out[ports + 2] = destination.port >> 8;
  out[ports + 3] = destination.port & 0xff;
  return out;
}

/** Four bytes for IPv4 (and IPv4-mapped IPv6), sixteen for IPv6. */
function endpointBytes(address: string): Uint8Array {
  const bytes = addressBytes(address);
  if (bytes === null) throw new Error(`not an IP address: ${address}`);
  return unmapIPv4(bytes) ?? bytes;
}
