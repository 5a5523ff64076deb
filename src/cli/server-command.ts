// The server command: its flag table, validation into a Config, one-line
// errors. Pure: it returns what to do and never touches sockets or the
// process, so tests call it with plain arrays.
//
// citty 0.2.2 parses with strict: false (unknown flags pass silently, `-vv`
// collapses to one boolean), so argv goes through our strict parseArgv
// (argv.ts); citty only renders help, from the same table (help.ts).
import { parseArgv, UsageError, type FlagTable, type Values } from "./argv.ts";
import { integer, parseHostPort } from "./values.ts";
import { INSTANCE_MAX, isInstanceName } from "../core/instance.ts";
import { parseCidrList, type Cidr } from "../core/cidr.ts";
import { isIPv4, isIPv6 } from "../core/ip-literal.ts";
import { encodeSockAddr, isWildcard } from "../core/sockaddr.ts";
import { DEFAULTS, MAX_LISTEN, MAX_UDP_PAYLOAD, type Config, type TlsConfig, type LogFormat, type Verbosity } from "../core/config.ts";
// Only the version: a default import would put all of package.json into the start's code.
import { version } from "../../package.json" with { type: "json" };

export const VERSION: string = version;

export type CliResult =
  | { kind: "run"; config: Config }
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "error"; message: string };

export { UsageError };

export const SERVER_FLAGS = {
  listen: { type: "string", multiple: true, valueHint: "ADDR", description: "bind TCP and UDP on this IPv4 or IPv6 address only (repeatable)", default: "every address, IPv4 and IPv6" },
  "reuse-port": { type: "boolean", description: "bind with SO_REUSEPORT: several instances (same user) share the ports, the kernel spreads clients" },
  port: { type: "string", valueHint: "N", description: "TCP and UDP port; 0 lets the kernel pick", default: String(DEFAULTS.tcpPort) },
  "tcp-port": { type: "string", valueHint: "N", description: "TCP port (overrides --port)" },
  "udp-port": { type: "string", valueHint: "N", description: "UDP port (overrides --port)" },
  "max-tcp": { type: "string", valueHint: "N", description: "TCP clients served at once; more get 'server busy'", default: String(DEFAULTS.maxTcp) },
  backlog: { type: "string", valueHint: "N", description: "listen(2) backlog (capped by net.core.somaxconn)", default: String(DEFAULTS.backlog) },
  "max-line": { type: "string", valueHint: "BYTES", description: "longest TCP line before its LF", default: String(DEFAULTS.maxLine) },
  "max-datagram": { type: "string", valueHint: "BYTES", description: "longest UDP datagram echoed", default: String(DEFAULTS.maxDatagram) },
  "udp-window": { type: "string", valueHint: "SECONDS", description: "how long a UDP peer counts as active", default: String(DEFAULTS.udpWindow) },
  "idle-timeout": { type: "string", valueHint: "SECONDS", description: "close TCP clients that complete no line this long; 0 = off", default: String(DEFAULTS.idleTimeout) },
  "udp-allow-low-ports": { type: "boolean", description: "also answer UDP source ports 1-1023 (off: avoids echo loops; port 0 and this server's own port are never answered)" },
  "udp-rate": {
    type: "string",
    valueHint: "N",
    description: "UDP replies per second per source address, burst N; more are dropped silently; 0 = no limit; loopback exempt",
    default: String(DEFAULTS.udpRate),
  },
  "shutdown-token-file": { type: "string", valueHint: "PATH", description: "file holding the /shutdown token (mode 0600 or stricter)" },
  "log-format": { type: "string", valueHint: "text|json", description: "log line format on stderr", default: DEFAULTS.logFormat },
  "proxy-protocol-from": { type: "string", valueHint: "CIDR[,CIDR...]", description: "peers in these networks must start with a PROXY header (v1 or v2); others are not parsed" },
  "tls-port": { type: "string", valueHint: "N", description: "serve the line protocol over TLS on this port too (needs --tls-cert and --tls-key)" },
  "tls-cert": { type: "string", valueHint: "PATH", description: "TLS certificate chain, PEM (reloaded on SIGHUP)" },
  "tls-key": { type: "string", valueHint: "PATH", description: "TLS private key, PEM, mode 0600 or stricter (reloaded on SIGHUP)" },
  instance: { type: "string", valueHint: "NAME", description: "name /instance answers, also in logs, STATUS and /metrics (1-64 printable ASCII, no spaces)", default: "the hostname" },
  metrics: { type: "string", valueHint: "ADDR:PORT", description: "serve Prometheus GET /metrics there, e.g. 127.0.0.1:9712 or [::1]:9712 (off by default)" },
  verbose: { type: "boolean", short: "v", multiple: true, description: "more logs; -vv adds per-connection and per-line tracing" },
  quiet: { type: "boolean", short: "q", description: "warnings and errors only" },
  help: { type: "boolean", short: "h", description: "show this help" },
  version: { type: "boolean", description: "show the version" },
} as const satisfies FlagTable;

export function parseCli(argv: string[]): CliResult {
  try {
    const v = parseArgv(argv, SERVER_FLAGS).values;
    if (v.help) return { kind: "help" };
    if (v.version) return { kind: "version" };
    return { kind: "run", config: toConfig(v) };
  } catch (err) {
    if (err instanceof UsageError) return { kind: "error", message: err.message };
    throw err;
  }
}

