// Scenario 3 — slowloris: connections that trickle one byte every couple of
// seconds and never finish a line. With --idle-timeout they are closed on
// time even though bytes keep coming (only a completed line counts as
// activity); without it they stay open and each costs no more than the stated
// per-connection memory, even with a partial line just under --max-line held.
import { expect, test } from "bun:test";
import { startDaemon } from "../support/daemon.ts";
import { Child, echoProbe, eventually, figures, pick, tcpStats } from "../support/stress.ts";
import { cpuSeconds, mib, readMem } from "../support/procfs.ts";

const CONNS = pick(1000, 2000);
const IDLE_S = 4;
const TRICKLE_MS = 2000;
/** Stated bound: memory per idle connection holding a partial line of up to --max-line (4096) bytes. */
const PER_CONN_BOUND_KIB = 16;

test(
  `slowloris with --idle-timeout ${IDLE_S}: ${CONNS} trickling connections are all closed on time`,
  async () => {
    const d = await startDaemon(["--port", "0", "--max-tcp", String(CONNS + 16), "--backlog", "4096", "--idle-timeout", String(IDLE_S)]);
    let loris: Child | null = null;
    try {
      const cpu0 = cpuSeconds(d.pid);
      loris = new Child("slowloris.ts", { port: d.tcpPort, count: CONNS, prefix: 16, trickleMs: TRICKLE_MS });
      await loris.waitFor("connected", 60_000);
      // Meanwhile a well-behaved client that sends a line every second is left alone.
      const { TcpClient } = await import("../support/net.ts");
      const good = await TcpClient.connect(d.tcpPort);
      let goodLines = 0;
      const all = await eventually(
        async () => {
          good.send(`still here ${goodLines}\n`);
          const want = `still here ${goodLines}\n`;
          expect((await good.read(want.length, 3000)).toString("latin1")).toBe(want);
          goodLines++;
          loris!.send({ cmd: "report" });
          const r = await loris!.waitFor("report", 5000);
          return r.open === 0;
        },
        (IDLE_S + 8) * 1000,
        1000,
      );
      loris.send({ cmd: "stop" });
      const r = await loris.waitFor("result", 10_000);
      const probeMs = await echoProbe(d.tcpPort);
      good.close();
      figures("03a slowloris+idle-timeout", {
        connections: CONNS,
        idleTimeoutS: IDLE_S,
        trickleEveryMs: TRICKLE_MS,
        closedByServer: r.closed,
        minCloseAfterS: r.minCloseAfterS,
        medianCloseAfterS: r.medianCloseAfterS,
        maxCloseAfterS: r.maxCloseAfterS,
        bytesTrickled: r.bytesTrickled,
        goodClientLines: goodLines,
        probeMs: Math.round(probeMs),
        peakRssMiB: mib(readMem(d.pid).hwmKiB),
        serverCpuSeconds: cpuSeconds(d.pid) - cpu0,
      });
      expect(all).toBe(true);
      expect(r.closed).toBe(CONNS);
      expect(Number(r.bytesTrickled)).toBeGreaterThan(CONNS); // they did keep trickling
      expect(r.bytesReceived).toBe(0); // an unfinished line is never answered
      // On time: not before the timeout (less the lag of the server's 1 s timer on a busy
      // machine), and within the 1 s sweep plus whole-second rounding (+ noise).
      expect(Number(r.minCloseAfterS)).toBeGreaterThanOrEqual(IDLE_S - 0.25);
      expect(Number(r.maxCloseAfterS)).toBeLessThan(IDLE_S + 3.5);
      expect(goodLines).toBeGreaterThan(IDLE_S + 1); // the good client outlived every timeout
    } finally {
      await loris?.kill();
      expect(await d.stop()).toBe(0);
    }
  },
  pick(60_000, 90_000),
);

test(
  `slowloris without --idle-timeout: ${CONNS} connections holding a ~4 KiB partial line cost < ${PER_CONN_BOUND_KIB} KiB each`,
  async () => {
    const d = await startDaemon(["--port", "0", "--max-tcp", String(CONNS + 16), "--backlog", "4096"]);
    let loris: Child | null = null;
    try {
      await echoProbe(d.tcpPort);
      await Bun.sleep(500);
      // Per connection in anonymous memory: the code the connections make the
      // server fault back in (dropped at the settle after start) is no one
      // connection's cost.
      const before = readMem(d.pid);
      const cpu0 = cpuSeconds(d.pid);
      // 4000 bytes of a line held per connection (--max-line is 4096), then one byte every 2 s.
      loris = new Child("slowloris.ts", { port: d.tcpPort, count: CONNS, prefix: 4000, trickleMs: TRICKLE_MS });
      await loris.waitFor("connected", 60_000);
      const [, connected] = await tcpStats(d.tcpPort);
      await Bun.sleep(pick(4000, 10_000));
      loris.send({ cmd: "report" });
      const rep = await loris.waitFor("report", 5000);
      const during = readMem(d.pid);
      const cpu = cpuSeconds(d.pid) - cpu0;
      const probeMs = await echoProbe(d.tcpPort);
      loris.send({ cmd: "stop" });
      await loris.waitFor("result", 10_000);
      const back = await eventually(async () => (await tcpStats(d.tcpPort))[1] === 1, 10_000, 200);
      const perConnKiB = (during.anonKiB - before.anonKiB) / CONNS;
      figures("03b slowloris, no timeout", {
        connections: CONNS,
        partialLineBytes: 4000,
        stillOpen: rep.open,
        bytesTrickled: rep.bytesTrickled,
        rssBeforeMiB: mib(before.rssKiB),
        rssWithConnsMiB: mib(during.rssKiB),
        anonBeforeMiB: mib(before.anonKiB),
        anonWithConnsMiB: mib(during.anonKiB),
        perConnKiB: Math.round(perConnKiB * 10) / 10,
        probeMs: Math.round(probeMs),
        serverCpuSeconds: cpu,
      });
      expect(connected).toBe(CONNS + 1);
      expect(rep.open).toBe(CONNS); // nobody was closed: there is no timeout
      expect(rep.bytesReceived).toBe(0);
      expect(perConnKiB).toBeLessThan(PER_CONN_BOUND_KIB);
      expect(back).toBe(true);
    } finally {
      await loris?.kill();
      expect(await d.stop()).toBe(0);
    }
  },
  pick(60_000, 90_000),
);
