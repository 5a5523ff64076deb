// Getting listening sockets: TCP listeners (dual stack with its fallbacks, or
// the --listen addresses), adopting descriptors inherited from systemd, and
// applying --backlog for real. (UDP sockets per address: udp-sockets.ts.)
import { StartupError } from "../core/startup-error.ts";
import type { SocketHandler, TCPSocketListener } from "bun";
import type { udp } from "bun";
import { errnoName, errorCode, errorText } from "../core/error-text.ts";
import { libc } from "../sys/libc-on-demand.ts";
import type { Logger } from "../sys/log.ts";

export class BindError extends StartupError {}

export interface Bound<T> {
  sockets: T[];
  port: number;
}

type TcpHandlers<D> = SocketHandler<D>;
type UdpHandlers = udp.SocketHandler<"uint8array">;

// Bun's fd-adopting forms are missing from its TypeScript overloads.
type ListenOnFd = <D>(opts: { fd: number; socket: TcpHandlers<D>; allowHalfOpen: boolean }) => TCPSocketListener<D>;
type UdpOnFd = (opts: { fd: number; socket: UdpHandlers; binaryType: "uint8array" }) => Promise<udp.Socket<"uint8array">>;

/** Why a bind failed, in words an operator can act on (also used by the metrics listener). */
export function bindFailureReason(err: unknown): string {
  const code = errorCode(err);
  if (code === "EACCES" || code === "EPERM") return `permission denied (${code}; ports below 1024 need CAP_NET_BIND_SERVICE)`;
  return errorText(err);
}

const fatal = (code: string | undefined) => code === "EADDRINUSE" || code === "EACCES" || code === "EPERM";

/**
 * Bind one protocol on both stacks: one IPv6 socket on "::" takes IPv4 too,
 * because Bun clears IPV6_V6ONLY on it, with or without SO_REUSEPORT, even
 * under net.ipv6.bindv6only=1 (test/e2e/dual-stack.test.ts fails should a
 * Bun release stop doing so). Without IPv6 (the bind on "::" fails for another
 * reason than the port), IPv4 alone.
 */
function bindDualStack<D>(proto: "TCP" | "TLS", port: number, open: (host: string, port: number) => TCPSocketListener<D>, log: Logger): Bound<TCPSocketListener<D>> {
  try {
    const v6 = open("::", port);
    return { sockets: [v6], port: v6.port };
  } catch (err) {
    if (fatal(errorCode(err))) throw new BindError(`cannot listen on ${proto} port ${port}: ${bindFailureReason(err)}`);
    log.warn(`no IPv6 for ${proto} (${bindFailureReason(err)}): listening on IPv4 only`);
  }
  try {
    const v4 = open("0.0.0.0", port);
    return { sockets: [v4], port: v4.port };
  } catch (err) {
    throw new BindError(`cannot listen on ${proto} port ${port}: ${bindFailureReason(err)}`);
  }
}

/** Where and how a TCP (or TLS) listener binds. */
export interface TcpBindOptions {
  /** --listen addresses; empty = every address, dual stack. */
  addresses: readonly string[];
  port: number;
  /** SO_REUSEPORT (--reuse-port): other processes of the same user may bind the same port. */
  reusePort: boolean;
}

// Bun.listen takes reusePort, though its types put it on the connect options only.
export type ListenWithReusePort = <D>(opts: { hostname: string; port: number; allowHalfOpen: boolean; reusePort: boolean; socket: TcpHandlers<D> }) => TCPSocketListener<D>;

/**
 * Listen for TCP: on every address, dual stack, when no addresses are given;
 * otherwise on exactly these (port 0: the kernel picks for the first, the
 * others follow). A failure names the address and closes what was opened.
 */
