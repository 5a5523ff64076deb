// --metrics on the compiled binary: scrape after known traffic and check every
// counter exactly; validate the exposition with promtool and an npm parser.
import { describe, expect, test } from "bun:test";
import * as net from "node:net";
import { runBinary, startDaemon, type Daemon } from "../support/daemon.ts";
import { TcpClient, udpRequest } from "../support/net.ts";
import { parseExposition, promtool, promtoolCheck, sample, scrape } from "../support/metrics.ts";
import { probe } from "../support/probe.ts";
import pkg from "../../package.json" with { type: "json" };

const METRICS_URL = /INFO\s+metrics at (http:\/\/(?:\[[0-9a-f:]+\]|[0-9.]+):(\d+)\/metrics)/;

async function withMetrics(args: string[], metricsAddr = "127.0.0.1:0"): Promise<{ d: Daemon; url: string; port: number }> {
  const d = await startDaemon(["--port", "0", "--metrics", metricsAddr, ...args]);
  const m = await d.waitForLog(METRICS_URL);
  return { d, url: m[1]!, port: Number(m[2]) };
}

/** Send one line on a TCP client and read exactly the reply expected. */
async function exchange(c: TcpClient, send: string, reply: string | RegExp, replyLength?: number): Promise<[number, number]> {
  c.send(send);
  const n = typeof reply === "string" ? reply.length : replyLength!;
  const got = (await c.read(n)).toString("latin1");
  if (typeof reply === "string") expect(got).toBe(reply);
  else expect(got).toMatch(reply);
  return [send.length, n];
}

