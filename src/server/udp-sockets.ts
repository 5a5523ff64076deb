// The UDP sockets, one per local address, so that a reply leaves from the
// address its datagram was sent to. A socket bound to the wildcard answers
// from whatever address the routing table picks (Bun has no IP_PKTINFO), and
// a client whose UDP socket is connected never sees a reply that comes from
// another address than the one it asked: a host's alias, a load balancer's
// VIP on lo, an anycast address. So, as NTP and DNS servers do, the wildcard
// is spread into one socket per address (getifaddrs), re-scanned every
// UDP_RESCAN_MS and on SIGHUP; --listen addresses are bound as given.
//
// Each socket is made through the ffi layer (socket, setsockopt, bind) and
// handed to Bun.udpSocket({ fd }), as socket activation does: that is also
// how SO_REUSEPORT gets set, which Bun.udpSocket has no option for. All of
// them share one set of handlers, hence one peer table and one set of
// counters: /stats does not change with the number of sockets.
import type { udp } from "bun";
import type { UdpSocket } from "./udp-server.ts";
import * as libc from "../sys/libc.ts";
import { errnoName } from "../core/error-text.ts";
import type { Logger } from "../sys/log.ts";
import { AF_INET, AF_INET6, decodeSockAddr, encodeSockAddr, isWildcard, withPort, type SockAddr } from "../core/sockaddr.ts";
import { adoptUdp, BindError, bindFailureReason, boundPort } from "./bind.ts";

type UdpHandlers = udp.SocketHandler<"uint8array">;

/** Where UDP listens: the given addresses, or every local address (of one family, for 0.0.0.0). */
export type UdpPlan = { kind: "fixed"; addresses: string[] } | { kind: "scan"; ipv4Only: boolean };

/** The plan for --listen: none (or ::) = every address; 0.0.0.0 = every IPv4 address; else exactly those. */
export function udpPlan(listen: readonly string[]): UdpPlan {
  if (listen.length === 0) return { kind: "scan", ipv4Only: false };
  if (listen.length === 1 && isWildcard(listen[0]!)) return { kind: "scan", ipv4Only: !listen[0]!.includes(":") };
  return { kind: "fixed", addresses: [...listen] };
}

/** How often the local addresses are re-read (also on SIGHUP). */
export const UDP_RESCAN_MS = 5000;
/** Most sockets opened for the wildcard: each is a descriptor from the headroom kept beside --max-tcp. */
export const MAX_SCANNED_ADDRESSES = 16;

export interface UdpSocketsOptions {
  plan: UdpPlan;
  handlers: UdpHandlers;
  log: Logger;
  /** Bind with SO_REUSEPORT (--reuse-port). */
  reusePort: boolean;
  /** Where the local addresses come from (tests replace it); getifaddrs(3) by default. */
  listAddresses?: () => libc.InterfaceAddress[] | number;
}

export class UdpSockets {
  private readonly open = new Map<string, UdpSocket>();
  /** Addresses whose bind failed, warned about once, retried at each scan. */
  private readonly failing = new Set<string>();
  private tooMany = false;
  /** getifaddrs failed at start: one wildcard socket instead, never re-scanned. */
  private wildcard = false;
  /** The last getifaddrs failed (warned once until it works again). */
  private unreadable = false;
  private scanning: Promise<void> | null = null;
  private closed = false;
  private timer: ReturnType<typeof setInterval> | null = null;
  port = 0;

  constructor(private readonly opts: UdpSocketsOptions) {}

  get sockets(): UdpSocket[] {
    return [...this.open.values()];
  }

  /**
   * Bind the plan's addresses on `port` (0: the kernel picks for the first,
   * the rest follow). A port in use, or any failure on a --listen address, is
   * a startup error; a scanned address that cannot be bound yet (an IPv6
   * address still in duplicate address detection) is retried at the next scan.
   */
  async start(port: number): Promise<void> {
    this.port = port;
    const plan = this.opts.plan;
    try {
      if (plan.kind === "fixed") {
        for (const literal of plan.addresses) {
          const addr = resolve(literal);
          await this.bindOne(addr, (err) => {
            throw new BindError(`cannot listen on UDP ${literal} port ${this.port}: ${bindFailureReason(err)}`);
          });
        }
      } else {
        const scanned = this.scan();
        if (scanned === null) return await this.bindWildcard(plan.ipv4Only);
        for (const addr of scanned) {
          await this.bindOne(addr, (err) => {
            if (isTransient(err)) return this.warnFailure(addr, err);
            throw new BindError(`cannot listen on UDP ${addr.text} port ${this.port}: ${bindFailureReason(err)}`);
          });
        }
        if (this.open.size === 0) throw new BindError(`cannot listen on UDP port ${port}: no local address could be bound`);
        this.timer = setInterval(() => void this.rescan(), UDP_RESCAN_MS);
        this.timer.unref();
      }
    } catch (err) {
      this.close();
      throw err;
    }
    this.logSet();
  }

  /** Re-read the local addresses: bind the new ones, close the gone ones, log the set when it changed. */
  rescan(): Promise<void> {
    if (this.opts.plan.kind !== "scan" || this.wildcard || this.closed) return Promise.resolve();
    this.scanning ??= this.rescanNow().finally(() => (this.scanning = null));
    return this.scanning;
  }

  private async rescanNow(): Promise<void> {
    const scanned = this.scan();
    if (scanned === null) return; // logged; keep the sockets there are
    const wanted = new Map(scanned.map((a) => [a.text, a]));
    let changed = false;
    for (const [text, socket] of this.open) {
      if (wanted.has(text)) continue;
      socket.close();
      this.open.delete(text);
      changed = true;
    }
    for (const text of this.failing) if (!wanted.has(text)) this.failing.delete(text);
    for (const [text, addr] of wanted) {
      if (this.closed) return;
      if (this.open.has(text)) continue;
      if (await this.bindOne(addr, (err) => this.warnFailure(addr, err))) changed = true;
    }
    if (changed) this.logSet();
  }

