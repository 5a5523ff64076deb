// IP address literals, checked and converted without node:net (loading it
// costs the daemon's start a few milliseconds, see docs/benchmarks.md).

const DECIMAL_OCTET = /^(?:0|[1-9][0-9]{0,2})$/;
const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;

/** Dotted-quad IPv4: four decimal parts 0-255, no leading zeros. */
export function isIPv4(s: string): boolean {
  return ipv4Bytes(s) !== null;
}

/** IPv6 in any RFC 4291 text form, with an optional embedded IPv4 tail and %zone. */
export function isIPv6(s: string): boolean {
  const zone = s.indexOf("%");
  if (zone >= 0) {
    if (zone === s.length - 1) return false;
    s = s.slice(0, zone);
  }
  return ipv6Bytes(s) !== null;
}

/** The four bytes of a dotted-quad IPv4 literal, or null. */
export function ipv4Bytes(s: string): Uint8Array | null {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    if (!DECIMAL_OCTET.test(p) || Number(p) > 255) return null;
    out[i] = Number(p);
  }
  return out;
}

/** The sixteen bytes of an IPv6 literal (no zone), or null. */
export function ipv6Bytes(s: string): Uint8Array | null {
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (half: string) => (half === "" ? [] : half.split(":"));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  // An IPv4 tail fills the last two groups.
  const last = halves.length === 2 ? tail : head;
  let v4: Uint8Array | null = null;
  if (last.length > 0 && last[last.length - 1]!.includes(".")) {
    v4 = ipv4Bytes(last.pop()!);
    if (v4 === null) return null;
  }
  const words = head.length + tail.length + (v4 ? 2 : 0);
  if (halves.length === 2 ? words > 7 : words !== 8) return null;
  if (![...head, ...tail].every((g) => HEX_GROUP.test(g))) return null;
  const out = new Uint8Array(16);
  const put = (at: number, g: string) => {
    const n = parseInt(g, 16);
    out[at] = n >> 8;
    out[at + 1] = n & 0xff;
  };
  head.forEach((g, i) => put(2 * i, g));
  const tailStart = 16 - (v4 ? 4 : 0) - 2 * tail.length;
  tail.forEach((g, i) => put(tailStart + 2 * i, g));
  if (v4) out.set(v4, 12);
  return out;
}

/** Dotted quad of four bytes at `at`. */
export function formatIPv4(bytes: Uint8Array, at = 0): string {
  return `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`;
}

/**
 * RFC 5952 text of sixteen bytes at `at`: lower-case hex, no leading zeros,
 * the longest run of two or more zero groups (the first if tied) as "::";
 * IPv4-mapped addresses as ::ffff:a.b.c.d.
 */
export function formatIPv6(bytes: Uint8Array, at = 0): string {
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[at + 2 * i]! << 8) | bytes[at + 2 * i + 1]!);
  if (unmapIPv4(bytes.subarray(at, at + 16)) !== null) return `::ffff:${formatIPv4(bytes, at + 12)}`;
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i];
    i = j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(":");
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/** IPv4 bytes as IPv4-mapped IPv6 (::ffff:a.b.c.d). */
export function mapIPv4(v4: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  out[10] = out[11] = 0xff;
  out.set(v4, 12);
  return out;
}

/** The IPv4 bytes inside an IPv4-mapped IPv6 address, or null if it is not one. */
export function unmapIPv4(v6: Uint8Array): Uint8Array | null {
  for (let i = 0; i < 10; i++) if (v6[i] !== 0) return null;
  return v6[10] === 0xff && v6[11] === 0xff ? v6.slice(12, 16) : null;
}

/** An IPv4 or IPv6 literal (a %zone ignored) as sixteen bytes, IPv4 mapped; null if neither. */
export function addressBytes(s: string): Uint8Array | null {
  if (!s.includes(":")) {
    const v4 = ipv4Bytes(s);
    return v4 === null ? null : mapIPv4(v4);
  }
  const zone = s.indexOf("%");
  return ipv6Bytes(zone >= 0 ? s.slice(0, zone) : s);
}
