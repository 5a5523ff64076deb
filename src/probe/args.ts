// The probe subcommand's flags, as citty describes them for renderUsage().
// Kept free of imports from src/cli.ts so that cli.ts can list the subcommand
// in the server's help without an import cycle. Parsing is strict and lives
// in src/probe/cli.ts.
import { defineCommand, type ArgsDef } from "citty";

export const PROBE_DEFAULTS = {
  count: 5,
  intervalMs: 1000,
  size: 64,
  timeoutMs: 2000,
  connections: 4,
  pipeline: 16,
  durationS: 10,
} as const;

export const PROBE_ARGS = {
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
  command: { type: "string", valueHint: "/CMD", description: "send one command (/time, /stats) and print the reply" },
  help: { type: "boolean", alias: ["h"], description: "show this help" },
} as const satisfies ArgsDef;

export const probeCommand = defineCommand({
  meta: { name: "probe", description: "check an echo server byte for byte (ping-like), load it, or send it a command" },
  args: PROBE_ARGS,
});
