// Scenario 9 — /shutdown abuse: near-miss tokens (one byte off, too short, too
// long, trailing bytes that are not the trimmed spaces and tabs), the right
// token from a non-loopback peer (a veth pair into a network namespace this
// test creates), over UDP (also with a forged source address), and 10,000
// wrong attempts in a row. The server stays up; refusals are logged at
// warning level without the token and without flooding the log; a connection
// is closed after a few refused attempts; and the right token from loopback
// (with spaces and tabs around it) still works at the end.
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { startDaemon, type Daemon } from "../support/daemon.ts";
import { TcpClient, udpRequest } from "../support/net.ts";
import { countLines, echoProbe, figures, pick } from "../support/stress.ts";
import { cpuSeconds, mib, readMem } from "../support/procfs.ts";
import { createVethNetns, vethNetnsUnavailable } from "../support/veth-netns.ts";
import { ROOT } from "../support/daemon.ts";
import * as raw from "../support/rawsock.ts";

const TOKEN = randomBytes(16).toString("hex");
const WRONG_IN_A_ROW = 10_000;
/** Refused attempts after which the server closes the connection. */
const MAX_FAILURES = 5;
const INVALID = "ERR shutdown-token-invalid\n";

const dir = mkdtempSync(join(tmpdir(), "ee-stress-token-"));
const tokenFile = join(dir, "token");
writeFileSync(tokenFile, TOKEN + "\n", { mode: 0o600 });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Send attempts on fresh connections, at most `per` on each; returns the replies in order. */
async function attempts(d: Daemon, lines: string[], per = MAX_FAILURES - 1, host = "127.0.0.1"): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < lines.length; i += per) {
    const batch = lines.slice(i, i + per);
    const c = await TcpClient.connect(d.tcpPort, host);
    for (const l of batch) {
      c.send(l);
      await c.until(() => c.data.includes(0x0a), 5000, `reply to ${JSON.stringify(l)}`);
      const nl = c.data.indexOf(0x0a);
      out.push((await c.read(nl + 1)).toString("latin1"));
    }
    c.close();
  }
  return out;
}

