// Ping mode: N lines (or datagrams) one at a time, each echo checked byte for
// byte against what was sent, one printed line per reply, then a summary.
import { describeMismatch, firstDifference, makeLine, readSeq } from "../core/payload.ts";
import { summarize } from "../core/latency.ts";
import { openUdp, streamProto, TcpLink, udpErrorText, type Endpoint, type StreamOptions } from "./net.ts";
import type { PingReport, ProbeProto, ReplyRecord } from "./report.ts";
import type { Stopper } from "./stopper.ts";

export interface PingParams {
  target: string;
  endpoints: Endpoint[];
  /** TCP only: TLS and/or a PROXY header first. */
  stream: StreamOptions;
  count: number;
  intervalMs: number;
  size: number;
  timeoutMs: number;
  stop: Stopper;
  /** Called once the connection (or socket) is up, with the address in use. */
  onStart(address: string): void;
  /** Called with each reply as it is decided (for the per-reply lines). */
  onReply(record: ReplyRecord): void;
}

function newReport(p: PingParams, address: string, proto: ProbeProto): PingReport {
  return { target: p.target, address, proto, size: p.size, sent: 0, received: 0, lost: 0, mismatched: 0, late: 0, rtt: summarize([]), replies: [] };
}

function judge(seq: number, sent: Uint8Array, got: Uint8Array, rttMs: number): ReplyRecord {
  if (firstDifference(sent, got) < 0) return { seq, status: "ok", bytes: got.length, rttMs };
  return { seq, status: "mismatch", bytes: got.length, rttMs, detail: describeMismatch(sent, got) };
}

function finish(report: PingReport, rtts: number[]): PingReport {
  report.rtt = summarize(rtts);
  return report;
}

function record(report: PingReport, rtts: number[], r: ReplyRecord, p: PingParams): void {
  report.sent++;
  report.replies.push(r);
  if (r.status === "lost") report.lost++;
  else {
    report.received++;
    rtts.push(r.rttMs!);
    if (r.status === "mismatch") report.mismatched++;
  }
  p.onReply(r);
}

/** TCP: one connection; after a timeout or a close, the next line gets a fresh one. */
export async function pingTcp(p: PingParams): Promise<PingReport> {
  let link: TcpLink | null = await TcpLink.connect(p.endpoints, p.timeoutMs, p.stream);
  const report = newReport(p, link.endpoint.address, streamProto(p.stream));
  p.onStart(link.endpoint.address);
  const rtts: number[] = [];
  try {
    for (let seq = 1; seq <= p.count && !p.stop.stopped; seq++) {
      const t0 = performance.now();
      if (link === null) {
        try {
          link = await TcpLink.connect(p.endpoints, p.timeoutMs, p.stream);
        } catch (err) {
          record(report, rtts, { seq, status: "lost", bytes: 0, rttMs: null, detail: (err as Error).message }, p);
          await p.stop.sleep(t0 + p.intervalMs - performance.now());
          continue;
        }
      }
      const line = makeLine(p.size, seq);
      link.write(line);
      const got = await link.reply(p.size, t0 + p.timeoutMs, p.stop);
      const rtt = performance.now() - t0;
      if (got === "stopped") break;
      if (got === "timeout" || got === "closed") {
        const detail = got === "timeout" ? `no reply within ${p.timeoutMs} ms` : "connection closed by the server";
        record(report, rtts, { seq, status: "lost", bytes: 0, rttMs: null, detail }, p);
        link.close(); // the stream is out of step now: start the next line afresh
        link = null;
      } else {
        record(report, rtts, judge(seq, line, got, rtt), p);
      }
      if (seq < p.count) await p.stop.sleep(t0 + p.intervalMs - performance.now());
    }
  } finally {
    link?.close();
  }
  return finish(report, rtts);
}

type UdpOutcome = { data: Uint8Array } | { error: unknown } | "timeout" | "stopped";

/** UDP: one connected socket; a reply is matched to its datagram by the sequence number. */
export async function pingUdp(p: PingParams): Promise<PingReport> {
  const ep = p.endpoints[0]!;
  let current: { seq: number; settle(o: UdpOutcome): void } | null = null;
  let lastSeq = 0;
  let late = 0;
  const socket = await openUdp(ep, {
    datagram(data) {
      const seq = readSeq(data);
      if (current !== null && (seq === current.seq || seq < 1 || seq > lastSeq)) current.settle({ data });
      else if (seq >= 1 && seq <= lastSeq) late++; // an answer to a datagram already given up
    },
    error(err) {
      current?.settle({ error: err });
    },
  });
  const report = newReport(p, ep.address, "udp");
  p.onStart(ep.address);
  const rtts: number[] = [];
  try {
    for (let seq = 1; seq <= p.count && !p.stop.stopped; seq++) {
      const t0 = performance.now();
      const line = makeLine(p.size, seq);
      lastSeq = seq;
      const outcome = await new Promise<UdpOutcome>((resolve) => {
        let done = false;
        const settle = (o: UdpOutcome) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          off();
          current = null;
          resolve(o);
        };
        const timer = setTimeout(() => settle("timeout"), p.timeoutMs);
        const off = p.stop.on(() => settle("stopped"));
        current = { seq, settle };
        try {
          if (!socket.send(line)) settle({ error: new Error("send buffer full") });
        } catch (err) {
          settle({ error: err });
        }
      });
      const rtt = performance.now() - t0;
      if (outcome === "stopped") break;
      if (outcome === "timeout") {
        record(report, rtts, { seq, status: "lost", bytes: 0, rttMs: null, detail: `no reply within ${p.timeoutMs} ms` }, p);
      } else if ("error" in outcome) {
        record(report, rtts, { seq, status: "lost", bytes: 0, rttMs: null, detail: udpErrorText(outcome.error) }, p);
      } else {
        record(report, rtts, judge(seq, line, outcome.data, rtt), p);
      }
      if (seq < p.count) await p.stop.sleep(t0 + p.intervalMs - performance.now());
    }
  } finally {
    socket.close();
  }
  report.late = late;
  return finish(report, rtts);
}
