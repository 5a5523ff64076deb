// The probe's sockets: name resolution, a TCP link that hands back one reply
// at a time (ping and command modes), and a connected UDP socket. Bytes only:
// nothing here decodes what the server sends.
import { isIPv4, isIPv6 } from "../core/ip-literal.ts";
import { WriteQueue } from "../core/write-queue.ts";
import { errorCode, errorText } from "../core/error-text.ts";
import type { Socket, SocketHandler, TLSOptions } from "bun";
import { encodeProxyHeader } from "../core/proxy-header.ts";
import type { udp } from "bun";
import type { Stopper } from "./stopper.ts";

/** Start-up failures (resolution, connect): the probe exits 2 on them. */
export class ProbeConnectError extends Error {}

export interface Endpoint {
  address: string;
  family: 4 | 6;
  port: number;
}

/** "host:port", or "[v6]:port". */
export function formatHostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Every address of host (a literal resolves to itself). */
export async function resolve(host: string, port: number): Promise<Endpoint[]> {
  if (isIPv4(host)) return [{ address: host, family: 4, port }];
  if (isIPv6(host)) return [{ address: host, family: 6, port }];
  try {
    // Loaded here, not at the top: the bundle is one file, and a static import
    // of a Node built-in would be evaluated at every start of the server too.
    const { lookup } = await import("node:dns/promises");
    const found = await lookup(host, { all: true });
    if (found.length === 0) throw Object.assign(new Error("no addresses"), { code: "ENOTFOUND" });
    return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4, port }));
  } catch (err) {
    throw new ProbeConnectError(`cannot resolve ${host}: ${errorText(err)}`);
  }
}

/** A UDP send's error: ECONNREFUSED there means the ICMP port-unreachable of an earlier datagram. */
export function udpErrorText(err: unknown): string {
  return errorCode(err) === "ECONNREFUSED" ? "port unreachable (ECONNREFUSED)" : errorText(err);
}

/** How a TCP stream is opened: plain, after a PROXY header, over TLS, or both (the header first, in clear). */
export interface StreamOptions {
  /** --tls: the CA to verify the server with (PEM), or null for --insecure; the name to verify. */
  tls: { ca: string | null; serverName: string } | null;
  /** --proxy v1|v2: a header naming this socket's own addresses is sent first. */
  proxy: 1 | 2 | null;
}

/** How a stream is labelled in the probe's reports. */
export function streamProto(stream: StreamOptions): "tcp" | "tls" {
  return stream.tls ? "tls" : "tcp";
}

/** A plain TCP stream: no TLS, no PROXY header. */
export const PLAIN: StreamOptions = { tls: null, proxy: null };

/**
 * Connect to ep; resolves with the socket that carries the lines, once lines
 * can be written: the PROXY header sent, the TLS handshake done (and the
 * certificate verified unless --insecure). Rejects with ProbeConnectError.
 */
export async function openStream<D>(ep: Endpoint, data: D, handlers: SocketHandler<D>, via: StreamOptions): Promise<Socket<D>> {
  const connect = <T>(h: SocketHandler<T>, d: T, tls?: TLSOptions) =>
    Bun.connect<T>({ hostname: ep.address, port: ep.port, data: d, allowHalfOpen: true, socket: h, tls });
  if (via.tls === null) {
    const socket = await connect(handlers, data);
    if (via.proxy !== null) socket.write(proxyHeader(via.proxy, socket));
    return socket;
  }
  const { ca, serverName } = via.tls;
  const tls = { ca: ca ?? undefined, rejectUnauthorized: ca !== null, serverName };
  let settle!: (err: Error | null) => void;
  const handshake = new Promise<Error | null>((resolve) => (settle = resolve));
  const secured: SocketHandler<D> = {
    ...handlers,
    handshake: (s, ok, err) => settle(ok || ca === null ? null : (err ?? new Error("TLS handshake failed"))),
    close: (s, err) => {
      settle(new Error("connection closed during the TLS handshake"));
      handlers.close?.(s, err);
    },
  };
  let socket: Socket<D>;
  if (via.proxy === null) socket = await connect(secured, data, tls);
  else {
    // The header goes first, in clear; TLS starts on the same connection after it.
    const raw = await connect<undefined>({ data: () => {}, close: () => settle(new Error("connection closed")), error: () => {} }, undefined);
    raw.write(proxyHeader(via.proxy, raw));
    socket = raw.upgradeTLS<D>({ tls, socket: secured, data })[1];
  }
  const err = await handshake;
  if (err !== null) {
    socket.terminate();
    throw new ProbeConnectError(`TLS: ${err.message}`);
  }
  return socket;
}

function proxyHeader(version: 1 | 2, s: Socket<unknown>): Uint8Array {
  return encodeProxyHeader(version, { address: s.localAddress, port: s.localPort }, { address: s.remoteAddress, port: s.remotePort });
}

export type ReplyResult = Uint8Array | "timeout" | "closed" | "stopped";

const LF = 0x0a;

