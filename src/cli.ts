// Command-line parsing, validation and help. Pure: it returns what to do and
// never touches sockets or the process, so tests call it with plain arrays.
//
// citty 0.2.2 parses with strict: false (unknown flags pass silently, `-vv`
// collapses to one boolean), so argv goes through our strict parseArgv (argv.ts)
// and citty only describes the command for renderUsage().
import { parseArgv, UsageError, type OptionDefs } from "./argv.ts";
import type { ArgsDef } from "citty";
import { isIPv4, isIPv6 } from "./ip-literal.ts";
import { DEFAULTS, MAX_UDP_PAYLOAD, type Config, type HostPort, type LogFormat, type Verbosity } from "./config.ts";
import type { probeCommand } from "./probe/args.ts";
import pkg from "../package.json" with { type: "json" };

export const VERSION: string = pkg.version;

export type CliResult =
  | { kind: "run"; config: Config }
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "error"; message: string };

export { UsageError };

const ARGS = {
  port: { type: "string", valueHint: "N", description: "TCP and UDP port; 0 lets the kernel pick", default: String(DEFAULTS.tcpPort) },
  "tcp-port": { type: "string", valueHint: "N", description: "TCP port (overrides --port)" },
  "udp-port": { type: "string", valueHint: "N", description: "UDP port (overrides --port)" },
  "max-tcp": { type: "string", valueHint: "N", description: "TCP clients served at once; more get 'server busy'", default: String(DEFAULTS.maxTcp) },
  backlog: { type: "string", valueHint: "N", description: "listen(2) backlog (capped by net.core.somaxconn)", default: String(DEFAULTS.backlog) },
  "max-line": { type: "string", valueHint: "BYTES", description: "longest TCP line before its LF", default: String(DEFAULTS.maxLine) },
  "max-datagram": { type: "string", valueHint: "BYTES", description: "longest UDP datagram echoed", default: String(DEFAULTS.maxDatagram) },
  "udp-window": { type: "string", valueHint: "SECONDS", description: "how long a UDP peer counts as active", default: String(DEFAULTS.udpWindow) },
  "idle-timeout": { type: "string", valueHint: "SECONDS", description: "close TCP clients that complete no line this long; 0 = off", default: String(DEFAULTS.idleTimeout) },
  "udp-allow-low-ports": { type: "boolean", description: "also answer UDP source ports 1-1023 (off: avoids echo loops)" },
  "shutdown-token-file": { type: "string", valueHint: "PATH", description: "file holding the /shutdown token (mode 0600 or stricter)" },
  "log-format": { type: "string", valueHint: "text|json", description: "log line format on stderr", default: DEFAULTS.logFormat },
  metrics: { type: "string", valueHint: "ADDR:PORT", description: "serve Prometheus GET /metrics there, e.g. 127.0.0.1:9712 or [::1]:9712 (off by default)" },
  verbose: { type: "boolean", alias: ["v"], description: "more logs; -vv adds per-connection and per-line tracing" },
  quiet: { type: "boolean", alias: ["q"], description: "warnings and errors only" },
  help: { type: "boolean", alias: ["h"], description: "show this help" },
  version: { type: "boolean", description: "show the version" },
} as const satisfies ArgsDef;

// citty and the probe's definitions are loaded only to render help: importing
// them at start costs the daemon's startup time for nothing.
async function helpRenderer() {
  const { defineCommand, renderUsage } = await import("citty");
  const { probeCommand } = await import("./probe/args.ts");
  const command = defineCommand({
    meta: { name: "epoll-echo", version: VERSION, description: "TCP and UDP line echo daemon" },
    args: ARGS,
    subCommands: { probe: probeCommand },
  });
  return { command, renderUsage };
}

