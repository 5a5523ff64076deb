// Command mode: send one /command, wait for its one-line reply.
import { openUdp, streamProto, TcpLink, udpErrorText, type Endpoint, type StreamOptions } from "./net.ts";
import type { CommandReport } from "./report.ts";
import type { Stopper } from "./stopper.ts";

export interface CommandParams {
  target: string;
  endpoints: Endpoint[];
  /** TCP only: TLS and/or a PROXY header first. */
  stream: StreamOptions;
  command: string;
  udp: boolean;
  timeoutMs: number;
  stop: Stopper;
}

const MAX_REPLY = 64 * 1024;
const encoder = new TextEncoder();

/** A command reply is protocol text, not echoed data: decoding it is fine. */
function replyText(bytes: Uint8Array): string {
  let end = bytes.length;
  if (end > 0 && bytes[end - 1] === 0x0a) end--;
  if (end > 0 && bytes[end - 1] === 0x0d) end--;
  return new TextDecoder().decode(bytes.subarray(0, end));
}

export async function sendCommand(p: CommandParams): Promise<CommandReport> {
  return p.udp ? commandUdp(p) : commandTcp(p);
}

async function commandTcp(p: CommandParams): Promise<CommandReport> {
  const link = await TcpLink.connect(p.endpoints, p.timeoutMs, p.stream);
  const report: CommandReport = { target: p.target, address: link.endpoint.address, proto: streamProto(p.stream), command: p.command, reply: null, rttMs: null };
  try {
    const t0 = performance.now();
    link.write(encoder.encode(p.command + "\n"));
    const got = await link.reply(MAX_REPLY, t0 + p.timeoutMs, p.stop);
    if (got instanceof Uint8Array) {
      report.reply = replyText(got);
      report.rttMs = performance.now() - t0;
    } else {
      report.error = got === "timeout" ? `no reply within ${p.timeoutMs} ms` : got === "closed" ? "connection closed by the server" : "interrupted";
    }
  } finally {
    link.close();
  }
  return report;
}

async function commandUdp(p: CommandParams): Promise<CommandReport> {
  const ep = p.endpoints[0]!;
  const report: CommandReport = { target: p.target, address: ep.address, proto: "udp", command: p.command, reply: null, rttMs: null };
  let settle: (o: Uint8Array | string) => void = () => {};
  const outcome = new Promise<Uint8Array | string>((resolve) => (settle = resolve));
  const socket = await openUdp(ep, {
    datagram: (data) => settle(data),
    error: (err) => settle(udpErrorText(err)),
  });
  const timer = setTimeout(() => settle(`no reply within ${p.timeoutMs} ms`), p.timeoutMs);
  const off = p.stop.on(() => settle("interrupted"));
  try {
    const t0 = performance.now();
    socket.send(encoder.encode(p.command));
    const got = await outcome;
    if (got instanceof Uint8Array) {
      report.reply = replyText(got);
      report.rttMs = performance.now() - t0;
    } else {
      report.error = got;
    }
  } finally {
    clearTimeout(timer);
    off();
    socket.close();
  }
  return report;
}