/** One TCP connection that collects what the server sends and cuts it into replies. */
export class TcpLink {
  private buf = new Uint8Array(64 * 1024);
  private len = 0;
  /** Lines the kernel has not taken yet (each line is its own buffer: no copies). */
  private out: WriteQueue | null = null;
  private wake: (() => void) | null = null;
  private socket: Socket<TcpLink> | null = null;
  closed = false;

  private constructor(readonly endpoint: Endpoint) {}

  /** Connect to the first endpoint that answers within timeoutMs each. */
  static async connect(endpoints: Endpoint[], timeoutMs: number, via: StreamOptions): Promise<TcpLink> {
    let last: unknown = null;
    for (const ep of endpoints) {
      try {
        return await TcpLink.connectOne(ep, timeoutMs, via);
      } catch (err) {
        last = err;
      }
    }
    const where = formatHostPort(endpoints[0]!.address, endpoints[0]!.port);
    throw new ProbeConnectError(`cannot connect to ${where}: ${last instanceof ProbeConnectError ? last.message : errorText(last)}`);
  }

  private static async connectOne(ep: Endpoint, timeoutMs: number, via: StreamOptions): Promise<TcpLink> {
    const link = new TcpLink(ep);
    let abandoned = false;
    const attempt = openStream<TcpLink>(
      ep,
      link,
      {
        data: (s, chunk) => s.data.received(chunk),
        drain: (s) => void s.data.out?.flush(),
        end: (s) => s.data.gone(),
        close: (s) => s.data.gone(),
        error: (s) => s.data.gone(),
        connectError: () => {},
      },
      via,
    );
    let timer: Timer | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        abandoned = true;
        reject(new ProbeConnectError(`no connection within ${timeoutMs} ms`));
      }, timeoutMs);
    });
    attempt.then(
      (s) => abandoned && s.terminate(),
      () => {},
    );
    try {
      const socket = await Promise.race([attempt, timeout]);
      socket.setNoDelay(true);
      link.socket = socket;
      link.out = new WriteQueue(socket);
      return link;
    } finally {
      clearTimeout(timer);
    }
  }

  write(data: Uint8Array): void {
    if (this.closed || this.socket === null) return;
    this.out?.write(data);
  }

  /**
   * The next reply: the bytes up to and including the first LF, or the first
   * `max` bytes when no LF comes before them. Waits until `deadline`
   * (performance.now() ms) or until `stop` is triggered.
   */
  async reply(max: number, deadline: number, stop: Stopper): Promise<ReplyResult> {
    const off = stop.on(() => this.wake?.());
    try {
      for (;;) {
        const r = this.take(max);
        if (r !== null) return r;
        if (this.closed) return "closed";
        if (stop.stopped) return "stopped";
        const left = deadline - performance.now();
        if (left <= 0) return "timeout";
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, left);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = null;
      }
    } finally {
      off();
    }
  }

  /** A graceful close (FIN): the server sees an orderly end, not a reset. */
  close(): void {
    this.closed = true;
    this.socket?.end();
    this.socket = null;
  }

  private take(max: number): Uint8Array | null {
    const limit = Math.min(this.len, max);
    const at = this.buf.subarray(0, limit).indexOf(LF);
    const n = at >= 0 ? at + 1 : this.len >= max ? max : 0;
    if (n === 0) return null;
    const reply = this.buf.slice(0, n);
    this.buf.copyWithin(0, n, this.len);
    this.len -= n;
    return reply;
  }

  private received(chunk: Uint8Array): void {
    if (this.len + chunk.length > this.buf.length) {
      const bigger = new Uint8Array(Math.max(this.buf.length * 2, this.len + chunk.length));
      bigger.set(this.buf.subarray(0, this.len));
      this.buf = bigger;
    }
    this.buf.set(chunk, this.len);
    this.len += chunk.length;
    this.wake?.();
  }

  private gone(): void {
    this.closed = true;
    this.wake?.();
  }
}

export type UdpClient = udp.ConnectedSocket<"uint8array">;

export interface UdpEvents {
  datagram(data: Uint8Array): void;
  error(err: unknown): void;
  drain?(): void;
}

/** A UDP socket connected to the endpoint: replies from anyone else never reach it. */
export async function openUdp(ep: Endpoint, events: UdpEvents): Promise<UdpClient> {
  try {
    return await Bun.udpSocket({
      hostname: ep.family === 6 ? "::" : "0.0.0.0",
      port: 0,
      binaryType: "uint8array",
      connect: { hostname: ep.address, port: ep.port },
      socket: {
        data: (_s, data) => events.datagram(data),
        drain: () => events.drain?.(),
        // Bun calls error(err) with `this` = the socket, not (socket, err) as
        // typed: take whichever argument is the error.
        error: function (...args: unknown[]) {
          events.error(args.find((a) => a instanceof Error) ?? args[0]);
        } as unknown as (s: UdpClient, e: Error) => void,
      },
    });
  } catch (err) {
    throw new ProbeConnectError(`cannot open a UDP socket to ${formatHostPort(ep.address, ep.port)}: ${errorText(err)}`);
  }
}
