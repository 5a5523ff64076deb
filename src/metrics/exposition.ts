// Prometheus text exposition format (version 0.0.4), formatted by hand from
// the server's plain counters. Pure: a Stats-shaped object and a process
// snapshot in, the response body out. Nothing here runs on the echo path: the
// hot path only bumps numbers in Stats, and a scrape reads them.
import type { ProcessSnapshot } from "./process.ts";
import { COMMAND_NAMES, type CommandName } from "../core/commands.ts";

export const CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type MetricType = "counter" | "gauge";

export interface Sample {
  labels?: Readonly<Record<string, string>>;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  type: MetricType;
  samples: Sample[];
}

/** What the exposition reads from the server: the fields of src/core/stats.ts. */
export interface StatsView {
  tcpAccepted: number;
  tcpRejectedBusy: number;
  tcpConnected: number;
  tcpLines: number;
  tcpOverflows: number;
  tcpBytesIn: number;
  tcpBytesOut: number;
  tcpPendingOutput: number;
  udpDatagrams: number;
  udpTruncated: number;
  udpBytesIn: number;
  udpBytesOut: number;
  readonly udpLoopGuardDrops: Readonly<Record<"low-port" | "own-port", number>>;
  udpRateLimited: number;
  proxyHeaderErrors: number;
  readonly tlsHandshakes: { readonly ok: number; readonly failed: number };
  readonly commands: Readonly<Record<CommandName, number>>;
  readonly shutdownRejected: Readonly<Record<string, number>>;
  readonly udpPeers: { active(nowMs: number): number };
}

/** What epoll_echo_build_info carries. */
export interface BuildInfo {
  version: string;
  /** --instance, or the hostname. */
  instance: string;
}

/** Every /shutdown refusal reason, so each series exists (at 0) from the start. */
export const SHUTDOWN_REJECTION_REASONS = ["token-required", "loopback-required", "token-missing", "token-invalid", "not-allowed"] as const;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The families of the echo server, from its counters. */
export function serverFamilies(s: StatsView, nowMs: number): Family[] {
  const counter = (name: string, help: string, samples: Sample[]): Family => ({ name, help, type: "counter", samples });
  const gauge = (name: string, help: string, value: number): Family => ({ name, help, type: "gauge", samples: [{ value }] });
  const rejected = new Set<string>([...SHUTDOWN_REJECTION_REASONS, ...Object.keys(s.shutdownRejected)]);
  return [
    counter("epoll_echo_tcp_accepted_total", "TCP connections accepted (busy rejections not included).", [{ value: s.tcpAccepted }]),
    counter("epoll_echo_tcp_rejected_busy_total", "TCP connections answered 'server busy' and closed at --max-tcp.", [{ value: s.tcpRejectedBusy }]),
    counter("epoll_echo_tcp_lines_total", "TCP lines echoed (commands not included).", [{ value: s.tcpLines }]),
    counter("epoll_echo_tcp_overflows_total", "TCP lines longer than --max-line (answered ERR too-long-line).", [{ value: s.tcpOverflows }]),
    counter("epoll_echo_bytes_received_total", "Bytes received from clients.", [
      { labels: { proto: "tcp" }, value: s.tcpBytesIn },
      { labels: { proto: "udp" }, value: s.udpBytesIn },
    ]),
    counter("epoll_echo_bytes_sent_total", "Bytes sent to clients (TCP: taken by the kernel; UDP: datagrams sent).", [
      { labels: { proto: "tcp" }, value: s.tcpBytesOut },
      { labels: { proto: "udp" }, value: s.udpBytesOut },
    ]),
    counter("epoll_echo_udp_datagrams_total", "UDP datagrams received.", [{ value: s.udpDatagrams }]),
    counter("epoll_echo_udp_truncated_total", "UDP datagrams over --max-datagram or truncated by the kernel (answered ERR datagram-truncated).", [
      { value: s.udpTruncated },
    ]),
    counter("epoll_echo_udp_loop_guard_drops_total", "UDP datagrams not answered by an echo-loop guard: source port below 1024 or 0 (low-port), this server's own port (own-port).", [
      { labels: { rule: "low-port" }, value: s.udpLoopGuardDrops["low-port"] },
      { labels: { rule: "own-port" }, value: s.udpLoopGuardDrops["own-port"] },
    ]),
    counter("epoll_echo_udp_rate_limited_total", "UDP datagrams not answered because their source address was over --udp-rate.", [{ value: s.udpRateLimited }]),
    counter(
      "epoll_echo_commands_total",
      "Slash commands answered, by command (unknown = any other /word).",
      COMMAND_NAMES.map((command) => ({ labels: { command }, value: s.commands[command] })),
    ),
    counter(
      "epoll_echo_shutdown_rejected_total",
      "/shutdown requests refused, by reason.",
      [...rejected].map((reason) => ({ labels: { reason }, value: s.shutdownRejected[reason] ?? 0 })),
    ),
    counter(
      "epoll_echo_proxy_header_errors_total",
      "Connections from --proxy-protocol-from sources closed for a missing, malformed or incomplete PROXY header.",
      [{ value: s.proxyHeaderErrors }],
    ),
    counter("epoll_echo_tls_handshakes_total", "TLS handshakes on --tls-port, by result.", [
      { labels: { result: "ok" }, value: s.tlsHandshakes.ok },
      { labels: { result: "failed" }, value: s.tlsHandshakes.failed },
    ]),
    gauge("epoll_echo_tcp_connections", "TCP clients connected now.", s.tcpConnected),
    gauge("epoll_echo_udp_active_peers", "Distinct UDP peers seen within --udp-window.", s.udpPeers.active(nowMs)),
    gauge("epoll_echo_tcp_pending_output_bytes", "Bytes owed to TCP clients and not yet taken by the kernel.", s.tcpPendingOutput),
  ];
}