  /** Stop rescanning and close every socket. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    for (const socket of this.open.values()) socket.close();
    this.open.clear();
  }

  /**
   * getifaddrs failed (a sandbox without AF_NETLINK, say): rather than not
   * start, answer on the wildcard with one plain dual-stack socket, with the
   * old flaw that a reply to a secondary address may leave from another one.
   */
  private async bindWildcard(ipv4Only: boolean): Promise<void> {
    this.wildcard = true;
    const fail = (err: { code: string }) => {
      throw new BindError(`cannot listen on UDP port ${this.port}: ${bindFailureReason(err)}`);
    };
    let addr = encodeSockAddr(ipv4Only ? "0.0.0.0" : "::")!;
    const noIPv6 = (err: { code: string }) => (err.code === "EAFNOSUPPORT" ? undefined : fail(err));
    if (!(await this.bindOne(addr, ipv4Only ? fail : noIPv6, false))) {
      addr = encodeSockAddr("0.0.0.0")!;
      await this.bindOne(addr, fail);
    }
    this.opts.log.warn(`UDP on the wildcard ${addr.text} only: a reply to a secondary address may leave from another one`);
    this.logSet();
  }

  /** The local addresses the plan covers, at most MAX_SCANNED_ADDRESSES (warned once when there are more); null if they cannot be read. */
  private scan(): SockAddr[] | null {
    const plan = this.opts.plan;
    const found = (this.opts.listAddresses ?? libc.getifaddrs)();
    if (typeof found === "number") {
      // Once at warning level; a re-scan every 5 s must not repeat it.
      if (!this.unreadable) this.opts.log.warn("cannot read the local addresses (getifaddrs)", { error: errnoName(found) });
      else this.opts.log.debug("cannot read the local addresses (getifaddrs)", { error: errnoName(found) });
      this.unreadable = true;
      return null;
    }
    this.unreadable = false;
    const seen = new Map<string, SockAddr>();
    for (const entry of found) {
      const addr = decodeSockAddr(entry.addr);
      if (addr === null || (plan.kind === "scan" && plan.ipv4Only && addr.family !== AF_INET)) continue;
      seen.set(addr.text, addr);
    }
    const all = [...seen.values()];
    if (all.length > MAX_SCANNED_ADDRESSES && !this.tooMany) {
      this.tooMany = true;
      this.opts.log.warn(`more than ${MAX_SCANNED_ADDRESSES} local addresses: UDP answers on the first ${MAX_SCANNED_ADDRESSES} only; choose them with --listen`, {
        addresses: all.length,
      });
    }
    return all.slice(0, MAX_SCANNED_ADDRESSES);
  }

  /** Open, bind and adopt one socket; on failure call `failed` and return false. */
  private async bindOne(addr: SockAddr, failed: (err: { code: string }) => void, v6only = true): Promise<boolean> {
    const fd = libc.socket(addr.family, libc.SOCK_DGRAM | libc.SOCK_NONBLOCK | libc.SOCK_CLOEXEC);
    const fail = (rc: number) => {
      if (fd >= 0) libc.close(fd);
      failed({ code: errnoName(rc) });
      return false;
    };
    if (fd < 0) return fail(fd);
    if (addr.family === AF_INET6) libc.setsockoptInt(fd, libc.IPPROTO_IPV6, libc.IPV6_V6ONLY, v6only ? 1 : 0);
    if (this.opts.reusePort) {
      const rc = libc.setsockoptInt(fd, libc.SOL_SOCKET, libc.SO_REUSEPORT, 1);
      if (rc < 0) return fail(rc);
    }
    const rc = libc.bind(fd, withPort(addr.bytes, this.port));
    if (rc < 0) return fail(rc);
    const socket = await adoptUdp(fd, this.opts.handlers);
    if (this.closed) {
      socket.close();
      return false;
    }
    if (this.port === 0) this.port = boundPort(fd);
    this.open.set(addr.text, socket);
    this.failing.delete(addr.text);
    return true;
  }

  private warnFailure(addr: SockAddr, err: { code: string }): void {
    if (this.failing.has(addr.text)) return;
    this.failing.add(addr.text);
    this.opts.log.warn(`cannot listen on UDP ${addr.text} port ${this.port} yet: ${bindFailureReason(err)}; retrying every ${UDP_RESCAN_MS / 1000} s`);
  }

  private logSet(): void {
    this.opts.log.info(`UDP addresses: ${[...this.open.keys()].join(", ")}`, { port: this.port, sockets: this.open.size });
  }
}

/** EADDRNOTAVAIL: the address is there but not usable yet (IPv6 duplicate address detection). */
function isTransient(err: { code: string }): boolean {
  return err.code === "EADDRNOTAVAIL";
}

/** A --listen literal as a sockaddr; an interface name as the zone is looked up. */
function resolve(literal: string): SockAddr {
  const zone = literal.indexOf("%");
  let numeric = literal;
  if (zone >= 0 && !/^[0-9]+$/.test(literal.slice(zone + 1))) {
    const index = libc.interfaceIndex(literal.slice(zone + 1));
    if (index === 0) throw new BindError(`cannot listen on ${literal}: no interface ${literal.slice(zone + 1)}`);
    numeric = `${literal.slice(0, zone)}%${index}`;
  }
  const addr = encodeSockAddr(numeric);
  if (addr === null) throw new BindError(`cannot listen on ${literal}: not an address`);
  return addr;
}
