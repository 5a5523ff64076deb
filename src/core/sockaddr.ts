// Socket addresses as the kernel lays them out (Linux: sockaddr_in, 16 bytes;
// sockaddr_in6, 28 bytes), for the sockets made through the ffi layer, and the
// address text people read. Pure: bytes in, bytes or text out.
import { formatIPv4, formatIPv6, ipv4Bytes, ipv6Bytes } from "./ip-literal.ts";

export const AF_INET = 2;
export const AF_INET6 = 10;
const SOCKADDR_IN = 16;
const SOCKADDR_IN6 = 28;

/** One local address: its family, its text (IPv6 with %scope when it has one) and its sockaddr bytes. */
export interface SockAddr {
  readonly family: typeof AF_INET | typeof AF_INET6;
  /** "10.0.0.1", "2001:db8::1", "fe80::1%2": what logs show and what tells two addresses apart. */
  readonly text: string;
  /** sockaddr_in or sockaddr_in6, port 0. */
  readonly bytes: Uint8Array;
}

/**
 * Decode a sockaddr_in or sockaddr_in6 (as getifaddrs(3) gives them); null
 * for any other family. The port is dropped: these are addresses to bind.
 */
export function decodeSockAddr(raw: Uint8Array): SockAddr | null {
  const family = raw[0]! | (raw[1]! << 8); // sa_family_t, host order (little-endian)
  if (family === AF_INET && raw.length >= SOCKADDR_IN) {
    return { family, text: formatIPv4(raw, 4), bytes: withPort(raw.subarray(0, SOCKADDR_IN), 0) };
  }
  if (family === AF_INET6 && raw.length >= SOCKADDR_IN6) {
    const scope = new DataView(raw.buffer, raw.byteOffset).getUint32(24, true);
    const text = formatIPv6(raw, 8) + (scope === 0 ? "" : `%${scope}`);
    return { family, text, bytes: withPort(raw.subarray(0, SOCKADDR_IN6), 0) };
  }
  return null;
}

/**
 * The sockaddr for an address literal: dotted-quad IPv4, or IPv6 with an
 * optional numeric %scope (resolve interface names first). Null if malformed.
 */
export function encodeSockAddr(literal: string): SockAddr | null {
  if (!literal.includes(":")) {
    const v4 = ipv4Bytes(literal);
    if (v4 === null) return null;
    const bytes = new Uint8Array(SOCKADDR_IN);
    bytes[0] = AF_INET;
    bytes.set(v4, 4);
    return { family: AF_INET, text: literal, bytes };
  }
  const zone = literal.indexOf("%");
  const v6 = ipv6Bytes(zone < 0 ? literal : literal.slice(0, zone));
  if (v6 === null) return null;
  let scope = 0;
  if (zone >= 0) {
    const id = literal.slice(zone + 1);
    if (!/^[0-9]{1,10}$/.test(id) || Number(id) > 0xffffffff) return null;
    scope = Number(id);
  }
  const bytes = new Uint8Array(SOCKADDR_IN6);
  bytes[0] = AF_INET6;
  bytes.set(v6, 8);
  new DataView(bytes.buffer).setUint32(24, scope, true);
  return { family: AF_INET6, text: formatIPv6(v6) + (scope === 0 ? "" : `%${scope}`), bytes };
}

/** A copy of a sockaddr with its port (network byte order, same offset for both families) set. */
export function withPort(sockaddr: Uint8Array, port: number): Uint8Array {
  const out = sockaddr.slice();
  out[2] = port >> 8;
  out[3] = port & 0xff;
  return out;
}

/** The port of a sockaddr_in or sockaddr_in6. */
export function portOf(sockaddr: Uint8Array): number {
  return (sockaddr[2]! << 8) | sockaddr[3]!;
}

/** A wildcard (any-address) literal: 0.0.0.0 or :: in any spelling. */
export function isWildcard(literal: string): boolean {
  const a = encodeSockAddr(literal);
  if (a === null) return false;
  const start = a.family === AF_INET ? 4 : 8;
  return a.bytes.subarray(start, start + (a.family === AF_INET ? 4 : 16)).every((b) => b === 0);
}

/** The wildcard of a family (0.0.0.0 or ::), port 0, built without parsing text: it is on the startup path. */
export function wildcardSockAddr(family: typeof AF_INET | typeof AF_INET6): SockAddr {
  const bytes = new Uint8Array(family === AF_INET ? SOCKADDR_IN : SOCKADDR_IN6);
  bytes[0] = family;
  return { family, text: family === AF_INET ? "0.0.0.0" : "::", bytes };
}
