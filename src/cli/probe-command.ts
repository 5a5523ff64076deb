// The `epoll-echo probe` command: its flag table, strict parsing and
// validation into ProbeOptions, one-line errors. Pure.
import { parseArgv, UsageError, type FlagTable, type Values } from "./argv.ts";
import { integer, parseHostPort } from "./values.ts";
import { DEFAULT_PORT, MAX_UDP_PAYLOAD } from "../core/config.ts";
import { MIN_SIZE } from "../core/payload.ts";

export const PROBE_DEFAULTS = {
  count: 5,
  intervalMs: 1000,
  size: 64,
  timeoutMs: 2000,
  connections: 4,
  pipeline: 16,
  durationS: 10,
} as const;

export const PROBE_FLAGS = {
  target: { type: "positional", valueHint: "HOST[:PORT]", description: "server to probe; port 12345 unless given; IPv6 in brackets: [::1]:12345", required: true },
  udp: { type: "boolean", description: "probe over UDP (default: TCP)" },
  count: { type: "string", valueHint: "N", description: "lines (or datagrams) to send, one at a time", default: String(PROBE_DEFAULTS.count) },
  interval: { type: "string", valueHint: "MS", description: "time from one send to the next", default: String(PROBE_DEFAULTS.intervalMs) },
  size: { type: "string", valueHint: "BYTES", description: "bytes per line, LF included (at least 11)", default: String(PROBE_DEFAULTS.size) },
  timeout: { type: "string", valueHint: "MS", description: "wait this long for a connection or a reply", default: String(PROBE_DEFAULTS.timeoutMs) },
  json: { type: "boolean", description: "print one JSON report on stdout instead of text" },
  load: { type: "boolean", description: "load mode: many connections, many lines in flight, every byte checked" },
  connections: { type: "string", valueHint: "C", description: "--load: connections (or UDP sockets)", default: String(PROBE_DEFAULTS.connections) },
  pipeline: { type: "string", valueHint: "D", description: "--load: lines in flight per connection", default: String(PROBE_DEFAULTS.pipeline) },
  duration: { type: "string", valueHint: "S", description: "--load: seconds to run (decimals allowed)", default: String(PROBE_DEFAULTS.durationS) },
  command: { type: "string", valueHint: "/CMD", description: "send one command (/time, /stats, /whoami, /instance) and print the reply" },
  tls: { type: "boolean", description: "TCP over TLS (to --tls-port); needs --ca or --insecure" },
  ca: { type: "string", valueHint: "FILE", description: "--tls: verify the server's certificate with this CA (PEM)" },
  insecure: { type: "boolean", description: "--tls: do not verify the server's certificate" },
  proxy: { type: "string", valueHint: "v1|v2", description: "send a PROXY protocol header with the probe's own addresses first (TCP, TLS)" },
  help: { type: "boolean", short: "h", description: "show this help" },
} as const satisfies FlagTable;


/** Longest TCP line the probe sends (the server's --max-line can go to 1 MiB). */
export const MAX_TCP_SIZE = (1 << 20) + 1;
/** Largest UDP datagram the probe sends: IPv6's limit (65,535 less the 8-byte UDP header); the server's --max-datagram default. */
export const MAX_UDP_SIZE = 65527;
/** Largest over IPv4 (the 20-byte IP header also counts), checked once the target's address is known. */
export const MAX_UDP4_SIZE = 65507;

export type ProbeMode =
  | { kind: "ping"; count: number; intervalMs: number }
  | { kind: "load"; connections: number; pipeline: number; durationMs: number }
  | { kind: "command"; command: string };

export interface ProbeOptions {
  host: string;
  port: number;
  udp: boolean;
  /** --tls: the CA file (null with --insecure); null without --tls. */
  tls: { caFile: string | null } | null;
  /** --proxy v1|v2. */
  proxy: 1 | 2 | null;
  json: boolean;
  size: number;
  timeoutMs: number;
  mode: ProbeMode;
}

export type ProbeCliResult = { kind: "run"; options: ProbeOptions } | { kind: "help" } | { kind: "error"; message: string };

type ProbeValues = Values<typeof PROBE_FLAGS>;

export function parseProbeCli(argv: string[]): ProbeCliResult {
  try {
    const parsed = parseArgv(argv, PROBE_FLAGS);
    if (parsed.values.help) return { kind: "help" };
    return { kind: "run", options: toOptions(parsed.values, parsed.positionals) };
  } catch (err) {
    if (err instanceof UsageError) return { kind: "error", message: err.message };
    throw err;
  }
}

