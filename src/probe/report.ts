// What the probe prints: per-reply lines, summaries, the load progress line
// and the JSON reports. Pure: data in, text out.
import type { RttSummary } from "../core/latency.ts";
import { isLoopback } from "../core/peer.ts";

export interface ReplyRecord {
  seq: number;
  status: "ok" | "mismatch" | "lost";
  /** Bytes that came back (0 when lost). */
  bytes: number;
  /** Round-trip time, null when lost. */
  rttMs: number | null;
  /** Why it was lost, or where it differed. */
  detail?: string;
}

/** What a report says was probed: TCP, TLS (over TCP) or UDP. */
export type ProbeProto = "tcp" | "tls" | "udp";

export interface PingReport {
  target: string;
  address: string;
  proto: ProbeProto;
  size: number;
  sent: number;
  received: number;
  lost: number;
  mismatched: number;
  /** Replies that came after their seq was given up (counted lost already). */
  late: number;
  rtt: RttSummary;
  replies: ReplyRecord[];
}

export interface LoadReport {
  target: string;
  address: string;
  proto: ProbeProto;
  size: number;
  connections: number;
  pipeline: number;
  durationS: number;
  sent: number;
  received: number;
  lost: number;
  mismatched: number;
  late: number;
  disconnects: number;
  bytes: number;
  rtt: RttSummary;
}

export interface CommandReport {
  target: string;
  address: string;
  proto: ProbeProto;
  command: string;
  /** The reply without its line terminator, or null when none came. */
  reply: string | null;
  rttMs: number | null;
  error?: string;
}

export const pingOk = (r: PingReport) => r.sent > 0 && r.lost === 0 && r.mismatched === 0;
export const loadOk = (r: LoadReport) => r.received > 0 && r.lost === 0 && r.mismatched === 0 && r.disconnects === 0;
export const commandOk = (r: CommandReport) => r.reply !== null && !r.reply.startsWith("ERR");

/** Milliseconds with three decimals (microsecond resolution). */
export const ms = (v: number) => v.toFixed(3);

export function pingHeader(target: string, address: string, proto: ProbeProto, count: number, size: number): string {
  const via = target.startsWith(address) || target.startsWith(`[${address}]`) ? "" : ` (${address})`;
  const what = proto === "udp" ? "datagrams" : "lines";
  return `PROBE ${target}${via} ${proto}: ${count} ${what} of ${size} bytes\n`;
}

export function replyLine(target: string, r: ReplyRecord): string {
  if (r.status === "lost") return `seq=${r.seq} lost: ${r.detail ?? "no reply"}\n`;
  const base = `${r.bytes} bytes from ${target}: seq=${r.seq} rtt=${ms(r.rttMs ?? 0)} ms`;
  return r.status === "ok" ? base + "\n" : `${base} ${r.detail ?? "MISMATCH"}\n`;
}

export function rttLine(rtt: RttSummary, withP90 = false): string {
  if (rtt.count === 0) return "rtt: no replies\n";
  const names = withP90 ? "min/avg/p50/p90/p99/max" : "min/avg/p50/p99/max";
  const values = withP90 ? [rtt.min, rtt.avg, rtt.p50, rtt.p90, rtt.p99, rtt.max] : [rtt.min, rtt.avg, rtt.p50, rtt.p99, rtt.max];
  return `rtt ${names} = ${values.map(ms).join("/")} ms\n`;
}

export function pingSummary(r: PingReport): string {
  const late = r.late > 0 ? `, ${r.late} late` : "";
  return (
    `--- ${r.target} ${r.proto} probe ---\n` +
    `${r.sent} sent, ${r.received} received, ${r.lost} lost, ${r.mismatched} mismatched${late}\n` +
    rttLine(r.rtt)
  );
}

export function pingJson(r: PingReport): string {
  return (
    JSON.stringify({
      mode: "ping",
      target: r.target,
      address: r.address,
      proto: r.proto,
      size: r.size,
      sent: r.sent,
      received: r.received,
      lost: r.lost,
      mismatched: r.mismatched,
      late: r.late,
      rtt_ms: rttJson(r.rtt),
      ok: pingOk(r),
      replies: r.replies.map((x) => ({ seq: x.seq, status: x.status, bytes: x.bytes, rtt_ms: x.rttMs === null ? null : round3(x.rttMs), detail: x.detail })),
    }) + "\n"
  );
}

