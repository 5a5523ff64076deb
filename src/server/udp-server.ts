// The UDP side: each datagram is one message, answered to its sender, unless
// an echo-loop guard or the per-source rate limit says not to answer at all.
import type { udp } from "bun";
import { fixedReply } from "../core/commands.ts";
import { commandEnd, SLASH } from "../core/framing.ts";
import { errorText } from "../core/error-text.ts";
import type { CommandRunner } from "./command-runner.ts";
import { isLoopback, formatPeer, plainAddress } from "../core/peer.ts";
import type { Logger } from "../sys/log.ts";
import type { Stats } from "../core/stats.ts";
import { SourceRateLimiter } from "../core/source-rate-limit.ts";
import { WarnThrottle } from "../core/warn-throttle.ts";
import type { ActivityWatch } from "./activity.ts";

/** At most one warning per this many ms for each kind of unanswered datagram (own port, rate limit). */
const WARN_EVERY_MS = 10_000;

export type UdpSocket = udp.Socket<"uint8array">;

export interface UdpServiceOptions {
  maxDatagram: number;
  /** Answer source ports 1-1023 too (off by default: echo loops with other services). */
  allowLowPorts: boolean;
  /** Replies a second per non-loopback source address (burst the same); 0 = no limit. */
  rate: number;
  log: Logger;
  stats: Stats;
  commands: CommandRunner;
  activity: ActivityWatch;
}

export class UdpService {
  private readonly stats: Stats;
  private readonly log: Logger;
  private lowPortWarned = false;
  // Made when first needed, not at start (every class's first construction costs a start ~10 µs):
  // the throttles at the first datagram they refuse, the limiter at the first non-loopback one.
  private ownPortWarnings: WarnThrottle | null = null;
  private rateWarnings: WarnThrottle | null = null;
  private limiter: SourceRateLimiter | null = null;
  /** Replies of this event-loop turn: reply, port, address, reply, port, ... */
  private readonly batch: (Uint8Array | number | string)[] = [];
  private batchBytes = 0;
  private batchSocket: UdpSocket | null = null;
  /** Forgets peers past the window; armed only while the peer table holds any. */
  private sweepTimer: ReturnType<typeof setTimeout> | null = null;
  private sweeping = true;

  constructor(private readonly opts: UdpServiceOptions) {
    this.stats = opts.stats;
    this.log = opts.log;
  }

  readonly handlers = {
    data: (socket: UdpSocket, data: Uint8Array, port: number, address: string, flags: udp.ReceiveFlags) =>
      this.datagram(socket, data, port, address, flags.truncated),
    // Bun calls error(err) with `this` = the socket, not (socket, err) as its typings say.
    error: (err: unknown) => this.log.debug("udp socket error", { error: errorText(err) }),
  };

  /**
   * The window table only needs pruning to stay small (/stats counts the
   * window exactly when asked), so it is swept once a window while it holds peers.
   */
  private armSweep(): void {
    if (this.sweepTimer === null && this.sweeping) this.sweepTimer = setTimeout(this.sweepPeers, this.stats.udpPeers.windowMs);
  }

  private readonly sweepPeers = (): void => {
    this.sweepTimer = null;
    this.opts.activity.poke(); // the active-peer figure changes as peers age out
    if (this.stats.udpPeers.sweep(performance.now()) > 0) this.armSweep();
  };

  /** No more sweeps (the server is stopping). */
  stopSweeping(): void {
    this.sweeping = false;
    if (this.sweepTimer !== null) clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
  }

