// Scenario 5 — churn and resets: many connect / send / close cycles, a third
// of them reset (SO_LINGER 0) while the server is mid-reply with output
// queued behind a 4 KiB receive window, a third half-closing and reading
// every owed byte to the server's FIN. Run in two equal rounds. No crash, no
// leak: after each round the connection count returns to 0 and descriptors
// to their idle number, and the second round leaves RSS where the first left
// it (memory the allocator keeps is reused, not grown).
import { expect, test } from "bun:test";
import { startDaemon, type Daemon } from "../support/daemon.ts";
import { Child, echoProbe, eventually, figures, pick, RSS_BACK_MIB, RSS_BACK_MS, shares, sum, tcpStats, type ChildMessage } from "../support/stress.ts";
import { cpuSeconds, fdCount, mib, ProcSampler, readMem, resetPeakRss, rssSettles } from "../support/procfs.ts";

const CYCLES = pick(6000, 20_000);
const PROCS = 2;

interface Round {
  rs: ChildMessage[];
  probes: number;
  probeMax: number;
  connectedBack: boolean;
  fdsBack: boolean;
  rssAfterKiB: number;
  /** ms from the end of the round until RSS was back near idle, null if not within RSS_BACK_MS */
  rssBackMs: number | null;
}

async function round(d: Daemon, cycles: number, seed: number, idleFds: number, idleRssKiB: number, children: Child[]): Promise<Round> {
  const mine = shares(cycles, PROCS).map((n, i) => new Child("churn.ts", { port: d.tcpPort, cycles: n, concurrency: 32, seed: seed + i }));
  children.push(...mine);
  // While it churns, the server keeps answering others.
  let probes = 0;
  let probeMax = 0;
  const results = Promise.all(mine.map((c) => c.waitFor("result", pick(110_000, 280_000))));
  let finished = false;
  void results.finally(() => (finished = true));
  while (!finished) {
    probeMax = Math.max(probeMax, await echoProbe(d.tcpPort));
    probes++;
    await Bun.sleep(250);
  }
  const rs = await results;
  const ended = performance.now();
  const connectedBack = await eventually(async () => (await tcpStats(d.tcpPort))[1] === 1, 10_000, 200);
  const fdsBack = await eventually(() => fdCount(d.pid) === idleFds, 10_000, 200);
  const back = await rssSettles(d.pid, idleRssKiB + RSS_BACK_MIB * 1024, ended, RSS_BACK_MS);
  return { rs, probes, probeMax, connectedBack, fdsBack, rssAfterKiB: back.rssKiB, rssBackMs: back.ms };
}

test(
  `churn: ${CYCLES} connect/send/close cycles in two rounds, a third reset mid-reply; no crash, no leak`,
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
      const r1 = await round(d, CYCLES / 2, 50, idleFds, idle, children);
      const r2 = await round(d, CYCLES / 2, 60, idleFds, idle, children);
      const wall = (performance.now() - t0) / 1000;
      const cpu = cpuSeconds(d.pid) - cpu0;
      sampler.stop();
      const peak = Math.max(readMem(d.pid).hwmKiB, sampler.peakRssKiB);
      const stats = await tcpStats(d.tcpPort);
      const logLines = d.stderr().split("\n").filter((l) => l.trim() !== "").length;
      const rs = [...r1.rs, ...r2.rs];
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
        probes: r1.probes + r2.probes,
        probeMaxMs: Math.round(Math.max(r1.probeMax, r2.probeMax)),
        idleFds,
        fdsAfter: fdCount(d.pid),
        idleRssMiB: mib(idle),
        peakRssMiB: mib(peak),
        rssAfterRound1MiB: mib(r1.rssAfterKiB),
        rssAfterRound2MiB: mib(r2.rssAfterKiB),
        rssBackNearIdleMs: [r1, r2].map((r) => (r.rssBackMs === null ? "never" : Math.round(r.rssBackMs))).join("/"),
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
      for (const r of [r1, r2]) {
        expect(r.connectedBack).toBe(true); // tcp_connected_now back to 0 (+ the asking connection)
        expect(r.fdsBack).toBe(true); // no descriptor leak
        expect(r.probeMax).toBeLessThan(1000);
        expect(r.rssBackMs).not.toBeNull(); // memory went back to the system within RSS_BACK_MS
      }
      // No growth from one round to the next, and bounded overall.
      expect(mib(r2.rssAfterKiB - r1.rssAfterKiB)).toBeLessThan(16);
      expect(mib(r2.rssAfterKiB - idle)).toBeLessThan(64);
      // Resets are normal: no log line per connection at the default level.
      expect(logLines).toBeLessThan(10);
    } finally {
      for (const c of children) await c.kill();
      expect(await d.stop()).toBe(0);
    }
  },
  pick(120_000, 300_000),
);
