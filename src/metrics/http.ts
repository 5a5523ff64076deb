// The little HTTP/1.1 that GET /metrics needs, pure: a request head in (as
// latin1 text), the whole response out. Every response says Connection:
// close; no keep-alive, no request bodies read, no chunking. Anything but
// a request for /metrics gets 404, another method on it 405.
import { CONTENT_TYPE } from "./exposition.ts";

/** Longest request head (request line and headers) read; longer gets 431. */
export const MAX_REQUEST_HEAD = 8192;

export type HeadState =
  /** The blank line that ends the head has not arrived yet. */
  | { kind: "incomplete" }
  | { kind: "request"; method: string; path: string }
  | { kind: "bad"; status: 400 | 431 };

/** Look at the head received so far (latin1 text, line ends LF or CR LF). */
export function parseRequestHead(text: string): HeadState {
  let end = text.indexOf("\r\n\r\n");
  if (end < 0) end = text.indexOf("\n\n");
  if (end < 0) return text.length > MAX_REQUEST_HEAD ? { kind: "bad", status: 431 } : { kind: "incomplete" };
  if (end > MAX_REQUEST_HEAD) return { kind: "bad", status: 431 };
  let lineEnd = text.indexOf("\n");
  if (lineEnd > 0 && text.charCodeAt(lineEnd - 1) === 0x0d) lineEnd--;
  const parts = text.slice(0, lineEnd).split(" ");
  if (parts.length !== 3 || !/^[A-Z]+$/.test(parts[0]!) || !/^HTTP\/1\.[01]$/.test(parts[2]!) || parts[1] === "") return { kind: "bad", status: 400 };
  return { kind: "request", method: parts[0]!, path: pathOf(parts[1]!) };
}

/** The path of a request target: "/metrics?x" or "http://h:p/metrics#y" -> "/metrics". */
export function pathOf(target: string): string {
  let start = 0;
  if (!target.startsWith("/")) {
    const scheme = target.indexOf("//");
    start = scheme < 0 ? -1 : target.indexOf("/", scheme + 2);
    if (start < 0) return "/";
  }
  let end = target.length;
  const q = target.indexOf("?", start);
  if (q >= 0) end = q;
  const h = target.indexOf("#", start);
  if (h >= 0 && h < end) end = h;
  return target.slice(start, end);
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  431: "Request Header Fields Too Large",
  503: "Service Unavailable",
};

const encoder = new TextEncoder();

/** A whole response: status line, headers, and the body unless `headOnly`. */
export function httpResponse(status: number, contentType: string, body: string, opts: { headOnly?: boolean; extra?: string } = {}): Uint8Array {
  const bytes = encoder.encode(body);
  const head =
    `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\n` +
    `Content-Type: ${contentType}\r\nContent-Length: ${bytes.length}\r\nConnection: close\r\n${opts.extra ?? ""}\r\n`;
  const headBytes = encoder.encode(head);
  if (opts.headOnly) return headBytes;
  const out = new Uint8Array(headBytes.length + bytes.length);
  out.set(headBytes);
  out.set(bytes, headBytes.length);
  return out;
}

/** The answer to a parsed head; `body()` builds the exposition, called only for GET/HEAD /metrics. */
export function respond(state: Exclude<HeadState, { kind: "incomplete" }>, body: () => string): Uint8Array {
  if (state.kind === "bad") return httpResponse(state.status, "text/plain", state.status === 400 ? "bad request\n" : "request header too large\n");
  if (state.path !== "/metrics") return httpResponse(404, "text/plain", "not found\n");
  if (state.method !== "GET" && state.method !== "HEAD") return httpResponse(405, "text/plain", "method not allowed\n", { extra: "Allow: GET, HEAD\r\n" });
  return httpResponse(200, CONTENT_TYPE, body(), { headOnly: state.method === "HEAD" });
}

/** What a connection past the cap gets before it is closed. */
export const BUSY_RESPONSE = httpResponse(503, "text/plain", "too many metrics connections\n", { extra: "Retry-After: 1\r\n" });