function toOptions(v: ProbeValues, positionals: string[]): ProbeOptions {
  if (positionals.length === 0) throw new UsageError("missing HOST[:PORT] (the server to probe)");
  if (positionals.length > 1) throw new UsageError(`unexpected argument ${positionals[1]} (one HOST[:PORT] only)`);
  const target = parseHostPort("target", positionals[0]!, { defaultPort: DEFAULT_PORT, minPort: 1 });
  const udp = v.udp ?? false;
  const maxSize = udp ? MAX_UDP_SIZE : MAX_TCP_SIZE;
  const base = {
    host: target.host,
    port: target.port,
    udp,
    tls: tls(v, udp),
    proxy: proxy(v.proxy, udp),
    json: v.json ?? false,
    size: integer("--size", v.size, PROBE_DEFAULTS.size, MIN_SIZE, maxSize),
    timeoutMs: integer("--timeout", v.timeout, PROBE_DEFAULTS.timeoutMs, 1, 3_600_000),
  };
  const only = (mode: string, flags: (keyof ProbeValues)[]) => {
    for (const f of flags) if (v[f] !== undefined) throw new UsageError(`--${f}: not used with ${mode}`);
  };

  if (v.command !== undefined) {
    only("--command", ["load", "count", "interval", "size", "connections", "pipeline", "duration"]);
    return { ...base, mode: { kind: "command", command: command(v.command) } };
  }
  if (v.load) {
    only("--load", ["count", "interval"]);
    return {
      ...base,
      mode: {
        kind: "load",
        connections: integer("--connections", v.connections, PROBE_DEFAULTS.connections, 1, 10_000),
        pipeline: integer("--pipeline", v.pipeline, PROBE_DEFAULTS.pipeline, 1, 65_536),
        durationMs: seconds("--duration", v.duration, PROBE_DEFAULTS.durationS) * 1000,
      },
    };
  }
  for (const f of ["connections", "pipeline", "duration"] as const) {
    if (v[f] !== undefined) throw new UsageError(`--${f}: only with --load`);
  }
  return {
    ...base,
    mode: {
      kind: "ping",
      count: integer("--count", v.count, PROBE_DEFAULTS.count, 1, 1_000_000),
      intervalMs: integer("--interval", v.interval, PROBE_DEFAULTS.intervalMs, 0, 3_600_000),
    },
  };
}

function tls(v: ProbeValues, udp: boolean): ProbeOptions["tls"] {
  if (!v.tls) {
    for (const f of ["ca", "insecure"] as const) if (v[f] !== undefined) throw new UsageError(`--${f}: only with --tls`);
    return null;
  }
  if (udp) throw new UsageError("--tls: not with --udp");
  if (v.ca !== undefined && v.insecure) throw new UsageError("--ca and --insecure exclude each other");
  if (v.ca === undefined && !v.insecure) throw new UsageError("--tls: give --ca FILE to verify the server, or --insecure");
  if (v.ca === "") throw new UsageError("--ca: needs a path");
  return { caFile: v.ca ?? null };
}

function proxy(raw: string | undefined, udp: boolean): 1 | 2 | null {
  if (raw === undefined) return null;
  if (udp) throw new UsageError("--proxy: not with --udp (PROXY headers are for TCP)");
  if (raw === "v1") return 1;
  if (raw === "v2") return 2;
  throw new UsageError(`--proxy: expected "v1" or "v2", got ${JSON.stringify(raw)}`);
}

/** Positive seconds, decimals allowed (0.5), at most a day. */
function seconds(flag: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  if (!/^[0-9]+(\.[0-9]+)?$/.test(raw)) throw new UsageError(`${flag}: expected seconds (e.g. 10 or 0.5), got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n <= 0 || n > 86_400) throw new UsageError(`${flag}: ${raw} is out of range (more than 0, at most 86400)`);
  return n;
}

function command(raw: string): string {
  if (!raw.startsWith("/") || raw.length < 2) throw new UsageError(`--command: expected a command such as /stats or /time, got ${JSON.stringify(raw)}`);
  if (/[\r\n]/.test(raw)) throw new UsageError("--command: must be one line");
  if (raw.length > 4096) throw new UsageError("--command: longer than 4096 bytes");
  return raw;
}

// Re-exported so the probe's tests see every limit from one place.
export { MAX_UDP_PAYLOAD };
