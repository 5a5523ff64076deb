// The TCP side: listening sockets, admission (--max-tcp), the idle sweep and
// the socket callbacks, which hand each event to its TcpConnection.
import type { Socket } from "bun";
import { fixedReply } from "../core/commands.ts";
import { TcpConnection, outputPolicy, type ConnectionContext } from "./tcp-connection.ts";
import { isLoopback, formatPeer } from "../core/peer.ts";
import type { Logger } from "../sys/log.ts";
import type { Stats } from "../core/stats.ts";
import type { CoarseClock } from "../core/clock.ts";
import type { ActivityWatch } from "./activity.ts";
import type { ProxySource } from "../core/proxy-header.ts";
import type { HeaderWait, ProxyGate } from "./proxy-gate.ts";

/** The service's settings; the connections get the part they need (ConnectionContext). */
export interface TcpServiceOptions extends Omit<ConnectionContext, "output"> {
  maxTcp: number;
  /** Seconds; 0 = never close idle clients. */
  idleTimeout: number;
  /** --proxy-protocol-from; null when off (then no connection pays for it). */
  proxyGate: ProxyGate | null;
  activity: ActivityWatch;
}

export class TcpService {
  readonly connections = new Set<TcpConnection>();
  private readonly context: ConnectionContext;
  private readonly log: Logger;
  private readonly stats: Stats;
  private readonly clock: CoarseClock;
  private nextId = 1;
  private busyWarnedAt = -Infinity;
  private busySinceWarn = 0;
  /** --max-tcp: clients served at once (lowered when the descriptor budget is applied after start). */
  maxTcp: number;
  /** --proxy-protocol-from, or null. */
  readonly proxyGate: ProxyGate | null;
  /** Connections whose PROXY header is still awaited (null without --proxy-protocol-from). */
  private readonly awaitingHeader: Map<TcpConnection, HeaderWait> | null;
  /** The next idle sweep, armed only while --idle-timeout is on and clients are connected. */
  private sweepTimer: ReturnType<typeof setTimeout> | null = null;
  private sweeping = true;

  constructor(private readonly opts: TcpServiceOptions) {
    this.log = opts.log;
    this.stats = opts.stats;
    this.clock = opts.clock;
    this.context = { ...opts, output: outputPolicy(opts.stats) };
    this.maxTcp = opts.maxTcp;
    this.proxyGate = opts.proxyGate;
    this.awaitingHeader = opts.proxyGate === null ? null : new Map();
  }

  /** The handlers for Bun.listen; `this` is bound once, no closure per event. */
  readonly handlers = {
    open: (socket: Socket<TcpConnection>) => this.accept(socket, undefined),
    // `data` is unset on a socket rejected as busy; it is closed at once, but be safe.
    data: (socket: Socket<TcpConnection>, data: Uint8Array) => {
      this.opts.activity.poke();
      socket.data?.onData(data);
    },
    drain: (socket: Socket<TcpConnection>) => socket.data?.onDrain(),
    end: (socket: Socket<TcpConnection>) => socket.data?.onEnd(),
    close: (socket: Socket<TcpConnection>, error?: Error) => this.closed(socket, error),
    // A client's resets and timeouts are its own business: debug, not warning, so they cannot flood the log.
    error: (socket: Socket<TcpConnection>, error: Error) => this.log.debug("connection error", { conn: socket.data?.id, error: error.message }),
  };

  /**
   * Close every client silent for longer than --idle-timeout, then sleep until
   * the earliest moment another one can be: no timer while nobody is connected,
   * at most one wake-up a second while somebody is.
   */
  private readonly sweepIdle = (): void => {
    this.sweepTimer = null;
    const limit = this.opts.idleTimeout;
    const now = this.clock.seconds;
    let due = Infinity;
    for (const conn of this.connections) {
      // Whole seconds on both sides: "> limit" guarantees at least `limit` real seconds of silence.
      if (now - conn.lastActive > limit) {
        this.log.debug("idle timeout, closing", { conn: conn.id, peer: conn.peer });
        conn.closeWhenFlushed();
      } else due = Math.min(due, conn.lastActive + limit + 1);
    }
    if (this.connections.size > 0) this.armSweep(Math.max(due === Infinity ? now + 1 : due, now + 1));
  };

  /** Sweep when the clock reads `second`, unless a sweep is already due. */
  private armSweep(second: number): void {
    if (this.sweepTimer === null && this.sweeping) this.sweepTimer = setTimeout(this.sweepIdle, this.clock.msUntil(second));
  }

  /** No more idle sweeps (the server is stopping). */
  stopSweeping(): void {
    this.sweeping = false;
    if (this.sweepTimer !== null) clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
  }


  /**
   * A new client socket (plain, or TLS once its handshake is done). `client` is
   * the client a PROXY header already named (TLS port: read before the handshake;
   * null: keep the real peer); undefined when no header was read yet: then a
   * peer in --proxy-protocol-from must send one first.
   */
  accept(socket: Socket<TcpConnection>, client: ProxySource | null | undefined): void {
    const address = socket.remoteAddress;
    const port = socket.remotePort;
    if (this.connections.size >= this.maxTcp) {
      this.rejectBusy(socket, address, port);
      return;
    }
    socket.setNoDelay(true);
    const conn = new TcpConnection(this.nextId++, socket, address, port, isLoopback(address), this.context);
    socket.data = conn;
    this.connections.add(conn);
    this.stats.tcpAccepted++;
    this.stats.tcpConnected++;
    this.opts.activity.poke();
    if (this.opts.idleTimeout > 0) this.armSweep(conn.lastActive + this.opts.idleTimeout + 1);
    if (this.log.traceOn) this.log.trace("accepted", { conn: conn.id, peer: conn.peer });
    if (client) conn.setClient(client);
    else if (client === undefined && this.awaitingHeader !== null && this.proxyGate!.applies(address)) this.awaitHeader(conn, socket);
  }

  private awaitHeader(conn: TcpConnection, socket: Socket<TcpConnection>): void {
    const wait = this.proxyGate!.wait(socket, conn.peer, (source) => {
      this.awaitingHeader!.delete(conn);
      if (source) conn.setClient(source);
    });
    this.awaitingHeader!.set(conn, wait);
  }

  private closed(socket: Socket<TcpConnection>, error?: Error): void {
    const conn = socket.data;
    if (!conn || !this.connections.delete(conn)) return;
    conn.onClose();
    if (this.awaitingHeader !== null) {
      this.awaitingHeader.get(conn)?.cancel();
      this.awaitingHeader.delete(conn);
    }
    this.stats.tcpConnected--;
    this.opts.activity.poke();
    if (this.log.traceOn) this.log.trace("closed", { conn: conn.id, peer: conn.peer, error: error?.message });
  }

  private rejectBusy(socket: Socket<TcpConnection>, address: string, port: number): void {
    this.stats.tcpRejectedBusy++;
    socket.write(fixedReply("busy"));
    socket.end();
    // One warning per 10 s at most, with the count since the last one.
    this.busySinceWarn++;
    const now = this.clock.seconds;
    if (now - this.busyWarnedAt >= 10) {
      this.log.warn("server busy, rejecting connections", {
        peer: formatPeer(address, port),
        max_tcp: this.maxTcp,
        rejected: this.busySinceWarn,
      });
      this.busyWarnedAt = now;
      this.busySinceWarn = 0;
    }
  }
}

