// The UDP sockets, so that a reply leaves from the address its datagram was
// sent to. A socket bound to the wildcard answers from whatever address the
// routing table picks (Bun has no IP_PKTINFO), and a client whose UDP socket
// is connected never sees a reply that comes from another address than the
// one it asked: a host's alias, a load balancer's VIP on lo, an anycast
// address. So, as NTP and DNS servers do, every local address (getifaddrs)
// gets a socket of its own; --listen addresses are bound as given.
//
// For the wildcard, start() binds one dual-stack wildcard socket only (a port
// in use is a startup error there) and the per-address sockets follow once
// the server is serving. Linux hands a datagram to the most specific socket
// bound to its destination, so from then on the wildcard only gets datagrams
// for addresses that have no socket yet. It still answers them (from the
// source the route picks), and each one asks for a rescan (RescanTrigger: at
// most one a second, no timer while nothing arrives); SIGHUP rescans too.
//
// A specific socket may share the wildcard's port only if both have
// SO_REUSEADDR, and on Linux UDP that option would also let any local process
// bind one of our addresses on our port and take its datagrams. So it is on
// only around our own binds (on the new socket and the wildcard) and cleared
// on both right after.
//
// Each socket is made through the ffi layer (socket, setsockopt, bind) and
// handed to Bun.udpSocket({ fd }), as socket activation does: that is also
// how SO_REUSEPORT gets set, which Bun.udpSocket has no option for. The
// wildcard without --reuse-port is the exception: Bun.udpSocket binds it
// itself (openWildcard), so a start needs no ffi call to serve UDP. All of
// them share one set of handlers, hence one peer table and one set of
// counters: /stats does not change with the number of sockets.
import type { udp } from "bun";
import type { UdpSocket } from "./udp-server.ts";
import type { InterfaceAddress } from "../sys/libc.ts";
import { libc } from "../sys/libc-on-demand.ts";
import { errnoName, errorCode, errorText } from "../core/error-text.ts";
import type { Logger } from "../sys/log.ts";
import { AF_INET, AF_INET6, decodeSockAddr, encodeSockAddr, isWildcard, wildcardSockAddr, withPort, type SockAddr } from "../core/sockaddr.ts";
import { RescanTrigger } from "../core/rescan-trigger.ts";
import { adoptUdp, BindError, bindFailureReason, boundPort, raiseUdpReceiveBuffer } from "./bind.ts";
import type { HandedSocket } from "../core/handover.ts";

type UdpHandlers = udp.SocketHandler<"uint8array">;

/** Where UDP listens: the given addresses, or every local address (of one family, for 0.0.0.0). */
export type UdpPlan = { kind: "fixed"; addresses: string[] } | { kind: "scan"; ipv4Only: boolean };

/** The plan for --listen: none (or ::) = every address; 0.0.0.0 = every IPv4 address; else exactly those. */
export function udpPlan(listen: readonly string[]): UdpPlan {
  if (listen.length === 0) return { kind: "scan", ipv4Only: false };
  if (listen.length === 1 && isWildcard(listen[0]!)) return { kind: "scan", ipv4Only: !listen[0]!.includes(":") };
  return { kind: "fixed", addresses: [...listen] };
}

/**
 * The per-address sockets are bound this long after start. Not on the first
 * loop turn: a client already waiting is served over the first turns (a TCP
 * connection is accepted in one and read in the next; a UDP reply is sent on
 * the turn after its datagram), and a scan among them (~2 ms cold, 7
 * addresses) would delay its first echo by as much. Meanwhile the wildcard
 * answers everyone.
 */
export const FIRST_SCAN_DELAY_MS = 100;
/** Rescans asked for by datagrams on the wildcard start at least this far apart. */
export const RESCAN_GAP_MS = 1000;
/** Most per-address sockets: each is a descriptor from the headroom kept beside --max-tcp. */
export const MAX_SCANNED_ADDRESSES = 16;

