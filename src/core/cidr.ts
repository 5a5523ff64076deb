// Address prefixes (CIDR) and matching a peer against them. Every address is
// held as sixteen bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d) with its
// prefix length raised by 96, so a dual-stack socket's "::ffff:10.0.0.1" peer
// matches 10.0.0.0/8 exactly as a plain "10.0.0.1" peer does.
import { addressBytes, ipv4Bytes, ipv6Bytes, mapIPv4 } from "./ip-literal.ts";

export interface Cidr {
  /** Sixteen bytes, the bits past the prefix cleared. */
  readonly network: Uint8Array;
  /** 0-128, over the sixteen bytes. */
  readonly bits: number;
}

/** "10.0.0.0/8", "2001:db8::/32", or a bare address (a single host); null if malformed. */
export function parseCidr(s: string): Cidr | null {
  const slash = s.indexOf("/");
  const addr = slash < 0 ? s : s.slice(0, slash);
  const v4 = !addr.includes(":");
  const bytes = v4 ? ipv4Bytes(addr) : ipv6Bytes(addr);
  if (bytes === null) return null;
  const max = v4 ? 32 : 128;
  let bits = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^(?:0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > max) return null;
    bits = Number(p);
  }
  const network = v4 ? mapIPv4(bytes) : bytes;
  if (v4) bits += 96;
  for (let i = 0; i < 16; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    network[i]! &= (0xff00 >> keep) & 0xff;
  }
  return { network, bits };
}

/** "CIDR[,CIDR...]" as a list; throws an Error naming the bad element. */
export function parseCidrList(s: string): Cidr[] {
  return s.split(",").map((part) => {
    const cidr = parseCidr(part.trim());
    if (cidr === null) throw new Error(`not an address prefix: "${part}"`);
    return cidr;
  });
}

export function cidrContains(cidr: Cidr, address: Uint8Array): boolean {
  const { network, bits } = cidr;
  const whole = bits >> 3;
  for (let i = 0; i < whole; i++) if (address[i] !== network[i]) return false;
  const rest = bits & 7;
  return rest === 0 || (address[whole]! & ((0xff00 >> rest) & 0xff)) === network[whole];
}

/** Whether a peer address as Bun reports it is inside any of the prefixes. */
export function matchesAny(cidrs: readonly Cidr[], address: string): boolean {
  const bytes = addressBytes(address);
  return bytes !== null && cidrs.some((c) => cidrContains(c, bytes));
}
