// --proxy-protocol-from: a connection whose real peer is in one of the listed
// networks must begin with a PROXY header (src/core/proxy-header.ts); from any
// other peer nothing is parsed.
//
// The header is read with MSG_PEEK from the socket's descriptor while Bun's
// own reading is paused, and then exactly its bytes are consumed: whatever
// follows stays in the kernel, for the line protocol or, on the TLS port, for
// the TLS handshake (which must not see the header, and cannot be handed bytes
// Bun has already read). A paused socket raises no event when bytes arrive, so
// the wait polls, quickly at first: a proxy sends its header at once.
import type { Socket } from "bun";
import { matchesAny, type Cidr } from "../core/cidr.ts";
import { parseProxyHeader, V2_MAX, type ProxySource } from "../core/proxy-header.ts";
import type { Stats } from "../core/stats.ts";
import type { CoarseClock } from "../core/clock.ts";
import type { Logger } from "../sys/log.ts";
import { errnoName } from "../core/error-text.ts";
import * as libc from "../sys/libc.ts";

/** A connection with no complete header this long after accept is closed. */
export const PROXY_HEADER_TIMEOUT_MS = 3000;
/** Header errors are logged at most once per this many seconds, with the count since the last line. */
export const PROXY_ERROR_LOG_INTERVAL_S = 10;
/** Delays between looks at the socket; the last one repeats until the timeout. */
const RETRY_MS = [0, 1, 2, 5, 10, 20, 50, 100];

export interface HeaderWait {
  /** The socket closed: stop looking at its descriptor (the number may be reused). */
  cancel(): void;
}

type AnySocket = Socket<unknown>;

export class ProxyGate {
  /** One buffer for every peek: the server is single-threaded and a look finishes synchronously. */
  private readonly buf = new Uint8Array(V2_MAX);
  private warnedAt = -Infinity;
  private sinceWarn = 0;

  constructor(
    private readonly from: readonly Cidr[],
    private readonly stats: Stats,
    private readonly clock: CoarseClock,
    private readonly log: Logger,
  ) {}

  /** Whether a connection from this real peer address must start with a header. */
  applies(address: string): boolean {
    return matchesAny(this.from, address);
  }

  /**
   * Pause the socket until its header is in, then consume the header, call
   * `done` with the client it names (null: keep the real peer) and resume.
   * A bad, incomplete or late header closes the socket instead.
   */
  wait<D>(socket: Socket<D>, peer: string, done: (source: ProxySource | null) => void): HeaderWait {
    const s = socket as AnySocket;
    const fd = (s as unknown as { fd: number }).fd;
    const start = performance.now();
    let attempt = 0;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let cancelled = false;
    const look = () => {
      timer = null;
      if (cancelled) return;
      const outcome = this.look(fd);
      if (outcome === null) {
        if (performance.now() - start >= PROXY_HEADER_TIMEOUT_MS) return this.reject(s, peer, "no complete PROXY header within 3 s");
        timer = setTimeout(look, RETRY_MS[Math.min(++attempt, RETRY_MS.length - 1)]);
        return;
      }
      if (typeof outcome === "string") return this.reject(s, peer, outcome);
      done(outcome.source);
      s.resume();
    };
    s.pause();
    look();
    return {
      cancel() {
        cancelled = true;
        if (timer !== null) clearTimeout(timer);
      },
    };
  }

  /** null: not complete yet; a string: why the connection must close; else the consumed header's source. */
  private look(fd: number): { source: ProxySource | null } | string | null {
    const n = libc.recv(fd, this.buf, libc.MSG_PEEK | libc.MSG_DONTWAIT);
    if (n === -libc.EAGAIN || n === -libc.EINTR) return null;
    if (n === 0) return "connection closed before a complete PROXY header";
    if (n < 0) return `reading the PROXY header: ${errnoName(n)}`;
    const verdict = parseProxyHeader(this.buf.subarray(0, n));
    if (verdict.kind === "more") return null;
    if (verdict.kind === "error") return verdict.reason;
    // The bytes were just peeked, so this takes exactly them.
    const taken = libc.recv(fd, this.buf.subarray(0, verdict.length), libc.MSG_DONTWAIT);
    if (taken !== verdict.length) return `reading the PROXY header: ${taken < 0 ? errnoName(taken) : "short read"}`;
    return { source: verdict.source };
  }

  private reject(socket: AnySocket, peer: string, reason: string): void {
    this.stats.proxyHeaderErrors++;
    this.sinceWarn++;
    const now = this.clock.seconds;
    if (now - this.warnedAt >= PROXY_ERROR_LOG_INTERVAL_S) {
      this.log.warn("missing or invalid PROXY header, closing", { peer, reason, errors: this.sinceWarn });
      this.warnedAt = now;
      this.sinceWarn = 0;
    }
    socket.terminate();
  }
}
