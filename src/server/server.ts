// Builds the running server from a plain Config: binds (or adopts) the
// sockets, wires the TCP and UDP services to shared counters, runs what has
// to happen after traffic (figures refresh, memory return), and owns the
// graceful stop. An idle server has no timer of its own.
import type { SocketHandler, TCPSocketListener } from "bun";
import type { Config } from "../core/config.ts";
import type { Logger } from "../sys/log.ts";
import { Stats, UdpPeerTable } from "../core/stats.ts";
import { CoarseClock } from "../core/clock.ts";
import { ActivityWatch } from "./activity.ts";
import { MemoryTrim } from "./memory-trim.ts";
import { CommandRunner } from "./command-runner.ts";
import { TcpService } from "./tcp-server.ts";
import type { TcpConnection } from "./tcp-connection.ts";
import { UdpService, type UdpSocket } from "./udp-server.ts";
import type { TlsFront, RawTlsSocket } from "./tls-server.ts";
import type { TlsCredentials } from "./tls-credentials.ts";
import { adoptTcp, adoptUdp, applyBacklog, bindTcp, boundPort, listenerFd, type Bound } from "./bind.ts";
import type { HandedSocket, Handover } from "../core/handover.ts";
import { UdpSockets, udpPlan } from "./udp-sockets.ts";

/** Peers in the --udp-window table at most; past it new peers are answered and counted in total_clients, not in udp_active. */
export const UDP_PEER_CAP = 65536;
/** How long a graceful stop may take before the remaining clients are cut off. */
export const STOP_DEADLINE_MS = 2000;
/** During a stop, a client with nothing owed and no input for this long is closed. */
const STOP_QUIET_MS = 100;
/**
 * With `deferSetup`, the setup steps that need the ffi layer but not the
 * first echo run this long after the sockets are up: not on the first turns
 * of the event loop, which serve the clients already waiting (the first echo
 * here comes ~1 ms after "listening"), and loading the ffi layer then would
 * delay them by ~0.5 ms.
 */
export const DEFERRED_SETUP_MS = 10;

export interface AdoptedSockets {
  tcp: number[];
  udp: number[];
}

export interface ServerOptions {
  log: Logger;
  token: Uint8Array | null;
  /** The name /instance answers (--instance, or the hostname), asked for when first needed. */
  instance: () => string;
  /** Descriptors from socket activation; they replace binding for their protocol. */
  adopted?: AdoptedSockets;
  /** Called once when a stop begins (signal or /shutdown), before clients are drained. */
  onStopping?(reason: string): void;
  /** Called once a second while there is traffic, once after it stops, and when UDP peers age out. */
  onFiguresChanged?(): void;
  /** The certificate and key for config.tls (loaded by the caller: a bad pair is a startup error). */
  tlsCredentials?: TlsCredentials;
  /**
   * Apply --backlog and tune the UDP wildcard (receive buffer, error queue)
   * DEFERRED_SETUP_MS after start instead of before "listening": then a start
   * that logs nothing calls no libc function before it serves. None of these
   * steps can fail the start.
   */
  deferSetup?: boolean;
  /** Runs in place of the first settle (the re-exec with the idle settings, src/server/handover.ts; see MemoryTrim). */
  firstRest?: () => Promise<boolean>;
  /** The sockets and counters of the process this one was re-executed from: adopted and carried on, nothing bound. */
  resume?: Handover;
}

/** What a hand-over needs from a server at rest. */
export interface RestState {
  sockets: HandedSocket[];
  udpScanned: boolean;
  stats: Stats;
}

export interface Server {
  readonly tcpPort: number;
  readonly udpPort: number;
  /** null without --tls-port. */
  readonly tlsPort: number | null;
  readonly stats: Stats;
  readonly config: Config;
  /** Begin a graceful stop; resolves once every client is closed or the deadline passed. */
  stop(reason: string): Promise<void>;
  /** Resolves when a stop has finished, whoever started it. */
  readonly stopped: Promise<void>;
  /** New TLS handshakes use these from now on; open connections are untouched. */
  useTlsCredentials(credentials: TlsCredentials): void;
  /** Re-read the local addresses now (SIGHUP) for the per-address UDP sockets; nothing for adopted or --listen sockets. */
  rescanAddresses(): Promise<void>;
  /** Serve at most this many TCP clients from now on (the descriptor budget, when applied after start). */
  limitClients(maxTcp: number): void;
  /**
   * For a hand-over: the sockets and counters, once every UDP reply of this
   * turn is sent; or why not now (a stop began, clients are connected or
   * in their TLS handshake).
   */
  restState(): RestState | string;
}

