// `epoll-echo probe` on the compiled binary, through real sockets: against the
// real server, against misbehaving servers run by the test, and against ports
// where nothing listens.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as dgram from "node:dgram";
import { runBinary, startDaemon, type Daemon } from "../support/daemon.ts";
import { corruptingTcpServer, faultyUdpServer, probe } from "../support/probe.ts";

let d: Daemon;
beforeAll(async () => {
  // -vv: the server is still the default command.
  d = await startDaemon(["--port", "0", "-vv"]);
});
afterAll(async () => {
  expect(await d.stop()).toBe(0);
});

const RTT = String.raw`\d+\.\d{3}`;

/** A UDP port with nothing bound to it (bound once, then released). */
async function deadUdpPort(): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function expectPingOutput(stdout: string, target: string, proto: "tcp" | "udp", count: number, size: number) {
  const lines = stdout.trimEnd().split("\n");
  const what = proto === "tcp" ? "lines" : "datagrams";
  expect(lines[0]).toMatch(new RegExp(`^PROBE ${escape(target)}( \\(\\S+\\))? ${proto}: ${count} ${what} of ${size} bytes$`));
  for (let seq = 1; seq <= count; seq++) {
    expect(lines[seq]).toMatch(new RegExp(`^${size} bytes from ${escape(target)}: seq=${seq} rtt=${RTT} ms$`));
  }
  expect(lines.slice(count + 1)).toHaveLength(3);
  expect(lines[count + 1]).toBe(`--- ${target} ${proto} probe ---`);
  expect(lines[count + 2]).toBe(`${count} sent, ${count} received, 0 lost, 0 mismatched`);
  expect(lines[count + 3]).toMatch(new RegExp(`^rtt min/avg/p50/p99/max = ${RTT}/${RTT}/${RTT}/${RTT}/${RTT} ms$`));
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

describe("probe against the real server", () => {
  test("TCP over IPv4: every line back intact, exit 0", async () => {
    const r = await probe([`127.0.0.1:${d.tcpPort}`, "--count", "3", "--interval", "0"]);
    expect(r.stderr).toBe("");
    expectPingOutput(r.stdout, `127.0.0.1:${d.tcpPort}`, "tcp", 3, 64);
    expect(r.code).toBe(0);
  });

  test("UDP over IPv6 ([::1]:PORT), exit 0", async () => {
    const r = await probe([`[::1]:${d.udpPort}`, "--udp", "--count", "3", "--interval", "10"]);
    expect(r.stderr).toBe("");
    expectPingOutput(r.stdout, `[::1]:${d.udpPort}`, "udp", 3, 64);
    expect(r.code).toBe(0);
  });

  test("a host name resolves and the address used is shown", async () => {
    const r = await probe([`localhost:${d.tcpPort}`, "--count", "2", "--interval", "0"]);
    expect(r.stdout.split("\n")[0]).toMatch(new RegExp(`^PROBE localhost:${d.tcpPort} \\((127\\.0\\.0\\.1|::1)\\) tcp: 2 lines of 64 bytes$`));
    expectPingOutput(r.stdout, `localhost:${d.tcpPort}`, "tcp", 2, 64);
    expect(r.code).toBe(0);
  });

  test("sizes from the shortest line to --max-line", async () => {
    for (const size of ["11", "4097"]) {
      const tcp = await probe([`127.0.0.1:${d.tcpPort}`, "--count", "2", "--interval", "0", "--size", size]);
      expect(tcp.code).toBe(0);
      expectPingOutput(tcp.stdout, `127.0.0.1:${d.tcpPort}`, "tcp", 2, Number(size));
    }
    const udp = await probe([`127.0.0.1:${d.udpPort}`, "--udp", "--count", "2", "--interval", "0", "--size", "65507"]);
    expect(udp.code).toBe(0);
    expectPingOutput(udp.stdout, `127.0.0.1:${d.udpPort}`, "udp", 2, 65507);
    // IPv6 carries 20 bytes more: the server's --max-datagram default, 65,527.
    const udp6 = await probe([`[::1]:${d.udpPort}`, "--udp", "--count", "2", "--interval", "0", "--size", "65527"]);
    expect(udp6.code).toBe(0);
    expectPingOutput(udp6.stdout, `[::1]:${d.udpPort}`, "udp", 2, 65527);
    const tooBig4 = await probe([`127.0.0.1:${d.udpPort}`, "--udp", "--size", "65508"]);
    expect(tooBig4.code).toBe(2);
    expect(tooBig4.stderr).toBe("epoll-echo probe: --size: 65508 bytes do not fit in an IPv4 UDP datagram to 127.0.0.1 (at most 65507)\n");
  });

  test("--json: one JSON report on stdout", async () => {
    const r = await probe([`127.0.0.1:${d.tcpPort}`, "--count", "4", "--interval", "0", "--json"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split("\n")).toHaveLength(1);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ mode: "ping", target: `127.0.0.1:${d.tcpPort}`, address: "127.0.0.1", proto: "tcp", size: 64, sent: 4, received: 4, lost: 0, mismatched: 0, ok: true });
    expect(j.replies.map((x: { seq: number; status: string; bytes: number }) => [x.seq, x.status, x.bytes])).toEqual([
      [1, "ok", 64],
      [2, "ok", 64],
      [3, "ok", 64],
      [4, "ok", 64],
    ]);
    for (const k of ["min", "avg", "p50", "p90", "p99", "max"]) expect(j.rtt_ms[k]).toBeGreaterThan(0);
    expect(j.rtt_ms.min).toBeLessThanOrEqual(j.rtt_ms.max);
  });

  test("a line over the server's --max-line comes back as ERR: mismatch, exit 1", async () => {
    const r = await probe([`127.0.0.1:${d.tcpPort}`, "--count", "1", "--size", "4098"]);
    expect(r.stdout).toContain(`18 bytes from 127.0.0.1:${d.tcpPort}: seq=1 rtt=`);
    expect(r.stdout).toContain("MISMATCH at byte 0 (sent 0x30, got 0x45), 18 bytes instead of 4098\n");
    expect(r.stdout).toContain("1 sent, 1 received, 0 lost, 1 mismatched\n");
    expect(r.code).toBe(1);
  });

  test("--command /stats and /time print the reply; ERR exits 1", async () => {
    const fresh = await startDaemon(["--port", "0"]);
    try {
      // The probe's own connection is the first client.
      let r = await probe([`127.0.0.1:${fresh.tcpPort}`, "--command", "/stats"]);
      expect(r).toEqual({ code: 0, stdout: "1 1 0\n", stderr: "" });
      // Once the server has seen it leave: 1 TCP + this UDP peer, 0 connected, 1 active.
      await Bun.sleep(200);
      r = await probe([`127.0.0.1:${fresh.udpPort}`, "--udp", "--command", "/stats"]);
      expect(r).toEqual({ code: 0, stdout: "2 0 1\n", stderr: "" });
      r = await probe([`[::1]:${fresh.tcpPort}`, "--command", "/stats", "--json"]);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({
        mode: "command",
        proto: "tcp",
        command: "/stats",
        reply: "3 1 1",
        stats: { total_clients: 3, tcp_connected_now: 1, udp_active: 1 },
        ok: true,
      });
      r = await probe([`127.0.0.1:${fresh.tcpPort}`, "--command", "/time"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$/);
      r = await probe([`127.0.0.1:${fresh.tcpPort}`, "--command", "/nope"]);
      expect(r).toEqual({ code: 1, stdout: "ERR unknown-command\n", stderr: "" });
      r = await probe([`127.0.0.1:${fresh.udpPort}`, "--udp", "--command", "/shutdown now"]);
      expect(r).toEqual({ code: 1, stdout: "ERR shutdown-not-allowed\n", stderr: "" });
    } finally {
      expect(await fresh.stop()).toBe(0);
    }
  });

  test("--command /instance and /whoami print the reply, over TCP and UDP", async () => {
    const named = await startDaemon(["--port", "0", "--instance", "probe-me"]);
    try {
      for (const [port, extra] of [[named.tcpPort, []], [named.udpPort, ["--udp"]]] as const) {
        expect(await probe([`127.0.0.1:${port}`, ...extra, "--command", "/instance"])).toEqual({ code: 0, stdout: "probe-me\n", stderr: "" });
        const r = await probe([`[::1]:${port}`, ...extra, "--command", "/whoami", "--json"]);
        expect(r.code).toBe(0);
        expect(JSON.parse(r.stdout)).toMatchObject({ mode: "command", command: "/whoami", reply: expect.stringMatching(/^::1 [1-9][0-9]*$/), ok: true });
      }
    } finally {
      expect(await named.stop()).toBe(0);
    }
  });

  test("--load over TCP: all lines verified, JSON report, exit 0", async () => {
    const r = await probe([`127.0.0.1:${d.tcpPort}`, "--load", "--connections", "3", "--pipeline", "8", "--duration", "0.6", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ mode: "load", proto: "tcp", connections: 3, pipeline: 8, size: 64, lost: 0, mismatched: 0, disconnects: 0, ok: true });
    expect(j.received).toBe(j.sent);
    expect(j.received).toBeGreaterThan(100);
    expect(j.bytes).toBe(j.received * 64);
    expect(j.lines_per_s).toBeGreaterThan(0);
    expect(j.rtt_ms.p50).toBeGreaterThan(0);
  });

  test("--load over UDP, text report and plain progress lines off a TTY", async () => {
    const r = await probe([`127.0.0.1:${d.udpPort}`, "--udp", "--load", "--connections", "2", "--pipeline", "4", "--duration", "1.3", "--size", "100"]);
    expect(r.code).toBe(0);
    const out = r.stdout.trimEnd().split("\n");
    expect(out[0]).toBe(`--- load 127.0.0.1:${d.udpPort} udp: 2 sockets x 4 in flight, 100-byte lines, ${out[0]!.match(/(\d+\.\d\d) s ---$/)?.[1]} s ---`);
    expect(out[1]).toMatch(/^lines: (\d+) sent, \1 received, 0 lost, 0 mismatched, 0 disconnects$/);
    expect(out[2]).toMatch(/^rate: \d+ lines\/s, \d+\.\d\d MB\/s echoed$/);
    expect(out[3]).toMatch(new RegExp(`^rtt min/avg/p50/p90/p99/max = ${RTT}(/${RTT}){5} ms$`));
    // Not a TTY: whole lines, no carriage returns or escape codes.
    expect(r.stderr).not.toContain("\r");
    expect(r.stderr).not.toContain("\x1b");
    expect(r.stderr).toMatch(/^ +1\.0s +\d+ lines\/s +\d+\.\d\d MB\/s  rtt p50 [\d.]+ p99 [\d.]+ ms  lost 0  mismatched 0\n/);
  });
});

describe("loss and mismatch detection", () => {
  test("UDP to a port where nothing listens: every datagram lost, exit 1", async () => {
    const port = await deadUdpPort();
    const r = await probe([`127.0.0.1:${port}`, "--udp", "--count", "3", "--interval", "0", "--timeout", "500"]);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(`PROBE 127.0.0.1:${port} udp: 3 datagrams of 64 bytes`);
    for (let seq = 1; seq <= 3; seq++) expect(lines[seq]).toMatch(new RegExp(`^seq=${seq} lost: (port unreachable \\(ECONNREFUSED\\)|no reply within 500 ms)$`));
    expect(r.stdout).toContain("3 sent, 0 received, 3 lost, 0 mismatched\nrtt: no replies\n");
    expect(r.code).toBe(1);
  });

  test("UDP --json to a dead port", async () => {
    const port = await deadUdpPort();
    const r = await probe([`127.0.0.1:${port}`, "--udp", "--count", "2", "--interval", "0", "--timeout", "300", "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toMatchObject({ sent: 2, received: 0, lost: 2, ok: false });
  });

  test("a UDP server that drops one datagram: that seq is lost, exit 1", async () => {
    const server = await faultyUdpServer({ dropNth: 2 });
    try {
      const r = await probe([`127.0.0.1:${server.port}`, "--udp", "--count", "3", "--interval", "0", "--timeout", "300"]);
      expect(r.stdout).toContain("\nseq=2 lost: no reply within 300 ms\n");
      expect(r.stdout).toContain("3 sent, 2 received, 1 lost, 0 mismatched\n");
      expect(r.code).toBe(1);
    } finally {
      server.close();
    }
  });

  test("--load over UDP against a server that flips one byte of one datagram: one mismatch, exit 1", async () => {
    const server = await faultyUdpServer({ corruptNth: 3, corruptByte: 20 });
    try {
      const r = await probe([`127.0.0.1:${server.port}`, "--udp", "--load", "--connections", "1", "--pipeline", "2", "--duration", "0.3", "--json"]);
      expect(JSON.parse(r.stdout)).toMatchObject({ mismatched: 1, lost: 0, ok: false });
      expect(r.code).toBe(1);
    } finally {
      server.close();
    }
  });

  test("a TCP server that flips one byte: that line is a mismatch, exit 1", async () => {
    // Byte 20 of the second 64-byte line.
    const server = corruptingTcpServer(64 + 20);
    try {
      const r = await probe([`127.0.0.1:${server.port}`, "--count", "3", "--interval", "0"]);
      const lines = r.stdout.trimEnd().split("\n");
      expect(lines[1]).toMatch(new RegExp(`^64 bytes from 127\\.0\\.0\\.1:${server.port}: seq=1 rtt=${RTT} ms$`));
      expect(lines[2]).toMatch(new RegExp(`^64 bytes from 127\\.0\\.0\\.1:${server.port}: seq=2 rtt=${RTT} ms MISMATCH at byte 20 \\(sent 0x([0-9a-f]{2}), got 0x[0-9a-f]{2}\\)$`));
      expect(lines[3]).toMatch(/ seq=3 rtt=[\d.]+ ms$/);
      expect(r.stdout).toContain("3 sent, 3 received, 0 lost, 1 mismatched\n");
      expect(r.code).toBe(1);
    } finally {
      server.stop(true);
    }
  });

  test("a UDP server that flips one byte: mismatch, exit 1", async () => {
    const server = await faultyUdpServer({ corruptNth: 1, corruptByte: 30 });
    try {
      const r = await probe([`127.0.0.1:${server.port}`, "--udp", "--count", "2", "--interval", "0", "--json"]);
      const j = JSON.parse(r.stdout);
      expect(j).toMatchObject({ sent: 2, received: 2, lost: 0, mismatched: 1, ok: false });
      expect(j.replies[0].detail).toMatch(/^MISMATCH at byte 30 /);
      expect(j.replies[1].status).toBe("ok");
      expect(r.code).toBe(1);
    } finally {
      server.close();
    }
  });

  test("--load notices a flipped byte, exit 1", async () => {
    const server = corruptingTcpServer(64 * 50 + 7);
    try {
      const r = await probe([`127.0.0.1:${server.port}`, "--load", "--connections", "1", "--pipeline", "4", "--duration", "0.3", "--json"]);
      const j = JSON.parse(r.stdout);
      // Each reconnect meets the same corruption again: at least one.
      expect(j.mismatched).toBeGreaterThanOrEqual(1);
      expect(j.ok).toBe(false);
      // Line 50 sits in slot 2 of the 4-line ring: the check follows the ring's wrap.
      expect(r.stderr).toContain(`epoll-echo probe: mismatch on a connection to 127.0.0.1:${server.port}: line 50 differs at byte 7; reconnecting\n`);
      expect(r.code).toBe(1);
    } finally {
      server.stop(true);
    }
  });
});

describe("usage and connection errors exit 2", () => {
  test("usage errors: one line and a hint on stderr, nothing on stdout", async () => {
    const cases: [string[], string][] = [
      [[], "missing HOST[:PORT] (the server to probe)"],
      [["127.0.0.1", "--bogus"], "unknown option --bogus"],
      [["127.0.0.1", "--count", "0"], "--count: 0 is out of range (1 to 1000000)"],
      [["[::1", "--count", "1"], 'target: expected HOST[:PORT] (IPv6 in brackets, e.g. [::1]:12345), got "[::1"'],
      [["127.0.0.1", "--connections", "2"], "--connections: only with --load"],
    ];
    for (const [args, message] of cases) {
      const r = await probe(args);
      expect(r).toEqual({ code: 2, stdout: "", stderr: `epoll-echo probe: ${message}\nTry 'epoll-echo probe --help' for the list of options.\n` });
    }
  });

  test("connection refused (TCP) and an unknown host", async () => {
    const port = await deadUdpPort(); // as good a guess as any for a closed TCP port
    let r = await probe([`127.0.0.1:${port}`, "--count", "1"]);
    if (r.code === 2) expect(r).toEqual({ code: 2, stdout: "", stderr: `epoll-echo probe: cannot connect to 127.0.0.1:${port}: connection refused (ECONNREFUSED)\n` });
    else throw new Error(`something listens on TCP ${port}: ${JSON.stringify(r)}`);
    r = await probe([`[::1]:${port}`, "--command", "/stats"]);
    expect(r).toEqual({ code: 2, stdout: "", stderr: `epoll-echo probe: cannot connect to [::1]:${port}: connection refused (ECONNREFUSED)\n` });
    r = await probe(["no-such-host.invalid", "--count", "1", "--timeout", "3000"]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toMatch(/^epoll-echo probe: cannot resolve no-such-host\.invalid: .+\n$/);
  });

  test("--help: usage on stdout, exit 0; the server's help lists the subcommand", () => {
    const r = runBinary(["probe", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("USAGE epoll-echo probe [OPTIONS] <TARGET>");
    expect(r.stdout).toContain("--load");
    const main = runBinary(["--help"]);
    expect(main.code).toBe(0);
    expect(main.stdout).toContain("USAGE epoll-echo [OPTIONS]\n      epoll-echo probe HOST[:PORT] [OPTIONS]\n");
    expect(main.stdout).toMatch(/\n {2}probe {4}check an echo server/);
    expect(main.stdout).toContain("--metrics=<ADDR:PORT>");
  });

  test("metrics are off by default", () => {
    expect(d.stderr()).not.toContain("metrics at");
  });
});