export interface UdpSocketsOptions {
  plan: UdpPlan;
  handlers: UdpHandlers;
  log: Logger;
  /** Bind with SO_REUSEPORT (--reuse-port). */
  reusePort: boolean;
  /** Where the local addresses come from (tests replace it); getifaddrs(3) by default. */
  listAddresses?: () => InterfaceAddress[] | number;
  /** Runs a setup step the first datagram does not need (tuning the wildcard): at once by default, or later (startServer's deferSetup). */
  setup?: (step: () => void) => void;
}

interface Bound {
  socket: UdpSocket;
  fd: number;
}

export class UdpSockets {
  /** The per-address sockets, or the --listen ones, by address text. */
  private readonly open = new Map<string, Bound>();
  /** The scan plan's wildcard socket. */
  private wildcard: (Bound & { addr: SockAddr }) | null = null;
  /** Addresses whose bind failed, warned about once, retried at each scan. */
  private readonly failing = new Set<string>();
  private tooMany = false;
  /** A scan has read the local addresses: from then on a datagram on the wildcard asks for a rescan. */
  private scanned = false;
  /** The last getifaddrs failed (warned once until it works again). */
  private unreadable = false;
  private scanning: Promise<void> | null = null;
  private closed = false;
  /** Made on first use (rescans), not by a start: see `rescans`. */
  private trigger: RescanTrigger | null = null;
  /** The one scheduled rescan, if any. */
  private timer: ReturnType<typeof setTimeout> | null = null;
  port = 0;

  constructor(private readonly opts: UdpSocketsOptions) {}

  get sockets(): UdpSocket[] {
    const all = [...this.open.values()].map((b) => b.socket);
    if (this.wildcard !== null) all.push(this.wildcard.socket);
    return all;
  }

  /** A scan has read the local addresses (a hand-over carries it on). */
  get scannedAlready(): boolean {
    return this.scanned;
  }

  /** Every socket with its descriptor, for a hand-over. */
  handed(): HandedSocket[] {
    const out: HandedSocket[] = [...this.open].map(([address, b]) => ({ fd: b.fd, kind: "udp-address" as const, address }));
    if (this.wildcard !== null) out.push({ fd: this.wildcard.fd, kind: "udp-wildcard" });
    return out;
  }

  /**
   * Adopt the sockets of a hand-over instead of binding: the same wildcard
   * and per-address sockets, rescanned as before (the first scan still to
   * come if it had not run yet).
   */
  async resume(handed: readonly HandedSocket[], scanned: boolean): Promise<void> {
    for (const h of handed) {
      const wildcard = h.kind === "udp-wildcard";
      const socket = await adoptUdp(h.fd, wildcard ? this.wildcardHandlers() : this.opts.handlers);
      const name = libc().getsockname(h.fd);
      if (typeof name !== "number") this.port = name.port;
      if (wildcard) {
        this.wildcard = { socket, fd: h.fd, addr: wildcardSockAddr(typeof name === "number" || name.family === AF_INET6 ? AF_INET6 : AF_INET) };
        this.tuneWildcard(); // if Bun made it, adopting may have turned its error queue back on
      } else this.open.set(h.address!, { socket, fd: h.fd });
    }
    this.scanned = scanned;
    if (this.opts.plan.kind === "scan" && !scanned) this.schedule(FIRST_SCAN_DELAY_MS);
  }