function toConfig(v: Values<typeof SERVER_FLAGS>): Config {
  const port = integer("--port", v.port, DEFAULTS.tcpPort, 0, 65535);
  const verbose = v.verbose?.length ?? 0;
  if (verbose > 0 && v.quiet) throw new UsageError("--quiet and --verbose exclude each other");
  const tcpPort = integer("--tcp-port", v["tcp-port"], port, 0, 65535);
  const udpPort = integer("--udp-port", v["udp-port"], port, 0, 65535);
  const metrics = v.metrics === undefined ? null : parseHostPort("--metrics", v.metrics, { defaultPort: null, minPort: 0 });
  if (metrics && metrics.port !== 0 && (metrics.port === tcpPort || metrics.port === udpPort)) {
    throw new UsageError(`--metrics: port ${metrics.port} is the echo port; give the metrics listener a port of its own`);
  }
  return {
    listen: ifGiven(v.listen, listenAddresses) ?? [],
    reusePort: v["reuse-port"] ?? false,
    tcpPort,
    udpPort,
    maxTcp: integer("--max-tcp", v["max-tcp"], DEFAULTS.maxTcp, 1, 1_000_000),
    backlog: integer("--backlog", v.backlog, DEFAULTS.backlog, 1, 65535),
    maxLine: integer("--max-line", v["max-line"], DEFAULTS.maxLine, 1, 1 << 20),
    maxDatagram: integer("--max-datagram", v["max-datagram"], DEFAULTS.maxDatagram, 1, MAX_UDP_PAYLOAD),
    udpWindow: integer("--udp-window", v["udp-window"], DEFAULTS.udpWindow, 1, 86_400),
    idleTimeout: integer("--idle-timeout", v["idle-timeout"], DEFAULTS.idleTimeout, 0, 86_400),
    udpAllowLowPorts: v["udp-allow-low-ports"] ?? false,
    udpRate: integer("--udp-rate", v["udp-rate"], DEFAULTS.udpRate, 0, 10_000_000),
    shutdownTokenFile: ifGiven(v["shutdown-token-file"], (raw) => path("--shutdown-token-file", raw)),
    logFormat: ifGiven(v["log-format"], logFormat) ?? DEFAULTS.logFormat,
    verbosity: (v.quiet ? 0 : Math.min(1 + verbose, 3)) as Verbosity,
    metrics,
    instance: ifGiven(v.instance, instance),
    proxyProtocolFrom: ifGiven(v["proxy-protocol-from"], proxyFrom),
    tls: tls(v),
  };
}

/**
 * `check(raw)` for a flag that was given, null for one that was not: a start
 * links only the validators of the flags it has (a function's first call
 * costs a start for its whole body, docs/benchmarks.md, "Startup").
 */
function ifGiven<R, T>(raw: R | undefined, check: (raw: R) => T): T | null {
  return raw === undefined ? null : check(raw);
}

function proxyFrom(raw: string): Cidr[] {
  try {
    return parseCidrList(raw);
  } catch (err) {
    throw new UsageError(`--proxy-protocol-from: ${(err as Error).message}`);
  }
}

/** All three TLS flags or none. */
function tls(v: Values<typeof SERVER_FLAGS>): TlsConfig | null {
  const { "tls-port": port, "tls-cert": cert, "tls-key": key } = v;
  if (port === undefined && cert === undefined && key === undefined) return null;
  if (port === undefined || cert === undefined || key === undefined) {
    throw new UsageError("--tls-port, --tls-cert and --tls-key go together: give all three");
  }
  return { port: integer("--tls-port", port, 0, 0, 65535), certFile: path("--tls-cert", cert), keyFile: path("--tls-key", key) };
}

/**
 * --listen: address literals ([v6] brackets allowed), each once, at most
 * MAX_LISTEN. "::" alone is the default (every address, dual stack); a
 * wildcard next to other addresses would overlap them.
 */
function listenAddresses(raw: string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const given of raw) {
    const literal = /^\[.*\]$/.test(given) ? given.slice(1, -1) : given;
    const valid = literal.includes(":") ? isIPv6(literal) : isIPv4(literal) && literal === given;
    const sockaddr = valid ? encodeSockAddr(literal.replace(/%.*/, "")) : null;
    if (sockaddr === null) throw new UsageError(`--listen: expected an IPv4 or IPv6 address, got ${JSON.stringify(given)}`);
    const key = sockaddr.text + literal.replace(/^[^%]*/, "");
    if (seen.has(key)) throw new UsageError(`--listen: ${given} is given twice`);
    seen.add(key);
    out.push(literal);
  }
  if (out.length > MAX_LISTEN) throw new UsageError(`--listen: at most ${MAX_LISTEN} addresses, got ${out.length}`);
  if (out.length > 1 && out.some(isWildcard)) throw new UsageError("--listen: a wildcard address (0.0.0.0 or ::) already covers every other address; give it alone");
  return out.length === 1 && out[0]!.includes(":") && isWildcard(out[0]!) ? [] : out;
}

function instance(raw: string): string {
  if (!isInstanceName(raw)) throw new UsageError(`--instance: expected 1 to ${INSTANCE_MAX} printable ASCII characters without spaces, got ${JSON.stringify(raw)}`);
  return raw;
}

function path(flag: string, raw: string): string {
  if (raw === "") throw new UsageError(`${flag}: needs a path`);
  return raw;
}

function logFormat(raw: string): LogFormat {
  if (raw === "text" || raw === "json") return raw;
  throw new UsageError(`--log-format: expected "text" or "json", got ${JSON.stringify(raw)}`);
}