describe("GET /metrics after known traffic", () => {
  test("exact counters and gauges; metrics connections are not echo clients", async () => {
    const { d, url, port } = await withMetrics(["--max-line", "16", "--max-datagram", "32", "--max-tcp", "2", "--instance", "scrape-me"]);
    try {
      expect(port).not.toBe(d.tcpPort);
      expect(d.stderr()).toContain(`metrics at http://127.0.0.1:${port}/metrics`);

      let tcpIn = 0;
      let tcpOut = 0;
      const add = ([i, o]: [number, number]) => {
        tcpIn += i;
        tcpOut += o;
      };
      const a = await TcpClient.connect(d.tcpPort);
      const b = await TcpClient.connect(d.tcpPort, "::1");
      add(await exchange(a, "hello\n", "hello\n"));
      add(await exchange(b, "world\r\n", "world\r\n"));
      add(await exchange(a, "/time\n", /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$/, 20));
      add(await exchange(a, "/stats\n", "2 2 0\n"));
      add(await exchange(a, "/bogus\n", "ERR unknown-command\n"));
      add(await exchange(a, "/shutdown\n", "ERR shutdown-token-required\n"));
      add(await exchange(b, "/shutdown x\n", "ERR shutdown-token-missing\n"));
      add(await exchange(a, "x".repeat(20) + "\n", "ERR too-long-line\n"));
      add(await exchange(a, "ok\n", "ok\n"));
      // --max-tcp 2 is reached: a third client is turned away.
      const c = await TcpClient.connect(d.tcpPort);
      expect((await c.readToEnd()).toString()).toBe("server busy\n");
      c.close();

      expect((await udpRequest(d.udpPort, "ping")).toString()).toBe("ping");
      expect((await udpRequest(d.udpPort, "y".repeat(40), "::1")).toString()).toBe("ERR datagram-truncated\n");
      expect((await udpRequest(d.udpPort, "/shutdown\n")).toString()).toBe("ERR shutdown-not-allowed\n");
      expect((await udpRequest(d.udpPort, "/time")).toString()).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$/);

      // Two echo clients are connected (= --max-tcp) and the scrape still gets in.
      const res = await scrape(url);
      expect(res.status).toBe(200);
      expect(res.contentType).toBe("text/plain; version=0.0.4; charset=utf-8");
      const m = parseExposition(res.body);
      const expected: [string, Record<string, string>, number][] = [
        ["epoll_echo_build_info", { version: pkg.version, instance: "scrape-me" }, 1],
        ["epoll_echo_tcp_accepted_total", {}, 2],
        ["epoll_echo_tcp_rejected_busy_total", {}, 1],
        ["epoll_echo_tcp_lines_total", {}, 3],
        ["epoll_echo_tcp_overflows_total", {}, 1],
        ["epoll_echo_bytes_received_total", { proto: "tcp" }, tcpIn],
        ["epoll_echo_bytes_received_total", { proto: "udp" }, 4 + 40 + 10 + 5],
        ["epoll_echo_bytes_sent_total", { proto: "tcp" }, tcpOut],
        ["epoll_echo_bytes_sent_total", { proto: "udp" }, 4 + 23 + 25 + 20],
        ["epoll_echo_udp_datagrams_total", {}, 4],
        ["epoll_echo_udp_truncated_total", {}, 1],
        ["epoll_echo_udp_loop_guard_drops_total", { rule: "low-port" }, 0],
        ["epoll_echo_udp_loop_guard_drops_total", { rule: "own-port" }, 0],
        ["epoll_echo_udp_rate_limited_total", {}, 0],
        ["epoll_echo_commands_total", { command: "time" }, 2],
        ["epoll_echo_commands_total", { command: "stats" }, 1],
        ["epoll_echo_commands_total", { command: "whoami" }, 0],
        ["epoll_echo_commands_total", { command: "instance" }, 0],
        ["epoll_echo_commands_total", { command: "shutdown" }, 3],
        ["epoll_echo_commands_total", { command: "unknown" }, 1],
        ["epoll_echo_shutdown_rejected_total", { reason: "token-required" }, 1],
        ["epoll_echo_shutdown_rejected_total", { reason: "loopback-required" }, 0],
        ["epoll_echo_shutdown_rejected_total", { reason: "token-missing" }, 1],
        ["epoll_echo_shutdown_rejected_total", { reason: "token-invalid" }, 0],
        ["epoll_echo_shutdown_rejected_total", { reason: "not-allowed" }, 1],
        ["epoll_echo_tcp_connections", {}, 2],
        ["epoll_echo_udp_active_peers", {}, 4],
        ["epoll_echo_tcp_pending_output_bytes", {}, 0],
      ];
      for (const [name, labels, value] of expected) expect([name, labels, sample(m, name, labels)]).toEqual([name, labels, value]);
      expect(tcpIn).toBe(6 + 7 + 6 + 7 + 7 + 10 + 12 + 21 + 3);
      expect(tcpOut).toBe(6 + 7 + 20 + 6 + 20 + 28 + 27 + 18 + 3);

      // Process metrics, with their standard names.
      const now = Date.now() / 1000;
      expect(sample(m, "process_resident_memory_bytes")).toBeGreaterThan(1 << 20);
      expect(sample(m, "process_cpu_seconds_total")).toBeGreaterThan(0);
      const fds = sample(m, "process_open_fds");
      expect(fds).toBeGreaterThan(4);
      expect(fds).toBeLessThan(sample(m, "process_max_fds"));
      const started = sample(m, "process_start_time_seconds");
      expect(started).toBeGreaterThan(now - 120);
      expect(started).toBeLessThanOrEqual(now + 1);

      // Scraping is not an echo connection: nothing above moved.
      const again = parseExposition((await scrape(url)).body);
      expect(sample(again, "epoll_echo_tcp_accepted_total")).toBe(2);
      expect(sample(again, "epoll_echo_tcp_rejected_busy_total")).toBe(1);

      // Gauges follow the clients down.
      a.close();
      b.close();
      let connections = -1;
      for (let i = 0; i < 100 && connections !== 0; i++) {
        connections = sample(parseExposition((await scrape(url)).body), "epoll_echo_tcp_connections");
        if (connections !== 0) await Bun.sleep(20);
      }
      expect(connections).toBe(0);
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  test("counts what the probe sent, line for line", async () => {
    const { d, url } = await withMetrics([]);
    try {
      const tcp = await probe([`127.0.0.1:${d.tcpPort}`, "--count", "5", "--interval", "0", "--size", "100"]);
      expect(tcp.code).toBe(0);
      const udp = await probe([`[::1]:${d.udpPort}`, "--udp", "--count", "3", "--interval", "0", "--size", "50"]);
      expect(udp.code).toBe(0);
      const m = parseExposition((await scrape(url)).body);
      expect(sample(m, "epoll_echo_tcp_lines_total")).toBe(5);
      expect(sample(m, "epoll_echo_bytes_received_total", { proto: "tcp" })).toBe(500);
      expect(sample(m, "epoll_echo_bytes_sent_total", { proto: "tcp" })).toBe(500);
      expect(sample(m, "epoll_echo_udp_datagrams_total")).toBe(3);
      expect(sample(m, "epoll_echo_bytes_sent_total", { proto: "udp" })).toBe(150);
      expect(sample(m, "epoll_echo_tcp_accepted_total")).toBe(1);
      expect(sample(m, "epoll_echo_udp_active_peers")).toBe(1);
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  test("the live exposition passes the parsers", async () => {
    const { d, url } = await withMetrics([], "[::1]:0");
    try {
      expect(url).toMatch(/^http:\/\/\[::1\]:\d+\/metrics$/);
      const body = (await scrape(url)).body;
      const families = parseExposition(body);
      const names = families.map((f) => f.name);
      for (const name of [
        "epoll_echo_tcp_accepted_total",
        "epoll_echo_tcp_rejected_busy_total",
        "epoll_echo_tcp_lines_total",
        "epoll_echo_tcp_overflows_total",
        "epoll_echo_bytes_received_total",
        "epoll_echo_bytes_sent_total",
        "epoll_echo_udp_datagrams_total",
        "epoll_echo_udp_truncated_total",
        "epoll_echo_udp_loop_guard_drops_total",
        "epoll_echo_udp_rate_limited_total",
        "epoll_echo_commands_total",
        "epoll_echo_shutdown_rejected_total",
        "epoll_echo_tcp_connections",
        "epoll_echo_udp_active_peers",
        "epoll_echo_tcp_pending_output_bytes",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_start_time_seconds",
      ]) {
        expect(names).toContain(name);
      }
      // Every non-comment line is `name{labels} value`.
      for (const line of body.split("\n")) {
        if (line === "" || line.startsWith("# HELP ") || line.startsWith("# TYPE ")) continue;
        expect(line).toMatch(/^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+]+$/);
      }
      if (promtool) {
        const r = await promtoolCheck(body);
        expect(r.output).toBe("");
        expect(r.code).toBe(0);
      } else {
        console.log("skipping promtool check: promtool not installed (apt-get install prometheus)");
      }
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  test("other paths answer 404, other methods 405", async () => {
    const { d, url } = await withMetrics([]);
    try {
      const base = url.replace(/\/metrics$/, "");
      for (const path of ["/", "/metric", "/metrics/x", "/favicon.ico"]) expect([path, (await fetch(base + path)).status]).toEqual([path, 404]);
      const post = await fetch(url, { method: "POST", body: "x" });
      expect(post.status).toBe(405);
      expect(post.headers.get("allow")).toBe("GET, HEAD");
      expect((await fetch(url, { method: "HEAD" })).status).toBe(200);
      expect((await fetch(url + "?x=1")).status).toBe(200);
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });
});

describe("metrics connections are capped and timed out", () => {
  test("16 at once: the 17th gets 503 and is closed; idle ones are closed within seconds; then scrapes work again", async () => {
    const { d, url, port } = await withMetrics([]);
    const held: TcpClient[] = [];
    try {
      // The first scrape works; its connection closes after the response (Connection: close).
      const raw = await TcpClient.connect(port);
      raw.send("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
      const first = (await raw.readToEnd()).toString();
      expect(first).toStartWith("HTTP/1.1 200 OK\r\n");
      expect(first).toContain("\r\nConnection: close\r\n");
      expect(first).toContain("\nepoll_echo_tcp_lines_total 0\n");

      for (let i = 0; i < 16; i++) held.push(await TcpClient.connect(port));
      const extra = await TcpClient.connect(port);
      expect((await extra.readToEnd()).toString()).toBe(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 29\r\nConnection: close\r\nRetry-After: 1\r\n\r\ntoo many metrics connections\n",
      );
      expect((await fetch(url)).status).toBe(503);
      await d.waitForLog(/WARN\s+metrics: 16 connections open, turning more away/);

      // Nobody sent a request on the 16: the server closes them after IDLE_TIMEOUT_S (5 s, fired by a ~4 s timer tick).
      const t0 = performance.now();
      for (const c of held) await c.readToEnd(12_000);
      const waited = (performance.now() - t0) / 1000;
      expect(waited).toBeLessThan(10);
      expect(held.every((c) => c.data.length === 0)).toBe(true);
      const res = await scrape(url);
      expect(res.status).toBe(200);
      expect(d.stderr().split("\n").filter((l) => l.includes("turning more away"))).toHaveLength(1);
    } finally {
      for (const c of held) c.close();
      const code = await d.stop();
      if (code !== 0) console.log(d.stderr());
      expect(code).toBe(0);
    }
  }, 30_000);
});

describe("--metrics at startup", () => {
  test("a port already in use: one-line error, exit 1", async () => {
    const holder = net.createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      const d = await startDaemon(["--port", "0", "--metrics", `127.0.0.1:${port}`], { noWait: true });
      expect(await d.exited).toBe(1);
      const errors = d.stderr().split("\n").filter((l) => l.includes("ERROR"));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(new RegExp(`ERROR cannot serve metrics on 127\\.0\\.0\\.1:${port}: address already in use \\(EADDRINUSE\\)$`));
      expect(d.stderr()).not.toContain("    at ");
    } finally {
      holder.close();
    }
  });

  test("a second daemon on the same metrics port fails instead of sharing it (no SO_REUSEPORT)", async () => {
    const first = await withMetrics([]);
    try {
      const second = await startDaemon(["--port", "0", "--metrics", `127.0.0.1:${first.port}`], { noWait: true });
      expect(await second.exited).toBe(1);
      expect(second.stderr()).toContain(`ERROR cannot serve metrics on 127.0.0.1:${first.port}: address already in use (EADDRINUSE)\n`);
    } finally {
      expect(await first.d.stop()).toBe(0);
    }
  });

  test("an address this host does not have: exit 1", async () => {
    const d = await startDaemon(["--port", "0", "--metrics", "192.0.2.1:9712"], { noWait: true });
    expect(await d.exited).toBe(1);
    expect(d.stderr()).toMatch(/ERROR cannot serve metrics on 192\.0\.2\.1:9712: address not available on this host \(EADDRNOTAVAIL\)\n/);
  });

  test("bad values and the echo port are usage errors (exit 2, nothing bound)", () => {
    const cases: [string[], string][] = [
      [["--metrics", "127.0.0.1"], '--metrics: expected ADDR:PORT (the port is missing), got "127.0.0.1"'],
      // "::1:9712" is itself an IPv6 address: the port must follow the brackets.
      [["--metrics", "::1:9712"], '--metrics: expected ADDR:PORT (IPv6 in brackets: [::1:9712]:PORT), got "::1:9712"'],
      [["--metrics", "127.0.0.1:70000"], "--metrics port: 70000 is out of range (0 to 65535)"],
      [["--metrics"], "--metrics: needs a value"],
      [["--port", "23456", "--metrics", "127.0.0.1:23456"], "--metrics: port 23456 is the echo port; give the metrics listener a port of its own"],
      [["--tcp-port", "0", "--udp-port", "23457", "--metrics", "[::1]:23457"], "--metrics: port 23457 is the echo port; give the metrics listener a port of its own"],
    ];
    for (const [args, message] of cases) {
      const r = runBinary(args);
      expect(r).toEqual({ code: 2, stdout: "", stderr: `epoll-echo: ${message}\nTry 'epoll-echo --help' for the list of options.\n` });
    }
  });
});