/** Usage text with every flag and its default, without colour codes. */
export async function usage(): Promise<string> {
  const { command, renderUsage } = await helpRenderer();
  const text = await renderUsage(command);
  // citty writes "USAGE epoll-echo [OPTIONS] probe" as if the subcommand were
  // required; the server is the default command.
  return stripAnsi(text).replace(
    /^USAGE epoll-echo \[OPTIONS\] probe$/m,
    "USAGE epoll-echo [OPTIONS]\n      epoll-echo probe HOST[:PORT] [OPTIONS]",
  );
}

/** Usage text of a subcommand, rendered by citty under the main command. */
export async function subcommandUsage(sub: typeof probeCommand): Promise<string> {
  const { command, renderUsage } = await helpRenderer();
  return stripAnsi(await renderUsage(sub, command as unknown as typeof sub));
}

function stripAnsi(text: string): string {
  return text.replace(/\x1b\[[0-9;]*m/g, "").replace(/[ \t]+$/gm, "");
}

type Parsed = ReturnType<typeof parseStrict>;

const OPTIONS = {
      port: { type: "string" },
      "tcp-port": { type: "string" },
      "udp-port": { type: "string" },
      "max-tcp": { type: "string" },
      backlog: { type: "string" },
      "max-line": { type: "string" },
      "max-datagram": { type: "string" },
      "udp-window": { type: "string" },
      "idle-timeout": { type: "string" },
      "udp-allow-low-ports": { type: "boolean" },
      "shutdown-token-file": { type: "string" },
      "log-format": { type: "string" },
      metrics: { type: "string" },
      verbose: { type: "boolean", short: "v", multiple: true },
      quiet: { type: "boolean", short: "q" },
      help: { type: "boolean", short: "h" },
      version: { type: "boolean" },
} as const satisfies OptionDefs;

function parseStrict(argv: string[]) {
  return parseArgv(argv, OPTIONS, false);
}

export function parseCli(argv: string[]): CliResult {
  try {
    const v = parseStrict(argv).values;
    if (v.help) return { kind: "help" };
    if (v.version) return { kind: "version" };
    return { kind: "run", config: toConfig(v) };
  } catch (err) {
    if (err instanceof UsageError) return { kind: "error", message: err.message };
    throw err;
  }
}

function toConfig(v: Parsed["values"]): Config {
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
    tcpPort,
    udpPort,
    maxTcp: integer("--max-tcp", v["max-tcp"], DEFAULTS.maxTcp, 1, 1_000_000),
    backlog: integer("--backlog", v.backlog, DEFAULTS.backlog, 1, 65535),
    maxLine: integer("--max-line", v["max-line"], DEFAULTS.maxLine, 1, 1 << 20),
    maxDatagram: integer("--max-datagram", v["max-datagram"], DEFAULTS.maxDatagram, 1, MAX_UDP_PAYLOAD),
    udpWindow: integer("--udp-window", v["udp-window"], DEFAULTS.udpWindow, 1, 86_400),
    idleTimeout: integer("--idle-timeout", v["idle-timeout"], DEFAULTS.idleTimeout, 0, 86_400),
    udpAllowLowPorts: v["udp-allow-low-ports"] ?? false,
    shutdownTokenFile: path("--shutdown-token-file", v["shutdown-token-file"]),
    logFormat: logFormat(v["log-format"]),
    verbosity: (v.quiet ? 0 : Math.min(1 + verbose, 3)) as Verbosity,
    metrics,
  };
}

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
  if (!/^[0-9]+$/.test(raw)) {
    throw new UsageError(`${flag}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`${flag}: ${raw} is out of range (${min} to ${max})`);
  return n;
}

function path(flag: string, raw: string | undefined): string | null {
  if (raw === undefined) return null;
  if (raw === "") throw new UsageError(`${flag}: needs a path`);
  return raw;
}

function logFormat(raw: string | undefined): LogFormat {
  if (raw === undefined) return DEFAULTS.logFormat;
  if (raw === "text" || raw === "json") return raw;
  throw new UsageError(`--log-format: expected "text" or "json", got ${JSON.stringify(raw)}`);
}

