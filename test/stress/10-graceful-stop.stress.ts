// Scenario 10 — graceful stop under load: clients stream lines (several in
// flight each) when SIGTERM arrives. Every line a client had fully written
// before the signal must be answered, byte-exact, and the server exits 0
// within its 2 s deadline. Two cases: clients that stop sending when the
// server stops (each is then closed with FIN once quiet), and clients that
// never stop (the server answers them until the deadline, then cuts them).
import { expect, test } from "bun:test";
import { startDaemon } from "../support/daemon.ts";
import { Child, figures, max, pick, shares, sum, waitAll, wallUs } from "../support/stress.ts";
import { cpuSeconds, mib, readMem } from "../support/procfs.ts";

const CLIENTS = pick(300, 500);
const STREAM_MS = pick(2000, 5000);
const DEADLINE_MS = 2000; // the server's stop deadline (src/server/server.ts)

async function run(keepSending: boolean) {
    const d = await startDaemon(["--port", "0", "--backlog", "1024"]);
    const children: Child[] = [];
    try {
      for (const [i, n] of shares(CLIENTS, 2).entries()) {
        children.push(
          new Child("echo-clients.ts", { port: d.tcpPort, count: n, seed: 100 + i, idBase: i * 1_000_000, mode: "stream", window: 4, lineMin: 16, lineMax: 300, drainMs: 8000 }),
        );
      }
      await waitAll(children, "connected", 60_000);
      for (const c of children) c.send({ cmd: "go" });
      await Bun.sleep(STREAM_MS);
      const cpu = cpuSeconds(d.pid);
      const peak = readMem(d.pid).hwmKiB;
      const signalUs = wallUs();
      d.proc.kill("SIGTERM");
      for (const c of children) c.send(keepSending ? { cmd: "signal", signalUs } : { cmd: "stop", signalUs });
      const code = await d.exited;
      const exitMs = (wallUs() - signalUs) / 1000;
      if (keepSending) for (const c of children) c.send({ cmd: "stop" });
      const rs = await waitAll(children, "result", 30_000);
      const log = d.stderr();
      figures(keepSending ? "10b graceful stop, clients keep sending" : "10a graceful stop, clients stop", {
        clients: CLIENTS,
        streamedSeconds: STREAM_MS / 1000,
        linesAnswered: sum(rs, "lines"),
        bytesChecked: sum(rs, "bytesChecked"),
        answeredWrittenBeforeSignal: sum(rs, "answeredBeforeSignal"),
        answeredWrittenAfterSignal: sum(rs, "answeredAfterSignal"),
        unansweredWrittenBeforeSignal: sum(rs, "unansweredBeforeSignal"),
        unansweredWrittenAfterSignal: sum(rs, "unansweredAfterSignal"),
        mismatches: sum(rs, "mismatches"),
        closedByServerWithFin: sum(rs, "closedByServer"),
        resets: sum(rs, "resets"),
        exitCode: code,
        exitMs: Math.round(exitMs),
        maxLatencyMs: max(rs, "maxLatencyMs"),
        peakRssMiB: mib(peak),
        serverCpuSecondsBeforeSignal: cpu,
      });
      for (const r of rs) {
        expect(r.firstMismatch).toBe("");
        expect(r.firstUnanswered).toBe("");
      }
      expect(code).toBe(0);
      expect(exitMs).toBeLessThan(DEADLINE_MS + 1000);
      expect(sum(rs, "unansweredBeforeSignal")).toBe(0);
      expect(sum(rs, "answeredBeforeSignal")).toBeGreaterThan(CLIENTS * 4);
      if (!keepSending) {
        // Quiet clients are closed with FIN, none reset.
        expect(sum(rs, "closedByServer")).toBe(CLIENTS);
        expect(sum(rs, "resets")).toBe(0);
      } else {
        // Still sending at the deadline: cut off then, and it was still answering them until then.
        expect(sum(rs, "answeredAfterSignal")).toBeGreaterThan(0);
        expect(exitMs).toBeGreaterThanOrEqual(DEADLINE_MS - 100);
      }
      expect(log).toContain("stopping reason=SIGTERM");
    } finally {
      for (const c of children) await c.kill();
      await d.stop();
    }
}

test(
  `graceful stop: SIGTERM while ${CLIENTS} clients stream and then stop; every line written before it answered, FIN, exit 0 within the deadline`,
  () => run(false),
  pick(90_000, 120_000),
);

test(
  `graceful stop: SIGTERM while ${CLIENTS} clients stream and go on streaming; every line written before it answered, exit 0 at the deadline`,
  () => run(true),
  pick(90_000, 120_000),
);
