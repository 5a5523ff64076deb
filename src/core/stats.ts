// Counters of the whole server, the table of recent UDP peers and the set of
// every UDP peer ever seen. Plain numbers bumped on the hot path; nothing
// here allocates per line.
import type { CommandName } from "./commands.ts";
import { PeerFingerprintSet, type FingerprintState } from "./peer-fingerprints.ts";

/** What a datagram did to the window table: its peer was in it, was added, or did not fit. */
export type PeerTouch = "known" | "new" | "unrecorded";

/** Distinct UDP (address, port) peers seen within the window, with a hard cap. */
export class UdpPeerTable {
  /** key "address port" -> time of the last datagram (ms). Insertion order = first seen. */
  private readonly lastSeen = new Map<string, number>();

  constructor(
    readonly windowMs: number,
    readonly cap: number,
  ) {}

  /** Record a datagram from the peer. */
  touch(address: string, port: number, nowMs: number): PeerTouch {
    const map = this.lastSeen;
    const before = map.size;
    const key = address + " " + port;
    map.set(key, nowMs);
    if (map.size === before) return "known";
    if (before >= this.cap) {
      map.delete(key);
      return "unrecorded";
    }
    return "new";
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

  /** The peers within the window, each with how long ago (ms) it was last heard, oldest first. */
  ages(nowMs: number): [peer: string, ageMs: number][] {
    this.sweep(nowMs);
    return [...this.lastSeen].map(([key, seen]) => [key, nowMs - seen]);
  }

  /** Take over the peers of ages() (another process's clock: only the ages count), as far as the cap allows. */
  restore(ages: readonly [string, number][], nowMs: number): void {
    for (const [key, age] of ages) {
      if (this.lastSeen.size >= this.cap) break;
      this.lastSeen.set(key, nowMs - age);
    }
  }
}

/** The plain counters of Stats that keep counting across a hand-over (the live figures, connected clients and queued output, do not). */
export const CARRIED_COUNTERS = [
  "tcpAccepted",
  "tcpRejectedBusy",
  "tcpLines",
  "tcpOverflows",
  "tcpBytesIn",
  "tcpBytesOut",
  "udpDatagrams",
  "udpTruncated",
  "udpBytesIn",
  "udpBytesOut",
  "udpRateLimited",
  "udpPeersCounted",
  "proxyHeaderErrors",
] as const;

/** Everything /stats and /metrics have counted since start, as plain data: what a re-executed process carries on with. */
export interface StatsState {
  counters: Record<(typeof CARRIED_COUNTERS)[number], number>;
  udpLoopGuardDrops: Record<"low-port" | "own-port", number>;
  tlsHandshakes: { ok: number; failed: number };
  commands: Record<CommandName, number>;
  shutdownRejected: Record<string, number>;
  /** The --udp-window table: peer and ms since it was last heard. */
  peers: [string, number][];
  /** The set of every peer ever heard (total_clients counts each once). */
  peersEver: FingerprintState;
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
  /** Datagrams not answered by an echo-loop guard, by rule (source port below 1024 or 0; this server's own port). */
  readonly udpLoopGuardDrops = { "low-port": 0, "own-port": 0 };
  /** Datagrams not answered because their source address was over --udp-rate. */
  udpRateLimited = 0;
  /**
   * Distinct UDP peers over the process lifetime. Past the fingerprint set's
   * cap, a new peer counts when it enters the window table (so again after
   * --udp-window of silence), as long as that table has room.
   */
  udpPeersCounted = 0;
  /** Connections from a --proxy-protocol-from source closed for a missing, malformed or late PROXY header. */
  proxyHeaderErrors = 0;
  /** TLS handshakes on --tls-port, by outcome. */
  readonly tlsHandshakes = { ok: 0, failed: 0 };
  readonly commands: Record<CommandName, number> = { time: 0, stats: 0, whoami: 0, instance: 0, shutdown: 0, unknown: 0 };
  readonly shutdownRejected: Record<string, number> = {};

  constructor(
    readonly udpPeers: UdpPeerTable,
    readonly udpPeersEver = new PeerFingerprintSet(),
  ) {}

  /** A datagram from (address, port): refresh the window table, count a peer never seen before; true when the table gained a peer. */
  udpPeerSeen(address: string, port: number, nowMs: number): boolean {
    const touch = this.udpPeers.touch(address, port, nowMs);
    if (touch === "known") return false;
    const ever = this.udpPeersEver.add(address, port);
    if (ever === "added" || (ever === "full" && touch === "new")) this.udpPeersCounted++;
    return touch === "new";
  }

  /** The counters as plain data (nothing shared with this object). */
  save(nowMs: number): StatsState {
    const counters = {} as StatsState["counters"];
    for (const name of CARRIED_COUNTERS) counters[name] = this[name];
    return {
      counters,
      udpLoopGuardDrops: { ...this.udpLoopGuardDrops },
      tlsHandshakes: { ...this.tlsHandshakes },
      commands: { ...this.commands },
      shutdownRejected: { ...this.shutdownRejected },
      peers: this.udpPeers.ages(nowMs),
      peersEver: this.udpPeersEver.state(),
    };
  }

  /** Carry on counting from a saved state (a fresh Stats: the live figures stay as they are). */
  restore(state: StatsState, nowMs: number): void {
    for (const name of CARRIED_COUNTERS) this[name] = state.counters[name];
    Object.assign(this.udpLoopGuardDrops, state.udpLoopGuardDrops);
    Object.assign(this.tlsHandshakes, state.tlsHandshakes);
    Object.assign(this.commands, state.commands);
    Object.assign(this.shutdownRejected, state.shutdownRejected);
    this.udpPeers.restore(state.peers, nowMs);
    this.udpPeersEver.restore(state.peersEver);
  }

  /** The /stats reply fields: total_clients, tcp_connected_now, udp_active. */
  snapshot(nowMs: number): [number, number, number] {
    return [this.tcpAccepted + this.udpPeersCounted, this.tcpConnected, this.udpPeers.active(nowMs)];
  }
}
