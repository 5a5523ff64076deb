// The UDP echo-loop guards and the per-source reply rate limit (issue 12), on
// the compiled binary: a datagram from the server's own port is not answered;
// a non-loopback source gets at most --udp-rate replies a second (burst the
// same), the rest dropped silently and counted; loopback is exempt; the
// probe says why replies went missing.
import { expect, test } from "bun:test";
import { BINARY, startDaemon } from "../support/daemon.ts";
import { createTestNetns, NETNS_ADDRESS } from "../support/netns.ts";
import { parseExposition, sample, scrape } from "../support/metrics.ts";
import * as raw from "../support/rawsock.ts";

const METRICS_URL = /metrics at (http:\/\/\S+\/metrics)/;

test("no reply to a datagram from the server's own UDP port: counted as own-port, one warning", async () => {
  if (process.getuid?.() !== 0) {
    console.log("skipped: forging a source port needs a raw socket (root)");
    return;
  }
  const d = await startDaemon(["--port", "0", "--metrics", "127.0.0.1:0"]);
  try {
    const url = (await d.waitForLog(METRICS_URL))[1]!;
    // Forged from the server's own address and port: if it answered, it would be talking to itself.
    for (let i = 0; i < 3; i++) expect(raw.sendForgedUdp("127.0.0.1", d.udpPort, "127.0.0.1", d.udpPort, new TextEncoder().encode("loop?"))).toBeGreaterThan(0);
    let m = parseExposition((await scrape(url)).body);
    for (let i = 0; i < 100 && sample(m, "epoll_echo_udp_datagrams_total") < 3; i++) {
      await Bun.sleep(20);
      m = parseExposition((await scrape(url)).body);
    }
    expect(sample(m, "epoll_echo_udp_datagrams_total")).toBe(3);
    expect(sample(m, "epoll_echo_udp_loop_guard_drops_total", { rule: "own-port" })).toBe(3);
    expect(sample(m, "epoll_echo_udp_loop_guard_drops_total", { rule: "low-port" })).toBe(0);
    expect(sample(m, "epoll_echo_bytes_sent_total", { proto: "udp" })).toBe(0);
    // The warning reaches stderr through a pipe: wait for it rather than race the scrape.
    await d.waitForLog(/not answering UDP from this server's own port/);
    const warnings = d.stderr().split("\n").filter((l) => l.includes("not answering UDP from this server's own port"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(new RegExp(`WARN .*peer=127\\.0\\.0\\.1:${d.udpPort} dropped=1$`));
  } finally {
    expect(await d.stop()).toBe(0);
  }
});

test("--udp-rate: a non-loopback source gets the burst then the rate, the rest dropped silently; loopback is exempt; the probe says why", async () => {
  const ns = createTestNetns();
  if (typeof ns === "string") {
    console.log(`skipped: no network namespace (${ns})`);
    return;
  }
  try {
    const d = await startDaemon(["--port", "0", "--udp-rate", "5", "--metrics", "127.0.0.1:0"], { command: [...ns.exec, BINARY] });
    try {
      const url = (await d.waitForLog(METRICS_URL))[1]!;
      const load = (host: string) => {
        const t0 = performance.now();
        const r = Bun.spawnSync([...ns.exec, BINARY, "probe", `${host}:${d.udpPort}`, "--load", "--udp", "--connections", "1", "--pipeline", "20", "--duration", "1", "--timeout", "300"]);
        const out = r.stdout.toString();
        const m = /lines: (\d+) sent, (\d+) received, (\d+) lost, \d+ mismatched(?:, (\d+) late)?/.exec(out);
        if (!m) throw new Error(`unexpected probe output:\n${out}${r.stderr}`);
        // "late": answered after the probe's 300 ms timeout (a loaded machine), so sent by the server, yet counted lost.
        return { code: r.exitCode, out, sent: Number(m[1]), received: Number(m[2]), lost: Number(m[3]), late: Number(m[4] ?? 0), seconds: (performance.now() - t0) / 1000 };
      };
      // From 198.18.0.1: 20 datagrams at once, 5 answered (the burst), then about 5 a second.
      const limited = load(NETNS_ADDRESS);
      expect(limited.code).toBe(1);
      expect(limited.received).toBeGreaterThanOrEqual(5);
      expect(limited.received).toBeLessThanOrEqual(5 + Math.ceil(5 * limited.seconds));
      expect(limited.lost).toBeGreaterThan(0);
      expect(limited.out).toContain(`hint: ${limited.lost} replies lost. epoll-echo answers at most --udp-rate datagrams a second per source address`);
      // The same from loopback (inside the same namespace): nothing lost, no hint.
      const local = load("127.0.0.1");
      expect([local.code, local.lost]).toEqual([0, 0]);
      expect(local.received).toBeGreaterThan(100);
      expect(local.out).not.toContain("hint:");

      // Scraped from inside the namespace, where the metrics listener is.
      const body = Bun.spawnSync([...ns.exec, process.execPath, "-e", `process.stdout.write(await (await fetch(${JSON.stringify(url)})).text())`]).stdout.toString();
      const m = parseExposition(body);
      expect(sample(m, "epoll_echo_udp_rate_limited_total")).toBe(limited.sent - limited.received - limited.late);
      expect(sample(m, "epoll_echo_udp_datagrams_total")).toBe(limited.sent + local.sent);
      await d.waitForLog(/over --udp-rate/); // the spawnSync calls above held up reading its stderr
      const warnings = d.stderr().split("\n").filter((l) => l.includes("over --udp-rate"));
      expect(warnings).toHaveLength(1); // one per 10 s at most
      expect(warnings[0]).toMatch(/WARN +UDP source over --udp-rate 5\/s, replies dropped \(raise --udp-rate, or 0 for no limit; loopback is exempt\) peer=198\.18\.0\.1:\d+ dropped=1$/);
    } finally {
      expect(await d.stop()).toBe(0);
    }
  } finally {
    ns.remove();
  }
});
