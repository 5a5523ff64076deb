// --metrics ADDR:PORT: GET /metrics over HTTP with Bun.serve, on the same
// event loop as the echo sockets. It only reads the counters when scraped.
// Its connections are not echo clients: they never count against --max-tcp.
// They do use descriptors from the fd-limit headroom (FD_HEADROOM = 64): a
// scraper keeps one keep-alive connection, and idle ones are closed after
// IDLE_TIMEOUT_S; bind it to loopback or a management network.
import { StartupError } from "../core/startup-error.ts";
import type { Server as HttpServer } from "bun";
import type { HostPort } from "../core/config.ts";
import type { Logger } from "../sys/log.ts";
import { formatPeer } from "../core/peer.ts";
import { bindFailureReason } from "../server/bind.ts";
import { CONTENT_TYPE, exposition, type BuildInfo, type StatsView } from "./exposition.ts";
import { processStartTime, readProcess } from "./process.ts";

export class MetricsError extends StartupError {}

/** Seconds an idle scrape connection is kept open. */
export const IDLE_TIMEOUT_S = 10;

export interface MetricsServer {
  readonly port: number;
  readonly url: string;
  stop(): void;
}

export function startMetrics(addr: HostPort, stats: StatsView, build: BuildInfo, log: Logger): MetricsServer {
  const startTime = processStartTime();
  const where = formatPeer(addr.host, addr.port);
  let server: HttpServer<undefined>;
  try {
    server = Bun.serve({
      hostname: addr.host,
      port: addr.port,
      idleTimeout: IDLE_TIMEOUT_S,
      development: false,
      // Explicit: with development: false Bun 1.4.5 binds with SO_REUSEPORT
      // unless told otherwise, and a second daemon would silently share the port.
      reusePort: false,
      fetch(req) {
        const path = pathOf(req.url);
        if (path !== "/metrics") return new Response("not found\n", { status: 404, headers: { "content-type": "text/plain" } });
        if (req.method !== "GET" && req.method !== "HEAD") {
          return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD", "content-type": "text/plain" } });
        }
        const body = exposition(stats, build, performance.now(), readProcess(startTime));
        return new Response(body, { headers: { "content-type": CONTENT_TYPE } });
      },
      error(err) {
        log.warn("metrics request failed", { error: err.message });
        return new Response("internal error\n", { status: 500 });
      },
    });
  } catch (err) {
    throw new MetricsError(`cannot serve metrics on ${where}: ${bindFailureReason(err)}`);
  }
  const port = server.port ?? addr.port;
  const url = `http://${formatPeer(addr.host, port)}/metrics`;
  return { port, url, stop: () => void server.stop(true) };
}

/** The path of a request URL ("http://h:p/metrics?x" -> "/metrics") without building a URL object. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  let end = url.length;
  const q = url.indexOf("?", start);
  if (q >= 0) end = q;
  const h = url.indexOf("#", start);
  if (h >= 0 && h < end) end = h;
  return url.slice(start, end);
}
