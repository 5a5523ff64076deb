// The UDP side: each datagram is one message, answered to its sender.
import type { udp } from "bun";
import { REPLY } from "./commands.ts";
import type { CommandRunner } from "./command-runner.ts";
import { isLoopback, formatPeer } from "./peer.ts";
import type { Logger } from "./log.ts";
import type { Stats } from "./stats.ts";

const LF = 0x0a;
const CR = 0x0d;
const SLASH = 0x2f;

export type UdpSocket = udp.Socket<"uint8array">;

export interface UdpServiceOptions {
  maxDatagram: number;
  /** Answer source ports 1-1023 too (off by default: echo loops with other services). */
  allowLowPorts: boolean;
  log: Logger;
  stats: Stats;
  commands: CommandRunner;
}

export class UdpService {
  private readonly stats: Stats;
  private readonly log: Logger;
  private lowPortWarned = false;

  constructor(private readonly opts: UdpServiceOptions) {
    this.stats = opts.stats;
    this.log = opts.log;
  }

  readonly handlers = {
    data: (socket: UdpSocket, data: Uint8Array, port: number, address: string, flags: udp.ReceiveFlags) =>
      this.datagram(socket, data, port, address, flags.truncated),
    // Bun calls error(err) with `this` = the socket, unlike its typings (field notes).
    error: (err: unknown) => this.log.debug("udp socket error", { error: describe(err) }),
  };

  private datagram(socket: UdpSocket, data: Uint8Array, port: number, address: string, truncated: boolean): void {
    const stats = this.stats;
    stats.udpDatagrams++;
    stats.udpBytesIn += data.length;
    if (port === 0 || (port < 1024 && !this.opts.allowLowPorts)) {
      this.refuseLowPort(address, port);
      return;
    }
    if (stats.udpPeers.touch(address, port, performance.now())) stats.udpPeersCounted++;
    let reply = data;
    if (truncated || data.length > this.opts.maxDatagram) {
      stats.udpTruncated++;
      if (this.log.debugOn) this.log.debug("datagram truncated", { peer: formatPeer(address, port), bytes: data.length });
      reply = REPLY.truncated;
    } else if (data[0] === SLASH) {
      reply = this.command(data, port, address);
    } else if (this.log.traceOn) {
      this.log.trace("datagram", { peer: formatPeer(address, port), bytes: data.length });
    }
    if (socket.send(reply, port, address)) stats.udpBytesOut += reply.length;
    else stats.udpDropped++;
  }

  private command(data: Uint8Array, port: number, address: string): Uint8Array {
    let end = data.length;
    if (end > 0 && data[end - 1] === LF) end--;
    if (end > 0 && data[end - 1] === CR) end--;
    const who = { peer: formatPeer(address, port) };
    return this.opts.commands.run("udp", isLoopback(address), data, 0, end, who).reply;
  }

  private refuseLowPort(address: string, port: number): void {
    this.stats.udpDropped++;
    if (!this.lowPortWarned) {
      this.lowPortWarned = true;
      this.log.warn("not answering UDP from source ports below 1024 (echo-loop guard; see --udp-allow-low-ports)", {
        peer: formatPeer(address, port),
      });
    }
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
