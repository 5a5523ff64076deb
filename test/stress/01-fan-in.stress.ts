// Scenario 1 — fan-in: thousands of concurrent TCP clients, each echoing
// lines for a while from load-generator processes; every byte is checked and
// no client may wait more than 1 s for any of its replies.
import { expect, test } from "bun:test";
import { startDaemon } from "../support/daemon.ts";
import { Child, figures, max, pick, shares, sum, tcpStats, waitAll } from "../support/stress.ts";
import { cpuSeconds, mib, ProcSampler, readMem, resetPeakRss } from "../support/procfs.ts";

const CLIENTS = pick(1000, 5000);
const PROCS = pick(2, 4);
const DURATION_MS = pick(6_000, 30_000);
const INTERVAL_MS = 500;

test(
  `fan-in: ${CLIENTS} concurrent clients echo for ${DURATION_MS / 1000} s, every byte checked, none starved`,
  async () => {
    const d = await startDaemon(["--port", "0", "--max-tcp", String(CLIENTS + 16), "--backlog", "4096"]);
    const children: Child[] = [];
    try {
      await Bun.sleep(300);
      const idle = readMem(d.pid).rssKiB;
      resetPeakRss(d.pid);
      const sampler = new ProcSampler(d.pid, 250);
      for (const [i, n] of shares(CLIENTS, PROCS).entries()) {
        children.push(
          new Child("echo-clients.ts", {
            port: d.tcpPort,
            count: n,
            seed: 1000 + i,
            idBase: i * 1_000_000,
            mode: "pingpong",
            intervalMs: INTERVAL_MS,
            lineMin: 16,
            lineMax: 512,
            connectConcurrency: 64,
          }),
        );
      }
      const connected = await waitAll(children, "connected", 90_000);
      expect(sum(connected, "count")).toBe(CLIENTS);
      const [, nowConnected] = await tcpStats(d.tcpPort);
      expect(nowConnected).toBe(CLIENTS + 1); // + the /stats connection itself

      const cpu0 = cpuSeconds(d.pid);
      const t0 = performance.now();
      for (const c of children) c.send({ cmd: "go", durationMs: DURATION_MS });
      const results = await waitAll(children, "result", DURATION_MS + 30_000);
      const wall = (performance.now() - t0) / 1000;
      const cpu = cpuSeconds(d.pid) - cpu0;
      sampler.stop();
      const mem = readMem(d.pid);

      const lines = sum(results, "lines");
      figures("01 fan-in", {
        clients: CLIENTS,
        processes: PROCS,
        seconds: Math.round(wall),
        lines,
        bytesChecked: sum(results, "bytesChecked"),
        mismatches: sum(results, "mismatches"),
        maxLatencyMs: max(results, "maxLatencyMs"),
        p99LatencyMs: max(results, "p99LatencyMs"),
        minLinesPerClient: Math.min(...results.map((r) => Number(r.minLinesPerClient))),
        starved: sum(results, "starved"),
        idleRssMiB: mib(idle),
        peakRssMiB: mib(mem.hwmKiB),
        serverCpuSeconds: cpu,
        serverCpuPct: Math.round((cpu / wall) * 100),
      });
      for (const r of results) expect(r.firstMismatch).toBe("");
      expect(sum(results, "mismatches")).toBe(0);
      expect(sum(results, "starved")).toBe(0);
      expect(max(results, "maxLatencyMs")).toBeLessThan(1000);
      // Every client got replies all along (~one line per INTERVAL_MS each).
      expect(Math.min(...results.map((r) => Number(r.minLinesPerClient)))).toBeGreaterThanOrEqual(Math.floor(DURATION_MS / INTERVAL_MS / 4));
      expect(sum(results, "resets")).toBe(0);
    } finally {
      for (const c of children) await c.kill();
      expect(await d.stop()).toBe(0);
    }
  },
  pick(120_000, 300_000),
);