  private datagram(socket: UdpSocket, data: Uint8Array, port: number, address: string, truncated: boolean): void {
    const stats = this.stats;
    stats.udpDatagrams++;
    stats.udpBytesIn += data.length;
    this.opts.activity.poke();
    if (port === 0 || (port < 1024 && !this.opts.allowLowPorts)) {
      this.refuseLowPort(address, port);
      return;
    }
    const now = performance.now();
    // Another echo server on our port (the default 12345 on both, say) would answer us back forever.
    if (port === socket.port) {
      this.refuseOwnPort(address, port, now);
      return;
    }
    // The dual-stack wildcard socket shows IPv4 peers as ::ffff:a.b.c.d: one peer whichever socket it reached.
    const source = plainAddress(address);
    if (stats.udpPeerSeen(source, port, now)) this.armSweep();
    // Silently: an ERR reply would reflect too. Loopback cannot be forged from another host.
    if (this.opts.rate > 0 && !isLoopback(source) && !(this.limiter ??= new SourceRateLimiter(this.opts.rate)).take(source, now)) {
      this.rateLimited(address, port, now);
      return;
    }
    let reply = data;
    if (truncated || data.length > this.opts.maxDatagram) {
      stats.udpTruncated++;
      if (this.log.debugOn) this.log.debug("datagram truncated", { peer: formatPeer(address, port), bytes: data.length });
      reply = fixedReply("truncated");
    } else if (data[0] === SLASH) {
      reply = this.command(data, port, address);
    } else if (this.log.traceOn) {
      this.log.trace("datagram", { peer: formatPeer(address, port), bytes: data.length });
    }
    this.queueReply(socket, reply, port, address);
  }

  /**
   * Replies go out in batches, one sendmmsg(2) per event-loop turn: Bun hands
   * over every datagram of a turn before setImmediate callbacks run, and each
   * datagram's buffer is its own, so holding them until then is safe.
   */
  private queueReply(socket: UdpSocket, reply: Uint8Array, port: number, address: string): void {
    if (this.batchSocket !== socket) {
      this.flushReplies();
      this.batchSocket = socket;
    }
    const batch = this.batch;
    batch.push(reply, port, address);
    this.batchBytes += reply.length;
    if (batch.length === 3) setImmediate(this.flushReplies);
  }

  /** Send the replies queued in this turn now (at the turn's end, or before a hand-over). */
  readonly flushReplies = (): void => {
    const socket = this.batchSocket;
    const batch = this.batch;
    if (socket === null || batch.length === 0) return;
    const count = batch.length / 3;
    let sent = 0;
    try {
      if (!socket.closed) sent = socket.sendMany(batch);
    } catch (err) {
      // A failure here must never escape the timer callback and end the process.
      this.log.debug("udp send failed", { error: errorText(err), replies: count });
    }
    if (sent === count) {
      this.stats.udpBytesOut += this.batchBytes;
    } else {
      // The kernel's send buffer was full: the rest is dropped, as UDP does.
      for (let i = 0; i < sent; i++) this.stats.udpBytesOut += (batch[i * 3] as Uint8Array).length;
    }
    batch.length = 0;
    this.batchBytes = 0;
  };

  private command(data: Uint8Array, port: number, address: string): Uint8Array {
    const end = commandEnd(data, 0, data.length);
    const peer = formatPeer(address, port);
    const sender = { transport: "udp", loopback: isLoopback(address), clientAddress: address, clientPort: port, logFields: () => ({ peer }) } as const;
    return this.opts.commands.run(sender, data, 0, end).reply;
  }

  private refuseLowPort(address: string, port: number): void {
    this.stats.udpLoopGuardDrops["low-port"]++;
    if (!this.lowPortWarned) {
      this.lowPortWarned = true;
      this.log.warn("not answering UDP from source ports below 1024 (echo-loop guard; see --udp-allow-low-ports)", {
        peer: formatPeer(address, port),
      });
    }
  }

  private refuseOwnPort(address: string, port: number, now: number): void {
    this.stats.udpLoopGuardDrops["own-port"]++;
    const dropped = (this.ownPortWarnings ??= new WarnThrottle(WARN_EVERY_MS)).hit(now);
    if (dropped > 0) {
      this.log.warn("not answering UDP from this server's own port (echo-loop guard: another echo server on the same port, or a forged source)", {
        peer: formatPeer(address, port),
        dropped,
      });
    }
  }

  private rateLimited(address: string, port: number, now: number): void {
    this.stats.udpRateLimited++;
    const dropped = (this.rateWarnings ??= new WarnThrottle(WARN_EVERY_MS)).hit(now);
    if (dropped > 0) {
      this.log.warn(`UDP source over --udp-rate ${this.opts.rate}/s, replies dropped (raise --udp-rate, or 0 for no limit; loopback is exempt)`, {
        peer: formatPeer(address, port),
        dropped,
      });
    }
  }
}