  /**
   * Bind the --listen addresses on `port` (0: the kernel picks for the first,
   * the rest follow), or the wildcard, whose per-address sockets are bound by
   * a rescan FIRST_SCAN_DELAY_MS later. Any failure here is a startup error.
   */
  async start(port: number): Promise<void> {
    this.port = port;
    const plan = this.opts.plan;
    try {
      if (plan.kind === "fixed") await this.bindFixed(plan.addresses);
      else {
        // A plain start takes openWildcard only: the ffi path (bindWildcard) is not even linked.
        const addr = wildcardSockAddr(plan.ipv4Only ? AF_INET : AF_INET6);
        const handlers = this.wildcardHandlers();
        if (this.opts.reusePort || !(await this.openWildcard(addr, handlers))) await this.bindWildcard(addr, handlers);
        this.schedule(FIRST_SCAN_DELAY_MS);
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** Re-read the local addresses: bind the new ones, close the gone ones, log the set when it changed. */
  rescan(): Promise<void> {
    if (this.opts.plan.kind !== "scan" || this.closed) return Promise.resolve();
    this.scanning ??= this.rescanNow().finally(() => (this.scanning = null));
    return this.scanning;
  }

  /** Stop rescanning and close every socket. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const socket of this.sockets) socket.close();
    this.open.clear();
    this.wildcard = null;
  }

  /** The rescan trigger, made by the first rescan or wildcard datagram that needs it: a start does not (~20 µs on a first run). */
  private get rescans(): RescanTrigger {
    return (this.trigger ??= new RescanTrigger(RESCAN_GAP_MS));
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = null;
      this.rescans.fired();
      this.rescan().catch((err: unknown) => this.opts.log.warn("UDP address rescan failed", { error: errorText(err) }));
    }, delayMs);
    this.timer.unref();
  }

  /** A datagram reached the wildcard: its destination has no socket of its own (yet). */
  private readonly onWildcard = (): void => {
    // A rescan already scheduled (the first one, or one asked for) covers this datagram too.
    if (!this.scanned || this.closed || this.timer !== null) return;
    const delay = this.rescans.ask(performance.now());
    if (delay !== null) this.schedule(delay);
  };

  private async rescanNow(): Promise<void> {
    this.rescans.started(performance.now());
    const scanned = this.scan();
    if (scanned === null) return; // logged; keep the sockets there are
    const first = !this.scanned;
    this.scanned = true;
    const wanted = new Map(scanned.map((a) => [a.text, a]));
    let changed = first;
    for (const [text, { socket }] of this.open) {
      if (wanted.has(text)) continue;
      socket.close();
      this.open.delete(text);
      changed = true;
    }
    for (const text of this.failing) if (!wanted.has(text)) this.failing.delete(text);
    for (const [text, addr] of wanted) {
      if (this.closed) return;
      if (this.open.has(text)) continue;
      const bound = await this.bindOne(addr, this.opts.handlers, (err) => this.warnFailure(addr, err));
      if (bound === null) continue;
      this.open.set(text, bound);
      this.failing.delete(text);
      changed = true;
    }
    if (changed) this.logSet();
  }

  /** The --listen addresses, each exactly as given; any failure is a startup error. */
  private async bindFixed(addresses: readonly string[]): Promise<void> {
    for (const literal of addresses) {
      const addr = resolve(literal);
      const bound = await this.bindOne(addr, this.opts.handlers, (err) => {
        throw new BindError(`cannot listen on UDP ${literal} port ${this.port}: ${bindFailureReason(err)}`);
      });
      if (bound !== null) this.open.set(addr.text, bound);
    }
    this.logSet();
  }

  /** The wildcard could not be bound: a startup error. */
  private refuseWildcard(err: { code: string }): never {
    throw new BindError(`cannot listen on UDP port ${this.port}: ${bindFailureReason(err)}`);
  }

  /**
   * The dual-stack wildcard made through the ffi layer (with --reuse-port, or
   * when Bun could not bind it): IPv4 only for 0.0.0.0, or where the kernel
   * has no IPv6; bound without SO_REUSEADDR so that a port in use is refused.
   */
  private async bindWildcard(addr: SockAddr, handlers: UdpHandlers): Promise<void> {
    const fail = (err: { code: string }) => this.refuseWildcard(err);
    const noIPv6 = (err: { code: string }) => (err.code === "EAFNOSUPPORT" ? undefined : fail(err));
    let bound = await this.bindOne(addr, handlers, addr.family === AF_INET ? fail : noIPv6, { v6only: false });
    if (bound === null) {
      addr = wildcardSockAddr(AF_INET);
      bound = await this.bindOne(addr, handlers, fail);
    }
    if (bound !== null) this.wildcard = { ...bound, addr };
  }

  /** The handlers of the wildcard socket: its datagrams also ask for rescans. */
  private wildcardHandlers(): UdpHandlers {
    const data = this.opts.handlers.data!;
    return {
      ...this.opts.handlers,
      // Named parameters, not (...args): no array per datagram when the wildcard answers alone.
      data: (socket, buf, port, address, flags) => {
        this.onWildcard();
        return data(socket, buf, port, address, flags);
      },
    };
  }

  /**
   * The wildcard from Bun.udpSocket itself, which needs no ffi call: Bun binds
   * it without SO_REUSEADDR (a port in use is refused) and with IPV6_V6ONLY
   * off (checked under net.ipv6.bindv6only=1). It turns on the error queue and
   * packet info, which the sockets made here do not have: tuneWildcard() turns
   * them off and raises the receive buffer. False when Bun could not bind it
   * for another reason than the port (no IPv6, say): bindOne() then decides.
   */
  private async openWildcard(addr: SockAddr, handlers: UdpHandlers): Promise<boolean> {
    let socket: UdpSocket;
    try {
      socket = await Bun.udpSocket({ hostname: addr.text, port: this.port, binaryType: "uint8array", socket: handlers });
    } catch (err) {
      const code = errorCode(err) ?? "";
      if (code === "EADDRINUSE" || code === "EACCES" || code === "EPERM") this.refuseWildcard({ code });
      return false;
    }
    if (this.closed) {
      socket.close();
      return true;
    }
    this.port = socket.port;
    this.wildcard = { socket, fd: (socket as unknown as { fd: number }).fd, addr };
    (this.opts.setup ?? ((step) => step()))(() => this.tuneWildcard());
    return true;
  }

  /** The wildcard as the sockets made here are: no error queue, no packet info, the large receive buffer. */
  private tuneWildcard(): void {
    const w = this.wildcard;
    if (w === null || this.closed) return;
    const lib = libc();
    lib.setsockoptInt(w.fd, lib.IPPROTO_IP, lib.IP_RECVERR, 0);
    if (w.addr.family === AF_INET6) {
      lib.setsockoptInt(w.fd, lib.IPPROTO_IPV6, lib.IPV6_RECVERR, 0);
      lib.setsockoptInt(w.fd, lib.IPPROTO_IPV6, lib.IPV6_RECVPKTINFO, 0);
    } else {
      lib.setsockoptInt(w.fd, lib.IPPROTO_IP, lib.IP_PKTINFO, 0);
    }
    raiseUdpReceiveBuffer(w.fd);
  }

  /**
   * The local addresses the plan covers, at most MAX_SCANNED_ADDRESSES (warned
   * once when there are more); null if they cannot be read (getifaddrs fails
   * in a sandbox without AF_NETLINK, say): warned once, and until a scan
   * works the wildcard answers alone.
   */
  private scan(): SockAddr[] | null {
    const found = (this.opts.listAddresses ?? libc().getifaddrs)();
    if (typeof found === "number") {
      if (!this.unreadable) {
        this.opts.log.warn("cannot read the local addresses (getifaddrs)", { error: errnoName(found) });
        if (!this.scanned) this.opts.log.warn(`UDP on the wildcard ${this.wildcard?.addr.text} only: a reply to a secondary address may leave from another one`);
      } else {
        this.opts.log.debug("cannot read the local addresses (getifaddrs)", { error: errnoName(found) });
      }
      this.unreadable = true;
      return null;
    }
    this.unreadable = false;
    const ipv4Only = this.wildcard?.addr.family === AF_INET;
    const seen = new Map<string, SockAddr>();
    for (const entry of found) {
      const addr = decodeSockAddr(entry.addr);
      if (addr === null || (ipv4Only && addr.family !== AF_INET)) continue;
      seen.set(addr.text, addr);
    }
    const all = [...seen.values()];
    if (all.length > MAX_SCANNED_ADDRESSES && !this.tooMany) {
      this.tooMany = true;
      this.opts.log.warn(
        `more than ${MAX_SCANNED_ADDRESSES} local addresses: UDP has sockets for the first ${MAX_SCANNED_ADDRESSES}, the wildcard answers the others (from the address the route picks); choose them with --listen`,
        { addresses: all.length },
      );
    }
    return all.slice(0, MAX_SCANNED_ADDRESSES);
  }

  /** Open, bind and adopt one socket; on failure call `failed` and return null. */
  private async bindOne(addr: SockAddr, handlers: UdpHandlers, failed: (err: { code: string }) => void, how = { v6only: true }): Promise<Bound | null> {
    const lib = libc();
    const fd = lib.socket(addr.family, lib.SOCK_DGRAM | lib.SOCK_NONBLOCK | lib.SOCK_CLOEXEC);
    const fail = (rc: number) => {
      if (fd >= 0) lib.close(fd);
      failed({ code: errnoName(rc) });
      return null;
    };
    if (fd < 0) return fail(fd);
    if (addr.family === AF_INET6) lib.setsockoptInt(fd, lib.IPPROTO_IPV6, lib.IPV6_V6ONLY, how.v6only ? 1 : 0);
    if (this.opts.reusePort) {
      const rc = lib.setsockoptInt(fd, lib.SOL_SOCKET, lib.SO_REUSEPORT, 1);
      if (rc < 0) return fail(rc);
    }
    const rc = this.wildcard === null ? lib.bind(fd, withPort(addr.bytes, this.port)) : this.bindBesideWildcard(fd, addr, this.wildcard.fd);
    if (rc < 0) return fail(rc);
    const socket = await adoptUdp(fd, handlers);
    if (this.closed) {
      socket.close();
      return null;
    }
    if (this.port === 0) this.port = boundPort(fd);
    return { socket, fd };
  }

  /** bind(2) on the wildcard's port, with SO_REUSEADDR on both sockets for that moment only (see the top of this file). */
  private bindBesideWildcard(fd: number, addr: SockAddr, wildcardFd: number): number {
    const lib = libc();
    const reuse = (on: 0 | 1) => {
      lib.setsockoptInt(fd, lib.SOL_SOCKET, lib.SO_REUSEADDR, on);
      lib.setsockoptInt(wildcardFd, lib.SOL_SOCKET, lib.SO_REUSEADDR, on);
    };
    reuse(1);
    const rc = lib.bind(fd, withPort(addr.bytes, this.port));
    reuse(0);
    return rc;
  }

  private warnFailure(addr: SockAddr, err: { code: string }): void {
    if (this.failing.has(addr.text)) return;
    this.failing.add(addr.text);
    this.opts.log.warn(
      `cannot listen on UDP ${addr.text} port ${this.port} yet: ${bindFailureReason(err)}; the wildcard answers it meanwhile, and a datagram to it (or SIGHUP) retries`,
    );
  }

  private logSet(): void {
    const listed = [...this.open.keys()].join(", ");
    const wildcard = this.wildcard?.addr.text;
    const text = wildcard === undefined ? listed : listed === "" ? `${wildcard} (the wildcard only)` : `${listed} (others on the wildcard ${wildcard})`;
    this.opts.log.info(`UDP addresses: ${text}`, { port: this.port, sockets: this.sockets.length });
  }
}

/** A --listen literal as a sockaddr; an interface name as the zone is looked up. */
function resolve(literal: string): SockAddr {
  const zone = literal.indexOf("%");
  let numeric = literal;
  if (zone >= 0 && !/^[0-9]+$/.test(literal.slice(zone + 1))) {
    const index = libc().interfaceIndex(literal.slice(zone + 1));
    if (index === 0) throw new BindError(`cannot listen on ${literal}: no interface ${literal.slice(zone + 1)}`);
    numeric = `${literal.slice(0, zone)}%${index}`;
  }
  const addr = encodeSockAddr(numeric);
  if (addr === null) throw new BindError(`cannot listen on ${literal}: not an address`);
  return addr;
}