test(
  "/shutdown abuse: near misses, non-loopback peer, UDP, 10,000 wrong attempts; stays up, logs bounded, token never logged",
  async () => {
    const d = await startDaemon(["--port", "0", "--shutdown-token-file", tokenFile]);
    try {
      const idle = readMem(d.pid).rssKiB;
      const cpu0 = cpuSeconds(d.pid);
      // 1. The right token from a peer that is not loopback (first: the log budget is fresh).
      let nonLoopback = "skipped";
      const why = vethNetnsUnavailable();
      if (why !== null) {
        console.log(`[stress] 09: non-loopback part skipped: ${why}`);
      } else {
        const ns = createVethNetns();
        try {
          const payload = `/shutdown ${TOKEN}\n/shutdown wrong\n/shutdown\nstill echoed\n`;
          const r = Bun.spawnSync(
            ns.command([process.execPath, join(ROOT, "test", "support", "exchange.ts"), "tcp", ns.hostAddress, String(d.tcpPort), Buffer.from(payload).toString("hex")]),
            { stdout: "pipe", stderr: "pipe", timeout: 15_000 },
          );
          expect(r.exitCode).toBe(0);
          nonLoopback = Buffer.from(r.stdout.toString().trim(), "hex").toString("latin1");
          expect(nonLoopback).toBe("ERR shutdown-loopback-required\nERR shutdown-loopback-required\nERR shutdown-token-required\nstill echoed\n");
          await d.waitForLog(new RegExp(`shutdown refused reason=loopback-required proto=tcp conn=\\d+ peer=${ns.nsAddress.replace(/\./g, "\\.")}:\\d+`));
          if (ns.hostAddress6 !== null) {
            const r6 = Bun.spawnSync(
              ns.command([process.execPath, join(ROOT, "test", "support", "exchange.ts"), "tcp", ns.hostAddress6, String(d.tcpPort), Buffer.from(`/shutdown ${TOKEN}\n`).toString("hex")]),
              { stdout: "pipe", stderr: "pipe", timeout: 15_000 },
            );
            expect(Buffer.from(r6.stdout.toString().trim(), "hex").toString("latin1")).toBe("ERR shutdown-loopback-required\n");
          }
        } finally {
          ns.destroy();
        }
      }

      // 2. Near misses from loopback.
      const flip = (s: string, i: number) => s.slice(0, i) + (s[i] === "a" ? "b" : "a") + s.slice(i + 1);
      const nearMisses = [
        ...Array.from({ length: TOKEN.length }, (_, i) => flip(TOKEN, i)), // one byte off, each position
        TOKEN.slice(0, -1), // one byte short
        TOKEN.slice(1),
        TOKEN + "0", // one byte long
        "0" + TOKEN,
        TOKEN + TOKEN,
        TOKEN.toUpperCase(),
        TOKEN.slice(0, 1),
        TOKEN + "\v", // trailing bytes that are not the trimmed space/tab
        TOKEN + "\f",
        TOKEN + "\x00",
        TOKEN + "\r\r", // sent as "TOKEN\r\r\n": only the CR right before the LF is a terminator
        "\v" + TOKEN,
        TOKEN + " x",
        TOKEN.slice(0, 16) + " " + TOKEN.slice(16),
        "x".repeat(3000), // very long, still under --max-line
      ];
      const nearReplies = await attempts(d, nearMisses.map((t) => `/shutdown ${t}\n`));
      for (const [i, r] of nearReplies.entries()) expect([i, r]).toEqual([i, INVALID]);
      const noArg = await attempts(d, ["/shutdown\n", "/shutdown \t \n", "/shutdown\r\n"]);
      expect(noArg).toEqual(["ERR shutdown-token-required\n", "ERR shutdown-token-required\n", "ERR shutdown-token-required\n"]);

      // 3. UDP, never allowed: plain, CRLF, with the token, and forged from another loopback address.
      for (const p of [`/shutdown ${TOKEN}`, `/shutdown ${TOKEN}\r\n`, `/shutdown ${TOKEN}\n/shutdown ${TOKEN}\n`, "/shutdown", `/shutdown\t${TOKEN}\t`]) {
        expect((await udpRequest(d.udpPort, p)).toString("latin1")).toBe("ERR shutdown-not-allowed\n");
      }
      const catcher = raw.socket(raw.AF_INET, raw.SOCK_DGRAM);
      expect(raw.bind(catcher, "127.77.0.1", 0)).toBe(0);
      const catchPort = raw.localPort(catcher);
      expect(raw.sendForgedUdp("127.77.0.1", catchPort, "127.0.0.1", d.udpPort, new TextEncoder().encode(`/shutdown ${TOKEN}\n`))).toBeGreaterThan(0);
      let forged: raw.Datagram | number = -raw.EAGAIN;
      for (let i = 0; i < 100 && typeof forged === "number"; i++) {
        await Bun.sleep(20);
        forged = raw.recvfrom(catcher, 200, raw.MSG_DONTWAIT);
      }
      raw.close(catcher);
      expect(typeof forged).toBe("object");
      expect(new TextDecoder().decode((forged as raw.Datagram).data)).toBe("ERR shutdown-not-allowed\n");

      // 4. 10,000 wrong attempts in a row, as fast as the server answers.
      const t0 = performance.now();
      let answered = 0;
      let connections = 0;
      let maxPerConnection = 0;
      const wrong = `/shutdown ${flip(TOKEN, 7)}\n`;
      while (answered < WRONG_IN_A_ROW) {
        const c = await TcpClient.connect(d.tcpPort);
        connections++;
        const n = Math.min(MAX_FAILURES + 3, WRONG_IN_A_ROW - answered);
        c.send(wrong.repeat(n));
        const got = (await c.readToEnd(10_000)).toString("latin1");
        const replies = got.split("\n").filter((x) => x !== "").length;
        expect(got).toBe(INVALID.repeat(replies));
        expect(replies).toBeGreaterThan(0);
        maxPerConnection = Math.max(maxPerConnection, replies);
        answered += replies;
        c.close();
      }
      const wrongSeconds = (performance.now() - t0) / 1000;
      const probeMs = await echoProbe(d.tcpPort);
      // The refusals past the log budget are summed up when the 10 s window ends.
      const summary = await d.waitForLog(/WARN\s+more \/shutdown refusals not logged count=(\d+)/, 15_000);
      const peakKiB = readMem(d.pid).hwmKiB;
      const cpu = cpuSeconds(d.pid) - cpu0;

      // 5. The right token, with spaces and tabs around it, from loopback.
      const c = await TcpClient.connect(d.tcpPort, "::1");
      c.send(`/shutdown \t ${TOKEN} \t\n`);
      expect((await c.readToEnd()).toString()).toBe("OK, shutting down\n");
      expect(await d.exited).toBe(0);

      const log = d.stderr();
      const refusedLines = countLines(log, /shutdown refused/);
      const warnLines = countLines(log, /WARN/);
      figures("09 shutdown abuse", {
        nearMisses: nearMisses.length,
        nonLoopback: nonLoopback === "skipped" ? "skipped" : "refused",
        wrongAttempts: answered,
        wrongConnections: connections,
        maxRefusalsPerConnection: maxPerConnection,
        wrongSeconds: Math.round(wrongSeconds * 10) / 10,
        probeMs: Math.round(probeMs),
        logLines: log.split("\n").length,
        refusalLogLines: refusedLines,
        firstSummaryCount: Number(summary[1]),
        warnLines,
        idleRssMiB: mib(idle),
        peakRssMiB: mib(peakKiB),
        serverCpuSeconds: cpu,
      });
      expect(log).not.toContain(TOKEN);
      expect(log).toMatch(/WARN\s+shutdown refused reason=token-invalid/);
      expect(log).toContain("shutdown requested");
      // A connection is cut off after a few refusals...
      expect(maxPerConnection).toBe(MAX_FAILURES);
      // ...and 10,000 refusals do not write 10,000 warnings.
      expect(refusedLines).toBeLessThan(200);
    } finally {
      await d.stop();
    }
  },
  pick(120_000, 180_000),
);
