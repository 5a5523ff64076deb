import { describe, expect, test } from "bun:test";
import { BUSY_RESPONSE, MAX_REQUEST_HEAD, httpResponse, parseRequestHead, pathOf, respond } from "../../src/metrics/http.ts";

const text = (b: Uint8Array) => new TextDecoder().decode(b);

describe("parseRequestHead", () => {
  test("waits for the blank line, CR LF or bare LF", () => {
    expect(parseRequestHead("GET /metrics HTTP/1.1\r\nHost: x\r\n")).toEqual({ kind: "incomplete" });
    expect(parseRequestHead("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")).toEqual({ kind: "request", method: "GET", path: "/metrics" });
    expect(parseRequestHead("HEAD /metrics?x=1 HTTP/1.0\n\n")).toEqual({ kind: "request", method: "HEAD", path: "/metrics" });
  });

  test("a malformed request line is 400, an endless head 431", () => {
    for (const bad of ["GET /metrics\r\n\r\n", "GET  /metrics HTTP/1.1\r\n\r\n", "get /metrics HTTP/1.1\r\n\r\n", "GET /metrics HTTP/2\r\n\r\n", "\r\n\r\n"]) {
      expect([bad, parseRequestHead(bad)]).toEqual([bad, { kind: "bad", status: 400 }]);
    }
    expect(parseRequestHead("GET /metrics HTTP/1.1\r\nX: " + "a".repeat(MAX_REQUEST_HEAD))).toEqual({ kind: "bad", status: 431 });
  });

  test("paths: origin form, absolute form, query and fragment dropped", () => {
    expect(pathOf("/metrics")).toBe("/metrics");
    expect(pathOf("/metrics/x")).toBe("/metrics/x");
    expect(pathOf("http://127.0.0.1:9712/metrics?a#b")).toBe("/metrics");
    expect(pathOf("http://host")).toBe("/");
    expect(pathOf("*")).toBe("/");
  });
});

describe("responses", () => {
  const body = () => "m 1\n";
  test("200 with the exposition's content type, length and Connection: close; HEAD without the body", () => {
    expect(text(respond({ kind: "request", method: "GET", path: "/metrics" }, body))).toBe(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 4\r\nConnection: close\r\n\r\nm 1\n",
    );
    expect(text(respond({ kind: "request", method: "HEAD", path: "/metrics" }, body))).toBe(
      "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 4\r\nConnection: close\r\n\r\n",
    );
  });

  test("404 for other paths (before the method), 405 with Allow for other methods, 400/431 for bad heads", () => {
    let built = 0;
    const counted = () => (built++, "x");
    expect(text(respond({ kind: "request", method: "POST", path: "/" }, counted))).toStartWith("HTTP/1.1 404 Not Found\r\n");
    const r405 = text(respond({ kind: "request", method: "POST", path: "/metrics" }, counted));
    expect(r405).toStartWith("HTTP/1.1 405 Method Not Allowed\r\n");
    expect(r405).toContain("\r\nAllow: GET, HEAD\r\n");
    expect(text(respond({ kind: "bad", status: 400 }, counted))).toStartWith("HTTP/1.1 400 Bad Request\r\n");
    expect(text(respond({ kind: "bad", status: 431 }, counted))).toStartWith("HTTP/1.1 431 Request Header Fields Too Large\r\n");
    expect(built).toBe(0); // the exposition is only built for GET/HEAD /metrics
  });

  test("the busy answer and byte lengths", () => {
    expect(text(BUSY_RESPONSE)).toBe(
      "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 29\r\nConnection: close\r\nRetry-After: 1\r\n\r\ntoo many metrics connections\n",
    );
    expect(text(httpResponse(200, "text/plain", "é"))).toContain("Content-Length: 2\r\n");
  });
});
