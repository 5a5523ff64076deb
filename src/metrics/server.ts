// --metrics ADDR:PORT: GET /metrics over HTTP/1.1 on the same event loop as
// the echo sockets, from a small responder on Bun.listen rather than
// Bun.serve, because Bun.serve has no connection cap: a flood of connections
// to it could take every spare descriptor and push Bun's accept loop into
// its EMFILE spin (docs/reliability.md, scenario 11). Here at most
// MAX_CONNECTIONS are served at once (one more gets 503 and is closed at
// once), each closed after its one response or IDLE_TIMEOUT_S of silence.
// It only reads the counters when scraped; its connections never count
// against --max-tcp and fit in the fd-limit headroom.
import type { Socket, TCPSocketListener } from "bun";
import { StartupError } from "../core/startup-error.ts";
import type { HostPort } from "../core/config.ts";
import type { Logger } from "../sys/log.ts";
import { formatPeer } from "../core/peer.ts";
import { adoptTcp, bindFailureReason, boundPort, listenerFd, type ListenWithReusePort } from "../server/bind.ts";
import { exposition, type BuildInfo, type StatsView } from "./exposition.ts";
import { BUSY_RESPONSE, MAX_REQUEST_HEAD, parseRequestHead, respond } from "./http.ts";
import { WarnThrottle } from "../core/warn-throttle.ts";
import { processStartTime, readProcess } from "./process.ts";

export class MetricsError extends StartupError {}

/** Scrape connections served at once; more are answered 503 and closed. */
export const MAX_CONNECTIONS = 16;
/** Seconds a connection may stay open (Bun's socket timeout: not reset by data, fires up to ~4 s late). */
export const IDLE_TIMEOUT_S = 5;

export interface MetricsServer {
  readonly port: number;
  readonly url: string;
  /** The listening socket (a re-exec hands it over). */
  readonly fd: number;
  /** Scrape connections open now. */
  readonly connections: number;
  stop(): void;
}

/** One admitted connection: the request head so far, then what is left to write. */
class Scrape {
  head = "";
  unsent: Uint8Array | null = null;
  replied = false;
}

type MetricsSocket = Socket<Scrape | null>;

/** Serve /metrics on `addr`, or on the listening socket `adoptFd` (handed over by a re-exec). */
export function startMetrics(addr: HostPort, stats: StatsView, build: BuildInfo, log: Logger, adoptFd?: number): MetricsServer {
  const startTime = processStartTime();
  const where = formatPeer(addr.host, addr.port);
  let admitted = 0;
  const busyWarnings = new WarnThrottle(10_000);

  const send = (socket: MetricsSocket, scrape: Scrape, bytes: Uint8Array) => {
    const n = socket.write(bytes);
    if (n >= 0 && n < bytes.length) {
      scrape.unsent = bytes.subarray(n);
      return;
    }
    scrape.unsent = null;
    socket.end();
  };

  const handlers = {
    open(socket: MetricsSocket) {
      if (admitted >= MAX_CONNECTIONS) {
        socket.data = null;
        socket.write(BUSY_RESPONSE);
        socket.end();
        const rejected = busyWarnings.hit(performance.now());
        if (rejected > 0) log.warn(`metrics: ${MAX_CONNECTIONS} connections open, turning more away`, { rejected });
        return;
      }
      admitted++;
      socket.data = new Scrape();
      socket.timeout(IDLE_TIMEOUT_S);
    },
    data(socket: MetricsSocket, chunk: Uint8Array) {
      const scrape = socket.data;
      if (!scrape || scrape.replied) return;
      // Never more than one head's worth: the rest of a large chunk cannot matter (and apply() has an argument limit).
      const part = chunk.subarray(0, MAX_REQUEST_HEAD + 4 - scrape.head.length);
      scrape.head += String.fromCharCode.apply(null, part as unknown as number[]);
      const state = parseRequestHead(scrape.head);
      if (state.kind === "incomplete") return;
      scrape.replied = true;
      scrape.head = "";
      send(socket, scrape, respond(state, () => exposition(stats, build, performance.now(), readProcess(startTime))));
    },
    drain(socket: MetricsSocket) {
      const scrape = socket.data;
      if (scrape?.unsent) send(socket, scrape, scrape.unsent);
    },
    timeout(socket: MetricsSocket) {
      socket.terminate();
    },
    close(socket: MetricsSocket) {
      if (socket.data) {
        socket.data = null;
        admitted--;
      }
    },
    // A scraper's resets are its own business (and the peer's address may be gone by now).
    error(_socket: MetricsSocket, err: Error) {
      log.debug("metrics connection error", { error: err.message });
    },
  };

  let listener: TCPSocketListener<Scrape | null>;
  if (adoptFd !== undefined) {
    listener = adoptTcp(adoptFd, handlers, false);
  } else {
    try {
      // Explicitly without SO_REUSEPORT: a second daemon must fail, not share the port.
      listener = (Bun.listen as unknown as ListenWithReusePort)<Scrape | null>({ hostname: addr.host, port: addr.port, allowHalfOpen: false, reusePort: false, socket: handlers });
    } catch (err) {
      throw new MetricsError(`cannot serve metrics on ${where}: ${bindFailureReason(err)}`);
    }
  }
  const fd = listenerFd(listener);
  const port = adoptFd !== undefined ? boundPort(fd) : listener.port;
  const url = `http://${formatPeer(addr.host, port)}/metrics`;
  return {
    port,
    url,
    fd,
    get connections() {
      return admitted;
    },
    stop: () => listener.stop(true),
  };
}
