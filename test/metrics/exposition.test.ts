import { describe, expect, test } from "bun:test";
import {
  buildInfoFamily,
  escapeHelp,
  escapeLabelValue,
  exposition,
  formatFamilies,
  formatLabels,
  formatValue,
  processFamilies,
  serverFamilies,
  type StatsView,
} from "../../src/metrics/exposition.ts";
import type { ProcessSnapshot } from "../../src/metrics/process.ts";
import { Stats, UdpPeerTable } from "../../src/core/stats.ts";
import { parseExposition, promtool, promtoolCheck, sample } from "../support/metrics.ts";

/** An instance name with the characters label values must escape (all valid in --instance). */
const build = { version: "1.2.3", instance: 'we"ird\\name' };

function knownStats(): Stats {
  const s = new Stats(new UdpPeerTable(60_000, 100));
  s.tcpAccepted = 7;
  s.tcpRejectedBusy = 2;
  s.tcpConnected = 3;
  s.tcpLines = 1000;
  s.tcpOverflows = 4;
  s.tcpBytesIn = 12345;
  s.tcpBytesOut = 12000;
  s.tcpPendingOutput = 345;
  s.udpDatagrams = 50;
  s.udpTruncated = 1;
  s.udpBytesIn = 5000;
  s.udpBytesOut = 4990;
  s.udpLoopGuardDrops["low-port"] = 10;
  s.udpLoopGuardDrops["own-port"] = 11;
  s.udpRateLimited = 12;
  s.commands.time = 1;
  s.commands.stats = 2;
  s.commands.unknown = 5;
  s.commands.shutdown = 3;
  s.shutdownRejected["token-invalid"] = 2;
  s.shutdownRejected["not-allowed"] = 1;
  s.proxyHeaderErrors = 6;
  s.tlsHandshakes.ok = 8;
  s.tlsHandshakes.failed = 9;
  s.udpPeers.touch("127.0.0.1", 40000, 1000);
  s.udpPeers.touch("::1", 40001, 1000);
  s.udpPeers.touch("::1", 40002, -100_000); // aged out by nowMs = 2000
  return s;
}

const proc: ProcessSnapshot = { residentBytes: 41_000_000, virtualBytes: 6_000_000_000, cpuSeconds: 1.25, openFds: 12, maxFds: 20000, startTimeSeconds: 1_700_000_000.5 };

