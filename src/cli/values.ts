// Validators shared by both commands' flag tables: whole numbers in a range
// and HOST[:PORT] / [v6]:PORT. Each throws a one-line UsageError naming the flag.
import { UsageError } from "./argv.ts";
import { isIPv4, isIPv6 } from "../core/ip-literal.ts";
import type { HostPort } from "../core/config.ts";

export interface HostPortRules {
  /** Port used when none is given; null makes the port required. */
  defaultPort: number | null;
  /** Lowest port accepted (0 lets the kernel pick, for a listener). */
  minPort: number;
}

/**
 * "host:port", "host", "[v6]:port", "[v6]" or a bare IPv6 literal (which can
 * carry no port). The host is a name or an address literal; IPv6 comes back
 * without brackets. Throws UsageError with a one-line message naming `flag`.
 */
export function parseHostPort(flag: string, raw: string, rules: HostPortRules): HostPort {
  const shape = rules.defaultPort === null ? "ADDR:PORT" : "HOST[:PORT]";
  const bad = (why: string) => new UsageError(`${flag}: ${why}, got ${JSON.stringify(raw)}`);
  let host: string;
  let portText: string | undefined;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(raw);
  if (bracketed) {
    host = bracketed[1]!;
    portText = bracketed[2];
    if (!isIPv6(host)) throw bad("expected an IPv6 address inside the brackets");
  } else if (isIPv6(raw)) {
    host = raw;
    if (rules.defaultPort === null) throw bad(`expected ${shape} (IPv6 in brackets: [${raw}]:PORT)`);
  } else {
    const colon = raw.lastIndexOf(":");
    host = colon < 0 ? raw : raw.slice(0, colon);
    portText = colon < 0 ? undefined : raw.slice(colon + 1);
    if (host.includes(":")) throw bad(`expected ${shape} (IPv6 in brackets, e.g. [::1]:12345)`);
    if (!isIPv4(host) && !/^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/.test(host)) {
      throw bad(`expected ${shape} with a host name or address`);
    }
  }
  if (portText === undefined) {
    if (rules.defaultPort === null) throw bad(`expected ${shape} (the port is missing)`);
    return { host, port: rules.defaultPort };
  }
  return { host, port: integer(`${flag} port`, portText, 0, rules.minPort, 65535) };
}

export function integer(flag: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined) return fallback;
  const n = digitsValue(raw);
  if (n < 0) {
    throw new UsageError(`${flag}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  if (n < min || n > max) throw new UsageError(`${flag}: ${raw} is out of range (${min} to ${max})`);
  return n;
}

/**
 * The value of one or more ASCII digits, -1 for anything else. A loop, not
 * /^[0-9]+$/ and Number(): the first regex a process runs costs its start
 * ~50 µs, Number()'s first call ~10 µs. Past 2^53 the value is approximate,
 * far beyond every range checked.
 */
function digitsValue(s: string): number {
  if (s.length === 0) return -1;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