/** The info-style family: constant 1, the facts in its labels. */
export function buildInfoFamily(build: BuildInfo): Family {
  return {
    name: "epoll_echo_build_info",
    help: "Always 1; the version and the --instance name (the hostname by default) as labels.",
    type: "gauge",
    samples: [{ labels: { version: build.version, instance: build.instance }, value: 1 }],
  };
}

/** The standard process_* families (names as in the Prometheus client libraries). */
export function processFamilies(p: ProcessSnapshot): Family[] {
  const one = (name: string, help: string, type: MetricType, value: number | null): Family[] =>
    value === null ? [] : [{ name, help, type, samples: [{ value }] }];
  return [
    ...one("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", p.cpuSeconds),
    ...one("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", p.residentBytes),
    ...one("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", p.virtualBytes),
    ...one("process_open_fds", "Number of open file descriptors.", "gauge", p.openFds),
    ...one("process_max_fds", "Maximum number of open file descriptors.", "gauge", p.maxFds),
    ...one("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge", p.startTimeSeconds),
  ];
}

/** The exposition text of the families, in the order given. */
export function formatFamilies(families: readonly Family[]): string {
  let out = "";
  for (const f of families) {
    if (!METRIC_NAME.test(f.name)) throw new Error(`invalid metric name ${JSON.stringify(f.name)}`);
    out += `# HELP ${f.name} ${escapeHelp(f.help)}\n# TYPE ${f.name} ${f.type}\n`;
    for (const s of f.samples) out += `${f.name}${formatLabels(s.labels)} ${formatValue(s.value)}\n`;
  }
  return out;
}

export function formatLabels(labels: Readonly<Record<string, string>> | undefined): string {
  if (!labels) return "";
  const parts: string[] = [];
  for (const name in labels) {
    if (!LABEL_NAME.test(name) || name.startsWith("__")) throw new Error(`invalid label name ${JSON.stringify(name)}`);
    parts.push(`${name}="${escapeLabelValue(labels[name]!)}"`);
  }
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

/** Go's ParseFloat spellings: integers plainly, NaN, +Inf, -Inf. */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** HELP text: backslash and line feed escaped. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** Label values: backslash, double quote and line feed escaped. */
export function escapeLabelValue(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** The whole /metrics body. */
export function exposition(stats: StatsView, build: BuildInfo, nowMs: number, proc: ProcessSnapshot): string {
  return formatFamilies([buildInfoFamily(build), ...serverFamilies(stats, nowMs), ...processFamilies(proc)]);
}