describe("exposition formatting", () => {
  test("the server's counters and gauges, exactly", () => {
    const text = formatFamilies(serverFamilies(knownStats(), 2000));
    const samples = text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
    expect(samples).toEqual([
      "epoll_echo_tcp_accepted_total 7",
      "epoll_echo_tcp_rejected_busy_total 2",
      "epoll_echo_tcp_lines_total 1000",
      "epoll_echo_tcp_overflows_total 4",
      'epoll_echo_bytes_received_total{proto="tcp"} 12345',
      'epoll_echo_bytes_received_total{proto="udp"} 5000',
      'epoll_echo_bytes_sent_total{proto="tcp"} 12000',
      'epoll_echo_bytes_sent_total{proto="udp"} 4990',
      "epoll_echo_udp_datagrams_total 50",
      "epoll_echo_udp_truncated_total 1",
      'epoll_echo_udp_loop_guard_drops_total{rule="low-port"} 10',
      'epoll_echo_udp_loop_guard_drops_total{rule="own-port"} 11',
      "epoll_echo_udp_rate_limited_total 12",
      'epoll_echo_commands_total{command="time"} 1',
      'epoll_echo_commands_total{command="stats"} 2',
      'epoll_echo_commands_total{command="whoami"} 0',
      'epoll_echo_commands_total{command="instance"} 0',
      'epoll_echo_commands_total{command="shutdown"} 3',
      'epoll_echo_commands_total{command="unknown"} 5',
      'epoll_echo_shutdown_rejected_total{reason="token-required"} 0',
      'epoll_echo_shutdown_rejected_total{reason="loopback-required"} 0',
      'epoll_echo_shutdown_rejected_total{reason="token-missing"} 0',
      'epoll_echo_shutdown_rejected_total{reason="token-invalid"} 2',
      'epoll_echo_shutdown_rejected_total{reason="not-allowed"} 1',
      "epoll_echo_proxy_header_errors_total 6",
      'epoll_echo_tls_handshakes_total{result="ok"} 8',
      'epoll_echo_tls_handshakes_total{result="failed"} 9',
      "epoll_echo_tcp_connections 3",
      "epoll_echo_udp_active_peers 2",
      "epoll_echo_tcp_pending_output_bytes 345",
    ]);
  });

  test("build info: constant 1, version and instance as labels, escaped", () => {
    expect(formatFamilies([buildInfoFamily(build)])).toBe(
      "# HELP epoll_echo_build_info Always 1; the version and the --instance name (the hostname by default) as labels.\n" +
        "# TYPE epoll_echo_build_info gauge\n" +
        'epoll_echo_build_info{version="1.2.3",instance="we\\"ird\\\\name"} 1\n',
    );
  });

  test("each family has HELP then TYPE, counters end in _total", () => {
    const families = [...serverFamilies(knownStats(), 2000), ...processFamilies(proc)];
    const text = formatFamilies(families);
    for (const f of families) {
      expect(text).toContain(`# HELP ${f.name} `);
      expect(text).toContain(`# TYPE ${f.name} ${f.type}\n`);
      expect(text.indexOf(`# HELP ${f.name} `)).toBeLessThan(text.indexOf(`# TYPE ${f.name} `));
      if (f.type === "counter") expect(f.name.endsWith("_total")).toBe(true);
    }
    expect(text.endsWith("\n")).toBe(true);
  });

  test("process metrics use the standard names", () => {
    const text = formatFamilies(processFamilies(proc));
    expect(text).toContain("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.25\n");
    expect(text).toContain("# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 41000000\n");
    expect(text).toContain("process_open_fds 12\n");
    expect(text).toContain("process_max_fds 20000\n");
    expect(text).toContain("process_start_time_seconds 1700000000.5\n");
    expect(text).toContain("process_virtual_memory_bytes 6000000000\n");
    // Unknown values are left out rather than invented.
    const partial = formatFamilies(processFamilies({ ...proc, openFds: null, maxFds: null, virtualBytes: null }));
    expect(partial).not.toContain("process_open_fds");
    expect(partial).not.toContain("process_max_fds");
    expect(partial).not.toContain("process_virtual_memory_bytes");
  });

  test("an unexpected refusal reason still gets its series", () => {
    const s = knownStats();
    s.shutdownRejected["something-new"] = 9;
    expect(formatFamilies(serverFamilies(s, 2000))).toContain('epoll_echo_shutdown_rejected_total{reason="something-new"} 9\n');
  });

  test("escaping and values", () => {
    expect(escapeHelp("a\\b\nc")).toBe("a\\\\b\\nc");
    expect(escapeLabelValue('q"\\\n')).toBe('q\\"\\\\\\n');
    expect(formatLabels({ a: "1", b: 'x"y' })).toBe('{a="1",b="x\\"y"}');
    expect(formatLabels(undefined)).toBe("");
    expect(formatLabels({})).toBe("");
    expect(formatValue(0)).toBe("0");
    expect(formatValue(2 ** 53)).toBe("9007199254740992");
    expect(formatValue(0.5)).toBe("0.5");
    expect(formatValue(NaN)).toBe("NaN");
    expect(formatValue(Infinity)).toBe("+Inf");
    expect(formatValue(-Infinity)).toBe("-Inf");
  });

  test("invalid names are refused", () => {
    expect(() => formatFamilies([{ name: "9bad", help: "", type: "gauge", samples: [] }])).toThrow();
    expect(() => formatLabels({ "bad-label": "x" })).toThrow();
    expect(() => formatLabels({ __reserved: "x" })).toThrow();
  });

  test("an independent parser reads back the same numbers", () => {
    const stats: StatsView = knownStats();
    const families = parseExposition(exposition(stats, build, 2000, proc));
    expect(sample(families, "epoll_echo_tcp_lines_total")).toBe(1000);
    expect(sample(families, "epoll_echo_bytes_received_total", { proto: "udp" })).toBe(5000);
    expect(sample(families, "epoll_echo_commands_total", { command: "unknown" })).toBe(5);
    expect(sample(families, "epoll_echo_shutdown_rejected_total", { reason: "token-invalid" })).toBe(2);
    expect(sample(families, "process_start_time_seconds")).toBe(1_700_000_000.5);
    expect(families.find((f) => f.name === "epoll_echo_tcp_connections")?.type).toBe("GAUGE");
    expect(sample(families, "epoll_echo_build_info", { version: "1.2.3", instance: 'we"ird\\name' })).toBe(1);
  });

  test.skipIf(!promtool)("promtool check metrics accepts it (no lint problems)", async () => {
    const r = await promtoolCheck(exposition(knownStats(), build, 2000, proc));
    expect(r.output).toBe("");
    expect(r.code).toBe(0);
  });
  if (!promtool) console.log("skipping promtool check: promtool not installed (apt-get install prometheus)");
});
