// Scenario 2 — slow and never-reading clients. Never-readers push up to 64 MiB
// of lines each (plain lines, and "/x" lines whose 20-byte ERR replies amplify
// the input ~6.7x) and never read a byte; slow readers read one byte a second
// through a 4 KiB receive buffer. The server must stop reading from them once
// their output backs up, so its memory stays bounded, while other clients keep
// their sub-second echo. At the end the never-readers reset their connections
// with megabytes still unread in the server's receive buffer: that must not
// balloon memory either.
import { expect, test } from "bun:test";
import { startDaemon } from "../support/daemon.ts";
import { Child, echoProbe, eventually, figures, pick, RSS_BACK_MIB, RSS_BACK_MS, tcpStats } from "../support/stress.ts";
import { cpuSeconds, mib, ProcSampler, readMem, resetPeakRss, rssSettles } from "../support/procfs.ts";

const NEVER = pick(8, 16);
const NEVER_CMD = pick(6, 8);
const SLOW = pick(4, 8);
const PROBES = pick(10, 20);
const DURATION_MS = pick(8_000, 30_000);
const TARGET = 64 * 1024 * 1024;
/** Stated bound: server RSS above idle with all of the above connected. */
const RSS_BOUND_MIB = 150;

test(
  `slow readers: ${NEVER}+${NEVER_CMD} never-readers (64 MiB each) and ${SLOW} 1-byte/s readers; RSS bounded, others still echo in < 1 s`,
  async () => {
    const d = await startDaemon(["--port", "0"]);
    const children: Child[] = [];
    try {
      await echoProbe(d.tcpPort); // warm the echo path before measuring idle
      await Bun.sleep(300);
      const idle = readMem(d.pid).rssKiB;
      resetPeakRss(d.pid);
      const sampler = new ProcSampler(d.pid, 200);
      const hostile = new Child("raw-clients.ts", {
        port: d.tcpPort,
        clients: [
          { kind: "never", count: NEVER, targetBytes: TARGET },
          { kind: "never-cmd", count: NEVER_CMD, targetBytes: TARGET },
          { kind: "slow", count: SLOW, targetBytes: TARGET, rcvbuf: 4096 },
        ],
      });
      children.push(hostile);
      const probes = new Child("echo-clients.ts", { port: d.tcpPort, count: PROBES, seed: 2, mode: "pingpong", intervalMs: 200 });
      children.push(probes);
      await hostile.waitFor("connected", 30_000);
      await probes.waitFor("connected", 30_000);
      const cpu0 = cpuSeconds(d.pid);
      const t0 = performance.now();
      hostile.send({ cmd: "go", durationMs: DURATION_MS });
      probes.send({ cmd: "go", durationMs: DURATION_MS });
      const h = await hostile.waitFor("result", DURATION_MS + 30_000);
      const p = await probes.waitFor("result", DURATION_MS + 30_000);
      const gone = performance.now(); // the never-readers have reset their connections
      const loadedPeak = Math.max(readMem(d.pid).hwmKiB, sampler.peakRssKiB);
      // Steady state: the median RSS over the second half of the run, once the first burst is over.
      const late = sampler.samples.filter((x) => x.t >= (performance.now() - t0) / 2).map((x) => x.rssKiB);
      late.sort((a, b) => a - b);
      const steady = late[Math.floor(late.length / 2)] ?? loadedPeak;
      const wall = (performance.now() - t0) / 1000;
      const cpu = cpuSeconds(d.pid) - cpu0;
      // The never-readers have reset their connections (with data still queued both ways).
      const drained = await eventually(async () => (await tcpStats(d.tcpPort))[1] === 1, 10_000, 200);
      const back = await rssSettles(d.pid, idle + RSS_BACK_MIB * 1024, gone, RSS_BACK_MS);
      sampler.stop();
      const peak = Math.max(readMem(d.pid).hwmKiB, sampler.peakRssKiB);
      const after = back.rssKiB;
      const heavy = NEVER + NEVER_CMD + SLOW;
      figures("02 slow/never-reading", {
        neverReaders: NEVER + NEVER_CMD,
        slowReaders: SLOW,
        seconds: Math.round(wall),
        bytesSentByNeverReaders: Number(h.neverSentBytes) + Number(h.neverCmdSentBytes),
        maxSentPerConn: h.maxSentPerConn,
        heavyErrors: h.errors,
        firstHeavyError: JSON.stringify(h.firstError),
        slowBytesRead: h.slowReadBytes,
        probeLines: p.lines,
        probeBytesChecked: p.bytesChecked,
        probeMaxLatencyMs: p.maxLatencyMs,
        probeSlowest: JSON.stringify(p.slowest),
        idleRssMiB: mib(idle),
        peakRssMiB: mib(peak),
        peakAboveIdleMiB: mib(peak - idle),
        peakWhileConnectedAboveIdleMiB: mib(loadedPeak - idle),
        steadyAboveIdleMiB: mib(steady - idle),
        steadyPerHeavyConnMiB: mib((steady - idle) / heavy),
        peakPerHeavyConnMiB: mib((loadedPeak - idle) / heavy),
        rssAfterCloseMiB: mib(after),
        rssBackNearIdleMs: back.ms === null ? "never" : Math.round(back.ms),
        serverCpuSeconds: cpu,
      });
      expect(h.errors).toBe(0); // no heavy client was cut off or reset by the server
      expect(h.mismatches).toBe(0); // the slow readers got exactly their echo
      expect(Number(h.slowReadBytes)).toBeGreaterThanOrEqual(SLOW * Math.floor(DURATION_MS / 1000 / 2));
      expect(p.mismatches).toBe(0);
      expect(p.starved).toBe(0);
      expect(Number(p.maxLatencyMs)).toBeLessThan(1000);
      expect(drained).toBe(true);
      expect(mib(peak - idle)).toBeLessThan(RSS_BOUND_MIB);
      expect(back.ms).not.toBeNull(); // memory went back to the system within RSS_BACK_MS
    } finally {
      for (const c of children) await c.kill();
      expect(await d.stop()).toBe(0);
    }
  },
  pick(90_000, 180_000),
);
