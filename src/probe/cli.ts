// `epoll-echo probe` argument parsing: strict parseArgv (src/argv.ts) plus validation
// into ProbeOptions, with the server CLI's helpers and one-line errors. Pure.
import { parseArgv, type OptionDefs } from "../argv.ts";
import { integer, parseHostPort, subcommandUsage, UsageError } from "../cli.ts";
import { DEFAULT_PORT, MAX_UDP_PAYLOAD } from "../config.ts";
import { PROBE_DEFAULTS, probeCommand } from "./args.ts";
import { MIN_SIZE } from "./payload.ts";

/** Longest TCP line the probe sends (the server's --max-line can go to 1 MiB). */
export const MAX_TCP_SIZE = (1 << 20) + 1;
/** Largest UDP datagram the probe sends (IPv4's limit; IPv6's is a little higher). */
export const MAX_UDP_SIZE = 65507;

export type ProbeMode =
  | { kind: "ping"; count: number; intervalMs: number }
  | { kind: "load"; connections: number; pipeline: number; durationMs: number }
  | { kind: "command"; command: string };

export interface ProbeOptions {
  host: string;
  port: number;
  udp: boolean;
  json: boolean;
  size: number;
  timeoutMs: number;
  mode: ProbeMode;
}

export type ProbeCliResult = { kind: "run"; options: ProbeOptions } | { kind: "help" } | { kind: "error"; message: string };

export async function probeUsage(): Promise<string> {
  const text = await subcommandUsage(probeCommand);
  return (
    text +
    "\nEXAMPLES\n\n" +
    "  epoll-echo probe 127.0.0.1 --count 3 --interval 200\n" +
    "  epoll-echo probe [::1]:12345 --udp --json\n" +
    "  epoll-echo probe localhost --load --connections 8 --pipeline 32 --duration 10\n" +
    "  epoll-echo probe localhost --command /stats\n" +
    "\nExit status: 0 every reply came back intact, 1 a reply was lost or wrong (or a command got ERR), 2 usage or connection error.\n"
  );
}

const OPTIONS = {
      udp: { type: "boolean" },
      count: { type: "string" },
      interval: { type: "string" },
      size: { type: "string" },
      timeout: { type: "string" },
      json: { type: "boolean" },
      load: { type: "boolean" },
      connections: { type: "string" },
      pipeline: { type: "string" },
      duration: { type: "string" },
      command: { type: "string" },
      help: { type: "boolean", short: "h" },
} as const satisfies OptionDefs;

function parseStrict(argv: string[]) {
  return parseArgv(argv, OPTIONS, true);
}

type Values = ReturnType<typeof parseStrict>["values"];

export function parseProbeCli(argv: string[]): ProbeCliResult {
  try {
    const parsed = parseStrict(argv);
    if (parsed.values.help) return { kind: "help" };
    return { kind: "run", options: toOptions(parsed.values, parsed.positionals) };
  } catch (err) {
    if (err instanceof UsageError) return { kind: "error", message: err.message };
    throw err;
  }
}

function toOptions(v: Values, positionals: string[]): ProbeOptions {
  if (positionals.length === 0) throw new UsageError("missing HOST[:PORT] (the server to probe)");
  if (positionals.length > 1) throw new UsageError(`unexpected argument ${positionals[1]} (one HOST[:PORT] only)`);
  const target = parseHostPort("target", positionals[0]!, { defaultPort: DEFAULT_PORT, minPort: 1 });
  const udp = v.udp ?? false;
  const maxSize = udp ? MAX_UDP_SIZE : MAX_TCP_SIZE;
  const base = {
    host: target.host,
    port: target.port,
    udp,
    json: v.json ?? false,
    size: integer("--size", v.size, PROBE_DEFAULTS.size, MIN_SIZE, maxSize),
    timeoutMs: integer("--timeout", v.timeout, PROBE_DEFAULTS.timeoutMs, 1, 3_600_000),
  };
  const only = (mode: string, flags: (keyof Values)[]) => {
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