export interface Progress {
  elapsedS: number;
  /** Over the last interval. */
  linesPerS: number;
  mbPerS: number;
  p50: number;
  p99: number;
  lost: number;
  mismatched: number;
}

export function progressLine(p: Progress): string {
  return (
    `${p.elapsedS.toFixed(1).padStart(6)}s  ${Math.round(p.linesPerS).toString().padStart(8)} lines/s  ` +
    `${p.mbPerS.toFixed(2).padStart(7)} MB/s  rtt p50 ${ms(p.p50)} p99 ${ms(p.p99)} ms  lost ${p.lost}  mismatched ${p.mismatched}`
  );
}

export function loadSummary(r: LoadReport): string {
  const rate = r.durationS > 0 ? r.received / r.durationS : 0;
  const mb = r.durationS > 0 ? r.bytes / r.durationS / 1e6 : 0;
  const what = r.proto === "udp" ? `${r.connections} sockets` : `${r.connections} connections`;
  const late = r.late > 0 ? `, ${r.late} late` : "";
  return (
    `--- load ${r.target} ${r.proto}: ${what} x ${r.pipeline} in flight, ${r.size}-byte lines, ${r.durationS.toFixed(2)} s ---\n` +
    `lines: ${r.sent} sent, ${r.received} received, ${r.lost} lost, ${r.mismatched} mismatched${late}, ${r.disconnects} disconnects\n` +
    `rate: ${Math.round(rate)} lines/s, ${mb.toFixed(2)} MB/s echoed\n` +
    rttLine(r.rtt, true) +
    udpLossHint(r)
  );
}

/**
 * Why UDP replies from a non-loopback address may be missing: epoll-echo
 * answers each source address at most --udp-rate times a second and drops
 * the rest without a word (an error reply would reflect too).
 */
export function udpLossHint(r: Pick<LoadReport, "proto" | "address" | "lost">): string {
  if (r.proto !== "udp" || r.lost === 0 || isLoopback(r.address)) return "";
  return (
    `hint: ${r.lost} replies lost. epoll-echo answers at most --udp-rate datagrams a second per source address ` +
    `(default 1000, burst the same; loopback exempt) and drops the rest silently: ` +
    `send fewer (--connections, --pipeline) or raise the server's --udp-rate (0 = no limit)\n`
  );
}

export function loadJson(r: LoadReport): string {
  return (
    JSON.stringify({
      mode: "load",
      target: r.target,
      address: r.address,
      proto: r.proto,
      size: r.size,
      connections: r.connections,
      pipeline: r.pipeline,
      duration_s: round3(r.durationS),
      sent: r.sent,
      received: r.received,
      lost: r.lost,
      mismatched: r.mismatched,
      late: r.late,
      disconnects: r.disconnects,
      bytes: r.bytes,
      lines_per_s: r.durationS > 0 ? Math.round(r.received / r.durationS) : 0,
      mb_per_s: r.durationS > 0 ? round3(r.bytes / r.durationS / 1e6) : 0,
      rtt_ms: rttJson(r.rtt),
      ok: loadOk(r),
    }) + "\n"
  );
}

/** The /stats reply's three numbers by name, or null for any other reply. */
export function statsFields(reply: string): { total_clients: number; tcp_connected_now: number; udp_active: number } | null {
  const m = /^(\d+) (\d+) (\d+)$/.exec(reply);
  if (!m) return null;
  return { total_clients: Number(m[1]), tcp_connected_now: Number(m[2]), udp_active: Number(m[3]) };
}

export function commandText(r: CommandReport): string {
  return r.reply !== null ? r.reply + "\n" : "";
}

export function commandJson(r: CommandReport): string {
  const stats = r.reply !== null && r.command.trim() === "/stats" ? statsFields(r.reply) : null;
  return (
    JSON.stringify({
      mode: "command",
      target: r.target,
      address: r.address,
      proto: r.proto,
      command: r.command,
      reply: r.reply,
      rtt_ms: r.rttMs === null ? null : round3(r.rttMs),
      ...(stats ? { stats } : {}),
      ...(r.error ? { error: r.error } : {}),
      ok: commandOk(r),
    }) + "\n"
  );
}

function rttJson(rtt: RttSummary) {
  return { min: round3(rtt.min), avg: round3(rtt.avg), p50: round3(rtt.p50), p90: round3(rtt.p90), p99: round3(rtt.p99), max: round3(rtt.max) };
}

function round3(v: number): number {
  return Math.round(v * 1000) / 1000;
}
