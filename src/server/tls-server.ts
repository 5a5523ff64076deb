// --tls-port: the same line protocol over TLS, with the same TcpService (so
// --max-tcp, the counters and the limits are shared with plain TCP).
//
// The listener accepts plain TCP and starts the TLS server side on each new
// socket itself (upgradeTLS) instead of Bun.listen({ tls }): a PROXY header
// comes before the TLS handshake, in clear, so it must be taken off first
// (src/server/proxy-gate.ts); and each handshake uses the certificate in force
// at that moment, so SIGHUP can replace it without touching open connections.
//
// A socket becomes a client (TcpConnection, counted against --max-tcp) once
// its handshake succeeds, so 'server busy' is said over TLS and a failed
// handshake is never a client. Until then it is "pending": pending sockets
// have a deadline, and there are at most --max-tcp + PENDING_SLACK of them
// and clients together (more are cut at once), so a crowd of clients that
// never finish a handshake cannot run the process out of descriptors.
import type { Socket } from "bun";
import type { Stats } from "../core/stats.ts";
import type { ProxySource } from "../core/proxy-header.ts";
import { formatPeer } from "../core/peer.ts";
import type { TcpService } from "./tcp-server.ts";
import type { TcpConnection } from "./tcp-connection.ts";
import type { HeaderWait, ProxyGate } from "./proxy-gate.ts";
import type { TlsCredentials } from "./tls-credentials.ts";

/** A socket whose handshake is not done within this is cut. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Pending sockets allowed past --max-tcp (to be told 'server busy'); within the descriptor headroom (FD_HEADROOM). */
export const PENDING_SLACK = 32;

/** A raw socket under TLS, until its handshake is done. */
interface Pending {
  /** The PROXY header wait in progress, if any. */
  wait: HeaderWait | null;
  deadline: ReturnType<typeof setTimeout>;
  /** The client the PROXY header named (null: the real peer). */
  client: ProxySource | null;
  /** The TLS socket once upgraded: the one to cut at the deadline (cutting the raw one no longer closes it). */
  tls: Socket<TcpConnection> | null;
  settled: boolean;
}

export type RawTlsSocket = Socket<Pending | undefined>;

interface ServerTlsOptions {
  cert: string;
  key: string;
  /** upgradeTLS takes the server side only when told (missing from Bun's types). */
  isServer: true;
}

export class TlsFront {
  private secure: ServerTlsOptions;
  private pending = 0;
  /** TLS socket -> its raw socket's state, until the handshake is done. */
  private readonly byTls = new WeakMap<Socket<TcpConnection>, Pending>();
  /** The TLS sockets' handlers: plain TCP's, once the handshake succeeded. */
  private readonly tlsHandlers: TcpService["handlers"] & { handshake(socket: Socket<TcpConnection>, ok: boolean): void };

  constructor(
    credentials: TlsCredentials,
    private readonly tcp: TcpService,
    private readonly gate: ProxyGate | null,
    private readonly stats: Stats,
  ) {
    this.secure = toOptions(credentials);
    this.tlsHandlers = {
      ...tcp.handlers,
      open: (socket) => {
        const state = socket.data as unknown as Pending;
        state.tls = socket;
        this.byTls.set(socket, state);
        socket.data = undefined as unknown as TcpConnection; // no connection before the handshake
      },
      handshake: (socket, ok) => {
        const state = this.byTls.get(socket);
        this.byTls.delete(socket);
        if (state) this.settle(state);
        if (!ok) {
          stats.tlsHandshakes.failed++;
          return;
        }
        stats.tlsHandshakes.ok++;
        tcp.accept(socket, state?.client ?? null);
      },
    };
  }

  /** Raw sockets whose handshake (or PROXY header) is still awaited. */
  get handshaking(): number {
    return this.pending;
  }

  /** New handshakes from now on use these; open connections keep theirs. */
  use(credentials: TlsCredentials): void {
    this.secure = toOptions(credentials);
  }

  /** The listener's handlers: the raw sockets under TLS. */
  readonly handlers = {
    open: (raw: RawTlsSocket) => this.open(raw),
    // Ciphertext, also handed to the TLS layer, which decrypts it for tlsHandlers.
    data: () => {},
    close: (raw: RawTlsSocket) => {
      const state = raw.data;
      if (state) {
        state.wait?.cancel();
        this.settle(state);
      }
    },
    error: () => {},
  };

  private open(raw: RawTlsSocket): void {
    if (this.tcp.connections.size + this.pending >= this.tcp.maxTcp + PENDING_SLACK) {
      this.stats.tcpRejectedBusy++;
      raw.terminate();
      return;
    }
    this.pending++;
    const state: Pending = { wait: null, client: null, tls: null, settled: false, deadline: setTimeout(() => (state.tls ?? raw).terminate(), HANDSHAKE_TIMEOUT_MS) };
    raw.data = state;
    const address = raw.remoteAddress;
    if (this.gate === null || !this.gate.applies(address)) {
      this.upgrade(raw, state);
      return;
    }
    state.wait = this.gate.wait(raw, formatPeer(address, raw.remotePort), (source) => {
      state.wait = null;
      state.client = source;
      this.upgrade(raw, state);
    });
  }

  private upgrade(raw: RawTlsSocket, state: Pending): void {
    raw.upgradeTLS({ tls: this.secure, socket: this.tlsHandlers as never, data: state as never });
  }

  private settle(state: Pending): void {
    if (state.settled) return;
    state.settled = true;
    clearTimeout(state.deadline);
    this.pending--;
  }
}

function toOptions(credentials: TlsCredentials): ServerTlsOptions {
  return { cert: credentials.cert, key: credentials.key, isServer: true };
}
