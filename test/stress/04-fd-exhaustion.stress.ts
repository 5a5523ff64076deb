// Scenario 4 — descriptor exhaustion: the server runs with `ulimit -n 64`
// (hard and soft) and --max-tcp 1024, far above it. It must clamp --max-tcp
// with one warning, so that the "server busy" rejection always comes before
// accept(2) could fail with EMFILE (Bun spins a CPU at 100 % there, upstream
// oven-sh/bun#32705). Then: fill every slot with echoing clients, flood it with
// more connections than the limit (held open and churned), and check the
// server answers each with "server busy", does not spin, keeps serving its
// clients, warns about it once per 10 s at most, and accepts again once the
// clients leave.
import { expect, test } from "bun:test";
import { LAUNCH, startDaemon } from "../support/daemon.ts";
import { Child, countLines, echoProbe, eventually, figures, pick } from "../support/stress.ts";
import { cpuSeconds, fdCount, mib, nofileLimit, ProcSampler, readMem } from "../support/procfs.ts";

const LIMIT = 64;
const HOLD = pick(200, 400);
const CHURN_PER_SEC = pick(100, 200);
const FLOOD_MS = pick(4000, 15_000);

test(
  `fd exhaustion: ulimit -n ${LIMIT}, --max-tcp 1024, ${HOLD} held + ${CHURN_PER_SEC}/s extra connections: busy, no spin, serving, recovers`,
  async () => {
    const d = await startDaemon(["--port", "0", "--max-tcp", "1024"], { command: ["prlimit", `--nofile=${LIMIT}:${LIMIT}`, ...LAUNCH] });
    const children: Child[] = [];
    try {
      expect(nofileLimit(d.pid)).toEqual({ soft: LIMIT, hard: LIMIT });
      const clamp = d.stderr().match(/WARN .*--max-tcp 1024 does not fit the descriptor limit: serving at most (\d+) clients/);
      expect(clamp).not.toBeNull();
      const slots = Number(clamp![1]);
      // A useful number of clients still fits (not a headroom eating the whole limit).
      expect(slots).toBeGreaterThanOrEqual(LIMIT / 4);
      expect(slots).toBeLessThan(LIMIT);
      const idleFds = fdCount(d.pid);

      // Every slot taken by a client that echoes a line every ~200 ms.
      const echo = new Child("echo-clients.ts", { port: d.tcpPort, count: slots, seed: 4, mode: "pingpong", intervalMs: 200 });
      children.push(echo);
      await echo.waitFor("connected", 30_000);
      echo.send({ cmd: "go" });

      const sampler = new ProcSampler(d.pid, 100);
      const cpu0 = cpuSeconds(d.pid);
      const t0 = performance.now();
      const flood = new Child("flood.ts", { port: d.tcpPort, hold: HOLD, churnPerSec: CHURN_PER_SEC });
      children.push(flood);
      const held = await flood.waitFor("held", 60_000);
      flood.send({ cmd: "go", durationMs: FLOOD_MS });
      const fr = await flood.waitFor("result", FLOOD_MS + 60_000);
      const floodWall = (performance.now() - t0) / 1000;
      const floodCpu = cpuSeconds(d.pid) - cpu0;
      // Also over a quiet window with all held connections still open.
      const cpu1 = cpuSeconds(d.pid);
      await Bun.sleep(3000);
      const holdCpu = cpuSeconds(d.pid) - cpu1;
      sampler.stop();

      echo.send({ cmd: "stop" });
      const er = await echo.waitFor("result", 30_000);
      flood.send({ cmd: "release" });
      await flood.waitFor("released", 10_000);

      // Descriptors free again: new clients are accepted and served (once the
      // server has seen the old ones go: they reset as their process exits).
      await echo.exited;
      const freed = await eventually(async () => {
        try {
          await echoProbe(d.tcpPort, "127.0.0.1", 1000);
          return true;
        } catch {
          return false;
        }
      }, 10_000, 100);
      expect(freed).toBe(true);
      let reaccepted = 1;
      for (let i = 1; i < slots; i++) {
        await echoProbe(d.tcpPort);
        reaccepted++;
      }
      const again = new Child("echo-clients.ts", { port: d.tcpPort, count: slots, seed: 44, mode: "pingpong", intervalMs: 100 });
      children.push(again);
      await again.waitFor("connected", 30_000);
      again.send({ cmd: "go", durationMs: 1000 });
      const ar = await again.waitFor("result", 30_000);

      const log = d.stderr();
      const busyWarnings = countLines(log, /WARN .*server busy/);
      const clampWarnings = countLines(log, /WARN .*does not fit the descriptor limit/);
      figures("04 fd exhaustion", {
        nofile: LIMIT,
        maxTcpAsked: 1024,
        maxTcpServed: slots,
        echoClients: slots,
        heldExtra: held.held,
        churned: fr.churned,
        busyReplies: fr.busy,
        silent: fr.silent,
        refused: fr.refused,
        floodSeconds: Math.round(floodWall * 10) / 10,
        floodCpuSeconds: floodCpu,
        floodCpuPct: Math.round((floodCpu / floodWall) * 100),
        holdCpuSecondsPer3s: holdCpu,
        idleFds,
        peakFds: sampler.peakFds,
        echoLines: er.lines,
        echoBytesChecked: er.bytesChecked,
        echoMaxLatencyMs: er.maxLatencyMs,
        reaccepted: reaccepted + Number(ar.clients),
        busyWarnings,
        clampWarnings,
        peakRssMiB: mib(readMem(d.pid).hwmKiB),
      });
      // Every extra connection was answered "server busy" (none left hanging, none served).
      expect(held.busy).toBe(HOLD);
      expect(fr.silent).toBe(0);
      expect(fr.other).toBe(0);
      expect(fr.refused).toBe(0);
      expect(Number(fr.busy)).toBe(HOLD + Number(fr.churned));
      // No spin: far under 20 % of one core, while flooded and while holding.
      expect(floodCpu / floodWall).toBeLessThan(0.2);
      expect(holdCpu / 3).toBeLessThan(0.2);
      // Never near the limit: rejected sockets do not pile up.
      expect(sampler.peakFds).toBeLessThan(LIMIT);
      // The clients it serves were never disturbed.
      expect(er.mismatches).toBe(0);
      expect(er.starved).toBe(0);
      expect(Number(er.maxLatencyMs)).toBeLessThan(1000);
      // One clamp warning; busy warnings at most one per 10 s.
      expect(clampWarnings).toBe(1);
      expect(busyWarnings).toBeGreaterThanOrEqual(1);
      expect(busyWarnings).toBeLessThanOrEqual(Math.ceil((floodWall + 10) / 10));
      // And it takes clients again once they have left.
      expect(ar.clients).toBe(slots);
      expect(ar.mismatches).toBe(0);
      expect(Number(ar.lines)).toBeGreaterThan(0);
    } finally {
      for (const c of children) await c.kill();
      expect(await d.stop()).toBe(0);
    }
  },
  pick(90_000, 180_000),
);
