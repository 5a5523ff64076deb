// Scenario 5 — churn and resets: many connect / send / close cycles, a third
// of them reset (SO_LINGER 0) while the server is mid-reply with output
// queued behind a 4 KiB receive window, a third half-closing and reading
// every owed byte to the server's FIN. No crash, no leak: the connection
// count returns to 0, descriptors to their idle number, RSS near idle.
import { expect, test } from "bun:test";
import { startDaemon } from "../support/daemon.ts";
import { Child, echoProbe, eventually, figures, pick, shares, sum, tcpStats, waitAll } from "../support/stress.ts";
import { cpuSeconds, fdCount, mib, ProcSampler, readMem, resetPeakRss } from "../support/procfs.ts";

const CYCLES = pick(6000, 20_000);
const PROCS = 2;

test(
  `churn: ${CYCLES} connect/send/close cycles, a third reset mid-reply; no crash, no leak`,
  async () => {
    const d = await startDaemon(["--port", "0", "--backlog", "1024"]);
    const children: Child[] = [];
    try {
      await echoProbe(d.tcpPort);
      await Bun.sleep(500);
      const idle = readMem(d.pid).rssKiB;
      const idleFds = fdCount(d.pid);
      resetPeakRss(d.pid);
      const sampler = new ProcSampler(d.pid, 250);
      const cpu0 = cpuSeconds(d.pid);
      const t0 = performance.now();
      for (const [i, n] of shares(CYCLES, PROCS).entries()) {
        children.push(new Child("churn.ts", { port: d.tcpPort, cycles: n, concurrency: 32, seed: 50 + i }));
      }
      // While it churns, the server keeps answering others.
      let probes = 0;
      let probeMax = 0;
      const results = Promise.all(children.map((c) => c.waitFor("result", pick(110_000, 280_000))));
      let finished = false;
      void results.finally(() => (finished = true));
      while (!finished) {
        probeMax = Math.max(probeMax, await echoProbe(d.tcpPort));
        probes++;
        await Bun.sleep(250);
      }
      const rs = await results;
      const wall = (performance.now() - t0) / 1000;
      const cpu = cpuSeconds(d.pid) - cpu0;
      const connectedBack = await eventually(async () => (await tcpStats(d.tcpPort))[1] === 1, 10_000, 200);
      const fdsBack = await eventually(() => fdCount(d.pid) === idleFds, 10_000, 200);
      // RSS settles as the allocator gives memory back.
      await eventually(() => readMem(d.pid).rssKiB - idle < 48 * 1024, 10_000, 500);
      sampler.stop();
      const after = readMem(d.pid).rssKiB;
      const peak = Math.max(readMem(d.pid).hwmKiB, sampler.peakRssKiB);
      const stats = await tcpStats(d.tcpPort);
      const logLines = d.stderr().split("\n").filter((l) => l.trim() !== "").length;
      figures("05 churn+resets", {
        cycles: sum(rs, "cycles"),
        rst: sum(rs, "rst"),
        rstMidReply: sum(rs, "rstMidReply"),
        eof: sum(rs, "eof"),
        close: sum(rs, "close"),
        bytesChecked: sum(rs, "bytesChecked"),
        mismatches: sum(rs, "mismatches"),
        errors: sum(rs, "errors"),
        seconds: Math.round(wall),
        probes,
        probeMaxMs: Math.round(probeMax),
        idleFds,
        fdsAfter: fdCount(d.pid),
        idleRssMiB: mib(idle),
        peakRssMiB: mib(peak),
        rssAfterMiB: mib(after),
        totalClientsAfter: stats[0],
        serverCpuSeconds: cpu,
        logLines,
      });
      for (const r of rs) {
        expect(r.firstError).toBe("");
        expect(r.firstMismatch).toBe("");
      }
      expect(sum(rs, "cycles")).toBe(CYCLES);
      expect(sum(rs, "rst") + sum(rs, "eof") + sum(rs, "close")).toBe(CYCLES);
      // The resets really hit replies in progress.
      expect(sum(rs, "rstMidReply")).toBeGreaterThan(sum(rs, "rst") * 0.9);
      expect(d.proc.exitCode).toBeNull(); // no crash
      expect(connectedBack).toBe(true); // tcp_connected_now back to 0 (+ the asking connection)
      expect(fdsBack).toBe(true); // no descriptor leak
      expect(mib(after - idle)).toBeLessThan(48); // RSS back near idle
      expect(probeMax).toBeLessThan(1000);
      // Resets are normal: no log line per connection at the default level.
      expect(logLines).toBeLessThan(10);
    } finally {
      for (const c of children) await c.kill();
      expect(await d.stop()).toBe(0);
    }
  },
  pick(120_000, 300_000),
);
