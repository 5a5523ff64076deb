// IP address literals, checked without node:net (loading it costs the
// daemon's start a few milliseconds, see docs/benchmarks.md).

/** Dotted-quad IPv4: four decimal parts 0-255, no leading zeros. */
export function isIPv4(s: string): boolean {
  const parts = s.split(".");
  return parts.length === 4 && parts.every((p) => /^(?:0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

/** IPv6 in any RFC 4291 text form, with an optional embedded IPv4 tail and %zone. */
export function isIPv6(s: string): boolean {
  const zone = s.indexOf("%");
  if (zone >= 0) {
    if (zone === s.length - 1) return false;
    s = s.slice(0, zone);
  }
  const halves = s.split("::");
  if (halves.length > 2) return false;
  const groups = (half: string) => (half === "" ? [] : half.split(":"));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const all = [...head, ...tail];
  let count = all.length;
  const last = all[all.length - 1];
  if (last !== undefined && last.includes(".")) {
    if (!isIPv4(last)) return false;
    all.pop();
    count++; // an IPv4 tail fills two groups
  }
  if (!all.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return false;
  return halves.length === 2 ? count <= 7 : count === 8;
}
