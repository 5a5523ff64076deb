// Scenario 12 — a connection flood against --metrics must not hurt the echo
// service (issue 12). The server runs with RLIMIT_NOFILE 1,024 (soft = hard)
// and --max-tcp 100; echo clients keep pinging while 2,000 connections are
// opened and held against the metrics port, plus a churn of short ones.
// Before the fix, Bun.serve took every connection: 100 held ones under
// `ulimit -n 64` pushed the process into Bun's EMFILE accept spin (a full
// core). Now at most 16 are admitted (the rest get 503 and are closed at
// once) and idle ones are closed after a few seconds: echo replies stay
// sub-second, descriptors stay under the limit, no spin, and scrapes work
// again once the flood is gone.
import { expect, test } from "bun:test";
import { LAUNCH, startDaemon } from "../support/daemon.ts";
import { Child, eventually, figures, pick } from "../support/stress.ts";
import { cpuSeconds, fdCount, nofileLimit, ProcSampler } from "../support/procfs.ts";
import { scrape } from "../support/metrics.ts";

const LIMIT = 1024;
const HOLD = 2000;
const CHURN_PER_SEC = pick(100, 200);
const FLOOD_MS = pick(4000, 15_000);
const ECHO_CLIENTS = 50;
const BUSY_TEXT =
  "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 29\r\nConnection: close\r\nRetry-After: 1\r\n\r\ntoo many metrics connections\n";

test(
  `metrics flood: ulimit -n ${LIMIT}, --max-tcp 100, ${HOLD} held + ${CHURN_PER_SEC}/s connections to --metrics while ${ECHO_CLIENTS} echo clients run`,
  async () => {
    const d = await startDaemon(["--port", "0", "--max-tcp", "100", "--metrics", "127.0.0.1:0"], {
      command: ["prlimit", `--nofile=${LIMIT}:${LIMIT}`, ...LAUNCH],
    });
    const children: Child[] = [];
    try {
      expect(nofileLimit(d.pid)).toEqual({ soft: LIMIT, hard: LIMIT });
      const url = (await d.waitForLog(/metrics at (http:\/\/\S+\/metrics)/))[1]!;
      const metricsPort = Number(/:(\d+)\/metrics$/.exec(url)![1]);
      expect((await scrape(url)).status).toBe(200);
      const idleFds = fdCount(d.pid);

      const echo = new Child("echo-clients.ts", { port: d.tcpPort, count: ECHO_CLIENTS, seed: 12, mode: "pingpong", intervalMs: 200 });
      children.push(echo);
      await echo.waitFor("connected", 30_000);
      echo.send({ cmd: "go" });

      const sampler = new ProcSampler(d.pid, 100);
      const cpu0 = cpuSeconds(d.pid);
      const t0 = performance.now();
      const flood = new Child("flood.ts", { port: metricsPort, hold: HOLD, churnPerSec: CHURN_PER_SEC, busyText: BUSY_TEXT, replyTimeoutMs: 2000 });
      children.push(flood);
      const held = await flood.waitFor("held", 120_000);
      const scrapeWhileHeld = (await scrape(url)).status;
      flood.send({ cmd: "go", durationMs: FLOOD_MS });
      const fr = await flood.waitFor("result", FLOOD_MS + 60_000);
      const floodWall = (performance.now() - t0) / 1000;
      const floodCpu = cpuSeconds(d.pid) - cpu0;
      // A quiet window with the 2,000 still held open by the client.
      const cpu1 = cpuSeconds(d.pid);
      await Bun.sleep(3000);
      const holdCpu = cpuSeconds(d.pid) - cpu1;
      const fdsWhileHeld = fdCount(d.pid);

      echo.send({ cmd: "stop" });
      const er = await echo.waitFor("result", 30_000);
      flood.send({ cmd: "release" });
      await flood.waitFor("released", 10_000);
      const cpu2 = cpuSeconds(d.pid);
      await Bun.sleep(3000);
      const afterCpu = cpuSeconds(d.pid) - cpu2;
      sampler.stop();
      const scrapesAgain = await eventually(async () => (await scrape(url)).status === 200, 15_000, 250);

      figures("12 metrics flood", {
        nofile: LIMIT,
        maxTcp: 100,
        echoClients: ECHO_CLIENTS,
        held: held.held,
        heldGot503: held.busy,
        heldAdmittedSilent: held.silent,
        heldRefused: held.refused,
        scrapeWhileHeld,
        churned: fr.churned,
        got503: fr.busy,
        silent: fr.silent,
        refused: fr.refused,
        floodSeconds: Math.round(floodWall * 10) / 10,
        floodCpuPct: Math.round((floodCpu / floodWall) * 100),
        holdCpuPct: Math.round((holdCpu / 3) * 100),
        afterCpuPct: Math.round((afterCpu / 3) * 100),
        idleFds,
        fdsWhileHeld,
        peakFds: sampler.peakFds,
        echoLines: er.lines,
        echoMaxLatencyMs: er.maxLatencyMs,
        echoMismatches: er.mismatches,
        scrapesAgain,
      });
      // The flood was served as designed: a few admitted (and later timed out), the rest 503 at once.
      expect(Number(held.held)).toBe(HOLD);
      expect(Number(held.silent)).toBeLessThanOrEqual(16);
      expect(Number(held.busy) + Number(held.silent)).toBe(HOLD);
      expect(fr.other).toBe(0);
      // Echo clients never noticed.
      expect(er.mismatches).toBe(0);
      expect(er.starved).toBe(0);
      expect(Number(er.maxLatencyMs)).toBeLessThan(1000);
      // Descriptors under the limit, no spin, while flooded, while held and after.
      expect(sampler.peakFds).toBeLessThan(LIMIT);
      expect(floodCpu / floodWall).toBeLessThan(0.2);
      expect(holdCpu / 3).toBeLessThan(0.2);
      expect(afterCpu / 3).toBeLessThan(0.2);
      expect(scrapesAgain).toBe(true);
    } finally {
      for (const c of children) await c.kill();
      expect(await d.stop()).toBe(0);
    }
  },
  pick(120_000, 240_000),
);