export function bindTcp<D>(proto: "TCP" | "TLS", where: TcpBindOptions, handlers: TcpHandlers<D>, log: Logger): Bound<TCPSocketListener<D>> {
  const open = (hostname: string, port: number) => {
    const listen = Bun.listen as unknown as ListenWithReusePort;
    return listen<D>({ hostname, port, allowHalfOpen: true, reusePort: where.reusePort, socket: handlers });
  };
  if (where.addresses.length === 0) {
    return bindDualStack(proto, where.port, open, log);
  }
  for (const address of where.addresses) {
    const missing = missingInterface(address);
    if (missing !== null) throw new BindError(`cannot listen on ${address}: no interface ${missing}`);
  }
  const sockets: TCPSocketListener<D>[] = [];
  let bound = where.port;
  for (const address of where.addresses) {
    try {
      const listener = open(address, bound);
      sockets.push(listener);
      bound = listener.port;
    } catch (err) {
      for (const l of sockets) l.stop(true);
      throw new BindError(`cannot listen on ${proto} ${address} port ${bound}: ${bindFailureReason(err)}`);
    }
  }
  return { sockets, port: bound };
}

/** The interface a literal's zone names (fe80::1%eth0) when there is no such interface; Bun's own error would not say why. */
function missingInterface(literal: string): string | null {
  const zone = literal.indexOf("%");
  if (zone < 0 || /^[0-9]+$/.test(literal.slice(zone + 1))) return null;
  const name = literal.slice(zone + 1);
  return libc().interfaceIndex(name) === 0 ? name : null;
}

/**
 * Receive buffer asked for on UDP sockets. The kernel default (~208 KiB) holds
 * only ~100 datagrams of a burst: with 1,000 peers one datagram in flight
 * each, 6 % were dropped before the server saw them (stress scenario 6); with
 * 4 MiB, none. Linux caps it at net.core.rmem_max.
 */
export const UDP_RCVBUF = 4 * 1024 * 1024;

/** Raise a UDP socket's receive buffer to UDP_RCVBUF (never lower one set larger, e.g. by ReceiveBuffer=). */
export function raiseUdpReceiveBuffer(fd: number): void {
  // getsockopt reports twice the size asked (the kernel's bookkeeping share).
  const lib = libc();
  const now = lib.getsockoptInt(fd, lib.SOL_SOCKET, lib.SO_RCVBUF);
  if (now >= 0 && now < 2 * UDP_RCVBUF) lib.setsockoptInt(fd, lib.SOL_SOCKET, lib.SO_RCVBUF, UDP_RCVBUF);
}

/** Take over a listening TCP socket passed by systemd (or handed over by a re-exec). */
export function adoptTcp<D>(fd: number, handlers: TcpHandlers<D>, allowHalfOpen = true): TCPSocketListener<D> {
  try {
    return (Bun.listen as unknown as ListenOnFd)<D>({ fd, allowHalfOpen, socket: handlers });
  } catch (err) {
    throw new BindError(`cannot adopt the TCP socket passed as fd ${fd}: ${bindFailureReason(err)}`);
  }
}

/** Take over a bound UDP socket passed by systemd. */
export async function adoptUdp(fd: number, handlers: UdpHandlers): Promise<udp.Socket<"uint8array">> {
  try {
    const socket = await (Bun.udpSocket as unknown as UdpOnFd)({ fd, binaryType: "uint8array", socket: handlers });
    raiseUdpReceiveBuffer(fd);
    return socket;
  } catch (err) {
    throw new BindError(`cannot adopt the UDP socket passed as fd ${fd}: ${bindFailureReason(err)}`);
  }
}

/** The port a descriptor is bound to (adopted listeners report none themselves). */
export function boundPort(fd: number): number {
  const name = libc().getsockname(fd);
  return typeof name === "number" ? 0 : name.port;
}

export function listenerFd(listener: TCPSocketListener<unknown>): number {
  return (listener as unknown as { fd: number }).fd;
}

/** Bun listens with a fixed backlog (512); listen(2) again updates it in place (bindTcp's caller applies --backlog). */
export function applyBacklog(listeners: readonly TCPSocketListener<unknown>[], backlog: number, log: Logger): void {
  for (const listener of listeners) {
    const rc = libc().listen(listenerFd(listener), backlog);
    if (rc < 0) log.warn("could not apply --backlog", { backlog, error: errnoName(rc) });
  }
}
