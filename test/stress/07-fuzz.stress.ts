// Scenario 7 — hostile bytes: a seeded, time-bounded fuzz loop of random byte
// strings in random segmentations over TCP, and random datagrams over UDP,
// compared byte for byte with a model built from the server's own pure
// modules (see clients/fuzz.ts). Cases include NUL, lone CR, CR CR LF, lines
// of exactly --max-line and --max-line+1 bytes (with and without the CR),
// "/" alone, /shutdown with spaces and tabs around wrong tokens, very long
// command arguments, two overlong lines in a row. STRESS_SEED picks the seed.
import { expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon } from "../support/daemon.ts";
import { Child, echoProbe, figures, pick } from "../support/stress.ts";
import { cpuSeconds, mib, readMem } from "../support/procfs.ts";

const SEED = Number(process.env.STRESS_SEED ?? 20261126);
const DURATION_MS = pick(8_000, 60_000);
const MAX_LINE = 100; // small, so lines around the limit are cheap and frequent
const MAX_DATAGRAM = 512;
const TOKEN = "fuzz-token-0123456789abcdef";

test(
  `fuzz: seed ${SEED}, ${DURATION_MS / 1000} s of random bytes and segmentations on TCP and UDP, replies equal the model's`,
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "ee-fuzz-"));
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, TOKEN, { mode: 0o600 });
    const d = await startDaemon(["--port", "0", "--max-line", String(MAX_LINE), "--max-datagram", String(MAX_DATAGRAM), "--shutdown-token-file", tokenFile]);
    let fuzz: Child | null = null;
    try {
      const cpu0 = cpuSeconds(d.pid);
      fuzz = new Child("fuzz.ts", {
        port: d.tcpPort,
        udpPort: d.udpPort,
        seed: SEED,
        durationMs: DURATION_MS,
        workers: 4,
        maxLine: MAX_LINE,
        maxDatagram: MAX_DATAGRAM,
        token: TOKEN,
      });
      const r = await fuzz.waitFor("result", DURATION_MS + 60_000);
      const probeMs = await echoProbe(d.tcpPort);
      figures("07 fuzz", {
        seed: SEED,
        seconds: DURATION_MS / 1000,
        tcpCases: r.tcpCases,
        tcpBytesSent: r.tcpBytesSent,
        tcpBytesChecked: r.tcpBytesChecked,
        tcpEarlyCloses: r.tcpEarlyCloses,
        tcpResets: r.tcpResets,
        udpDatagrams: r.udpDatagrams,
        udpBytesChecked: r.udpBytesChecked,
        udpLost: r.udpLost,
        mismatches: r.mismatches,
        probeMs: Math.round(probeMs),
        peakRssMiB: mib(readMem(d.pid).hwmKiB),
        serverCpuSeconds: cpuSeconds(d.pid) - cpu0,
      });
      expect(r.firstMismatch).toBe("");
      expect(r.mismatches).toBe(0);
      expect(Number(r.tcpCases)).toBeGreaterThan(pick(100, 1000));
      expect(Number(r.udpDatagrams)).toBeGreaterThan(pick(100, 1000));
      expect(r.udpLost).toBe(0);
      expect(d.proc.exitCode).toBeNull();
      expect(d.stderr()).not.toContain(TOKEN);
    } finally {
      await fuzz?.kill();
      expect(await d.stop()).toBe(0);
      rmSync(dir, { recursive: true, force: true });
    }
  },
  pick(90_000, 180_000),
);
