// Counters of the whole server and the table of recent UDP peers. Plain
// numbers bumped on the hot path; nothing here allocates per line.
import type { CommandName } from "./commands.ts";

/** Distinct UDP (address, port) peers seen within the window, with a hard cap. */
export class UdpPeerTable {
  /** key "address port" -> time of the last datagram (ms). Insertion order = first seen. */
  private readonly lastSeen = new Map<string, number>();

  constructor(
    private readonly windowMs: number,
    readonly cap: number,
  ) {}

  /** Record a datagram; true when the peer is new to the table (counts as a client). */
  touch(address: string, port: number, nowMs: number): boolean {
    const map = this.lastSeen;
    const before = map.size;
    const key = address + " " + port;
    map.set(key, nowMs);
    if (map.size === before) return false;
    if (before >= this.cap) {
      map.delete(key);
      return false;
    }
    return true;
  }

  /** Drop peers silent for longer than the window; returns how many remain. */
  sweep(nowMs: number): number {
    const oldest = nowMs - this.windowMs;
    for (const [key, seen] of this.lastSeen) {
      if (seen <= oldest) this.lastSeen.delete(key);
    }
    return this.lastSeen.size;
  }

  /** Peers seen within the window, exact at nowMs. */
  active(nowMs: number): number {
    return this.sweep(nowMs);
  }
}

export class Stats {
  tcpAccepted = 0;
  tcpRejectedBusy = 0;
  tcpConnected = 0;
  tcpLines = 0;
  tcpOverflows = 0;
  tcpBytesIn = 0;
  tcpBytesOut = 0;
  /** Bytes accepted from clients and not yet taken by the kernel. */
  tcpPendingOutput = 0;
  udpDatagrams = 0;
  udpTruncated = 0;
  udpBytesIn = 0;
  udpBytesOut = 0;
  /** Distinct UDP peers ever counted (a peer that aged out and came back counts again). */
  udpPeersCounted = 0;
  /** Connections from a --proxy-protocol-from source closed for a missing, malformed or late PROXY header. */
  proxyHeaderErrors = 0;
  /** TLS handshakes on --tls-port, by outcome. */
  readonly tlsHandshakes = { ok: 0, failed: 0 };
  readonly commands: Record<CommandName, number> = { time: 0, stats: 0, whoami: 0, instance: 0, shutdown: 0, unknown: 0 };
  readonly shutdownRejected: Record<string, number> = {};

  constructor(readonly udpPeers: UdpPeerTable) {}

  /** The /stats reply fields: total_clients, tcp_connected_now, udp_active. */
  snapshot(nowMs: number): [number, number, number] {
    return [this.tcpAccepted + this.udpPeersCounted, this.tcpConnected, this.udpPeers.active(nowMs)];
  }
}