export async function startServer(config: Config, opts: ServerOptions): Promise<Server> {
  const { log } = opts;
  const deferred: (() => void)[] = [];
  const setup = (step: () => void) => (opts.deferSetup ? deferred.push(step) : step());
  const stats = new Stats(new UdpPeerTable(config.udpWindow * 1000, UDP_PEER_CAP));
  const clock = new CoarseClock();
  const commands = new CommandRunner(stats, log, opts.token, opts.instance);
  const trim = new MemoryTrim(stats, log, opts.firstRest);
  const resume = opts.resume;
  const handed = (kind: HandedSocket["kind"]) => resume?.sockets.filter((s) => s.kind === kind) ?? [];
  if (resume) stats.restore(resume.stats, performance.now());
  const activity = new ActivityWatch((quiet) => {
    opts.onFiguresChanged?.();
    trim.tick(quiet);
  });
  let stop: (reason: string) => Promise<void> = async () => {};

  const tcp = new TcpService({
    maxTcp: config.maxTcp,
    maxLine: config.maxLine,
    idleTimeout: config.idleTimeout,
    log,
    stats,
    clock,
    commands,
    activity,
    onShutdownRequest: () => void stop("/shutdown"),
    // PROXY and TLS code is loaded only when configured: a plain start does not pay for it.
    proxyGate: config.proxyProtocolFrom === null ? null : new (await import("./proxy-gate.ts")).ProxyGate(config.proxyProtocolFrom, stats, clock, log),
  });
  const udp = new UdpService({
    maxDatagram: config.maxDatagram,
    allowLowPorts: config.udpAllowLowPorts,
    rate: config.udpRate,
    log,
    stats,
    commands,
    activity,
  });

  /** The plain or TLS listeners: taken over from the process this one was re-executed from, or bound now; --backlog either way. */
  const listenTcp = <D>(proto: "TCP" | "TLS", port: number, handlers: SocketHandler<D>): Bound<TCPSocketListener<D>> => {
    if (resume) {
      const fds = handed(proto === "TCP" ? "tcp" : "tls").map((s) => s.fd);
      const sockets = fds.map((fd) => adoptTcp(fd, handlers));
      applyBacklog(sockets, config.backlog, log); // Bun listened again with its own
      return { sockets, port: boundPort(fds[0]!) };
    }
    const bound = bindTcp(proto, { addresses: config.listen, port, reusePort: config.reusePort }, handlers, log);
    setup(() => applyBacklog(bound.sockets, config.backlog, log));
    return bound;
  };
  const adopted = opts.adopted ?? { tcp: [], udp: [] };
  let listeners: TCPSocketListener<TcpConnection>[];
  let tcpPort: number;
  if (adopted.tcp.length > 0) {
    listeners = adopted.tcp.map((fd) => adoptTcp(fd, tcp.handlers));
    tcpPort = boundPort(listenerFd(listeners[0]!));
  } else {
    ({ sockets: listeners, port: tcpPort } = listenTcp("TCP", config.tcpPort, tcp.handlers));
  }

  // Adopted UDP sockets stay as systemd made them; otherwise the wildcard at once, one socket per address soon after (udp-sockets.ts).
  let udpAdopted: UdpSocket[] = [];
  let udpBound: UdpSockets | null = null;
  let udpPort: number;
  try {
    if (adopted.udp.length > 0) {
      udpAdopted = await Promise.all(adopted.udp.map((fd) => adoptUdp(fd, udp.handlers)));
      udpPort = boundPort(adopted.udp[0]!);
    } else {
      udpBound = new UdpSockets({ plan: udpPlan(config.listen), handlers: udp.handlers, log, reusePort: config.reusePort, setup });
      if (resume) await udpBound.resume([...handed("udp-wildcard"), ...handed("udp-address")], resume.udpScanned);
      else await udpBound.start(config.udpPort);
      udpPort = udpBound.port;
    }
  } catch (err) {
    for (const l of listeners) l.stop(true);
    throw err;
  }

  let tls: TlsFront | null = null;
  let tlsListeners: TCPSocketListener<RawTlsSocket["data"]>[] = [];
  let tlsPort: number | null = null;
  if (config.tls !== null) {
    if (!opts.tlsCredentials) throw new Error("startServer: config.tls without tlsCredentials");
    const { TlsFront } = await import("./tls-server.ts");
    tls = new TlsFront(opts.tlsCredentials, tcp, tcp.proxyGate, stats);
    try {
      ({ sockets: tlsListeners, port: tlsPort } = listenTcp("TLS", config.tls.port, tls.handlers));
    } catch (err) {
      for (const l of listeners) l.stop(true);
      for (const s of udpAdopted) s.close();
      udpBound?.close();
      throw err;
    }
  }

  let stopping: Promise<void> | null = null;
  // Not new Promise(executor): the constructor's first call costs a start ~85 µs.
  const { promise: stopped, resolve: markStopped } = Promise.withResolvers<void>();

  stop = (reason: string) => {
    stopping ??= (async () => {
      log.info("stopping", { reason, clients: tcp.connections.size });
      opts.onStopping?.(reason);
      for (const l of [...listeners, ...tlsListeners]) l.stop(false);
      for (const s of udpAdopted) s.close();
      udpBound?.close();
      activity.stop();
      trim.stop();
      tcp.stopSweeping();
      udp.stopSweeping();
      await drain(tcp);
      log.info("stopped", { lines: stats.tcpLines, datagrams: stats.udpDatagrams });
      markStopped();
    })();
    return stopping;
  };

  if (deferred.length > 0) {
    setTimeout(() => {
      if (stopping === null) for (const step of deferred) step();
    }, DEFERRED_SETUP_MS);
  }
  trim.settleAfterStart();
  if (!resume) {
    log.info(`listening (TCP port=${tcpPort}, UDP port=${udpPort})`, {
      tls_port: tlsPort ?? undefined,
      tcp: adopted.tcp.length > 0 ? "adopted" : undefined,
      udp: adopted.udp.length > 0 ? "adopted" : undefined,
    });
  }
  return {
    tcpPort,
    udpPort,
    tlsPort,
    stats,
    config,
    stop: (r) => stop(r),
    stopped,
    useTlsCredentials: (credentials) => tls?.use(credentials),
    rescanAddresses: () => udpBound?.rescan() ?? Promise.resolve(),
    limitClients: (maxTcp) => void (tcp.maxTcp = maxTcp),
    restState() {
      if (stopping !== null) return "stopping";
      const open = tcp.connections.size + (tls?.handshaking ?? 0);
      if (open > 0) return `${open} clients connected`;
      udp.flushReplies();
      const sockets: HandedSocket[] = [
        ...listeners.map((l) => ({ fd: listenerFd(l), kind: "tcp" as const })),
        ...tlsListeners.map((l) => ({ fd: listenerFd(l), kind: "tls" as const })),
        ...(udpBound?.handed() ?? []),
      ];
      return { sockets, udpScanned: udpBound?.scannedAlready ?? false, stats };
    },
  };
}

/**
 * Let connected clients finish: keep answering what they send, close each one
 * once it owes nothing and has gone quiet, and cut off the rest at the deadline.
 */
async function drain(tcp: TcpService): Promise<void> {
  const deadline = performance.now() + STOP_DEADLINE_MS;
  const readsSeen = new Map<TcpConnection, number>();
  while (tcp.connections.size > 0 && performance.now() < deadline) {
    for (const conn of tcp.connections) {
      if (conn.owesNothing && readsSeen.get(conn) === conn.reads) conn.closeWhenFlushed();
      readsSeen.set(conn, conn.reads);
    }
    await Bun.sleep(STOP_QUIET_MS);
  }
  for (const conn of tcp.connections) conn.terminate();
}
