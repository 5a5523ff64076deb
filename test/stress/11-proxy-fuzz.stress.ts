// Scenario 11 — PROXY protocol headers under fuzz: a seeded, time-bounded
// loop of valid and mutated v1/v2 headers in random segmentations, sent from a
// peer the server expects a header from; replies (and silent closes) must equal
// the model's (see clients/proxy-fuzz.ts). STRESS_SEED picks the seed.
import { expect, test } from "bun:test";
import { startDaemon } from "../support/daemon.ts";
import { Child, echoProbe, figures, pick } from "../support/stress.ts";
import { cpuSeconds, mib, readMem } from "../support/procfs.ts";
import { encodeProxyHeader } from "../../src/core/proxy-header.ts";

const SEED = Number(process.env.STRESS_SEED ?? 20261201);
const DURATION_MS = pick(8_000, 60_000);

test(
  `PROXY header fuzz: seed ${SEED}, ${DURATION_MS / 1000} s of valid and mutated v1/v2 headers, replies equal the model's`,
  async () => {
    const d = await startDaemon(["--port", "0", "--proxy-protocol-from", "127.0.0.0/8", "--instance", "proxy-fuzz"]);
    let fuzz: Child | null = null;
    try {
      const cpu0 = cpuSeconds(d.pid);
      fuzz = new Child("proxy-fuzz.ts", { port: d.tcpPort, seed: SEED, durationMs: DURATION_MS, workers: 8 });
      const r = await fuzz.waitFor("result", DURATION_MS + 60_000);
      const header = encodeProxyHeader(1, { address: "127.0.0.1", port: 1 }, { address: "127.0.0.1", port: d.tcpPort });
      const probeMs = await echoProbe(d.tcpPort, "127.0.0.1", 5000, header);
      figures("11 proxy fuzz", {
        seed: SEED,
        seconds: DURATION_MS / 1000,
        cases: r.cases,
        accepted: r.accepted,
        rejected: r.rejected,
        mismatches: r.mismatches,
        probeMs: Math.round(probeMs),
        peakRssMiB: mib(readMem(d.pid).hwmKiB),
        serverCpuSeconds: cpuSeconds(d.pid) - cpu0,
      });
      expect(r.firstMismatch).toBe("");
      expect(r.mismatches).toBe(0);
      expect(Number(r.accepted)).toBeGreaterThan(pick(100, 1000));
      expect(Number(r.rejected)).toBeGreaterThan(pick(20, 200));
      expect(d.proc.exitCode).toBeNull();
    } finally {
      await fuzz?.kill();
      expect(await d.stop()).toBe(0);
    }
  },
  pick(90_000, 180_000),
);
