// Scenario 6 — UDP flood: many peers (one socket, so one source port, each)
// with oversize datagrams mixed in. Every valid datagram the server receives
// gets its echo (losses only where the kernel counted a drop), oversize ones
// get the ERR line, udp_active counts exactly the peers within the window and
// falls to 0 after it. Then 80,000 distinct peers in one burst: the window
// table stops at its cap (65,536), peers past the cap are still answered and
// counted once in total_clients (the lifetime fingerprint set) but not in
// udp_active, and the memory is bounded and released after the window.
import { expect, test } from "bun:test";
import * as dgram from "node:dgram";
import { startDaemon } from "../support/daemon.ts";
import { Child, eventually, figures, pick, shares, sum, tcpStats as stats0, waitAll } from "../support/stress.ts";
import { cpuSeconds, mib, readMem, udpDrops } from "../support/procfs.ts";

const PEERS = pick(1000, 4000);
const PER_PEER = pick(20, 50);
const WINDOW_S = 5;
const MAX_DATAGRAM = 2048;
const CAP = 65536;
// A /24 of loopback addresses of our own, so a concurrent run cannot collide with these binds.
const NET = `127.${2 + (process.pid % 250)}.${Math.floor(Math.random() * 250) + 1}`;
const SPRAY_ADDRESSES = [2, 3, 4, 5, 7].map((h) => `${NET}.${h}`);
const SPRAY_PER_ADDRESS = 16_000; // 80,000 peers in all
const SPRAY_FIRST_PORT = 2000; // below the ephemeral range, above the <1024 guard

test(
  `udp flood: ${PEERS} peers x ${PER_PEER} datagrams (10 % oversize), then ${SPRAY_ADDRESSES.length * SPRAY_PER_ADDRESS} distinct peers against the ${CAP} cap`,
  async () => {
    const d = await startDaemon(["--port", "0", "--udp-window", String(WINDOW_S), "--max-datagram", String(MAX_DATAGRAM)]);
    const children: Child[] = [];
    let tcpAsks = 0;
    const tcpStats = async () => {
      tcpAsks++;
      return stats0(d.tcpPort);
    };
    try {
      await Bun.sleep(300);
      const idle = readMem(d.pid).rssKiB;
      const drops0 = udpDrops(d.udpPort);
      const cpu0 = cpuSeconds(d.pid);
      const t0 = performance.now();
      for (const [i, n] of shares(PEERS, 2).entries()) {
        children.push(new Child("udp-flood.ts", { mode: "echo", port: d.udpPort, peers: n, perPeer: PER_PEER, maxDatagram: MAX_DATAGRAM, seed: 60 + i }));
      }
      await waitAll(children, "flooded", pick(60_000, 180_000));
      const wall = (performance.now() - t0) / 1000;
      const cpu = cpuSeconds(d.pid) - cpu0;
      const serverDrops = udpDrops(d.udpPort) - drops0;
      // Every peer once more, so all of them are inside the window now.
      for (const c of children) c.send({ cmd: "touch" });
      const rs = await waitAll(children, "result", 60_000);
      const tTouched = performance.now();
      const [total1, , active1] = await tcpStats();
      const expired = await eventually(async () => (await tcpStats())[2] === 0, (WINDOW_S + 3) * 1000, 250);
      const agedAfter = (performance.now() - tTouched) / 1000;

      // The cap: 80,000 distinct (address, port) peers, one datagram each.
      const [totalBefore] = await tcpStats();
      const rssBefore = readMem(d.pid).rssKiB;
      const dropsBeforeSpray = udpDrops(d.udpPort);
      const tSpray = performance.now();
      const spray = new Child("udp-flood.ts", { mode: "spray", port: d.udpPort, addresses: SPRAY_ADDRESSES, firstPort: SPRAY_FIRST_PORT, perAddress: SPRAY_PER_ADDRESS, batch: 100 });
      children.push(spray);
      const sr = await spray.waitFor("result", 60_000);
      const sprayDrops = udpDrops(d.udpPort) - dropsBeforeSpray;
      const spraySeconds = (performance.now() - tSpray) / 1000;
      await Bun.sleep(300);
      const [totalFull, , activeFull] = await tcpStats();
      const rssFull = readMem(d.pid).rssKiB;
      // One more, past the cap: answered, counted in total_clients, not in udp_active.
      const extra = dgram.createSocket("udp4");
      await new Promise<void>((r) => extra.bind({ address: `${NET}.6`, port: 0 }, () => r()));
      const reply = await new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no reply past the cap")), 3000);
        extra.once("message", (m) => {
          clearTimeout(timer);
          resolve(m);
        });
        extra.send(Buffer.from("past the cap"), d.udpPort, "127.0.0.1");
      });
      extra.close();
      const [totalPast, , activePast] = await tcpStats();
      const emptied = await eventually(async () => (await tcpStats())[2] === 0, (WINDOW_S + 3) * 1000, 250);
      const rssAfterWindow = readMem(d.pid).rssKiB;

      figures("06 udp flood", {
        peers: PEERS,
        datagrams: sum(rs, "valid") + sum(rs, "oversize"),
        valid: sum(rs, "valid"),
        exactMaxDatagram: sum(rs, "exactMax"),
        empty: sum(rs, "empty"),
        oversize: sum(rs, "oversize"),
        answered: sum(rs, "answered"),
        truncatedReplies: sum(rs, "truncatedReplies"),
        lost: sum(rs, "lost"),
        lostTruncated: sum(rs, "lostTruncated"),
        serverSocketDrops: serverDrops,
        clientSocketDrops: sum(rs, "clientDrops"),
        bytesChecked: sum(rs, "bytesChecked"),
        seconds: Math.round(wall * 10) / 10,
        serverCpuSeconds: cpu,
        touched: sum(rs, "touched"),
        udpActiveAfterFlood: active1,
        totalClientsAfterFlood: total1,
        agedOutAfterS: Math.round(agedAfter * 10) / 10,
        sprayed: sr.sent,
        sprayBindFailed: sr.bindFailed,
        sprayDrops,
        spraySeconds: Math.round(spraySeconds * 10) / 10,
        udpActiveAtCap: activeFull,
        totalClientsAddedBySpray: totalFull - totalBefore - 1,
        rssIdleMiB: mib(idle),
        rssBeforeSprayMiB: mib(rssBefore),
        rssTableFullMiB: mib(rssFull),
        rssAfterWindowMiB: mib(rssAfterWindow),
        peakRssMiB: mib(readMem(d.pid).hwmKiB),
      });
      for (const r of rs) expect(r.firstMismatch).toBe("");
      expect(sum(rs, "sendErrors")).toBe(0);
      // Every loss is one the kernel counted as a drop (full receive buffer); normally none.
      expect(sum(rs, "lost") + sum(rs, "lostTruncated")).toBeLessThanOrEqual(serverDrops + sum(rs, "clientDrops"));
      expect(sum(rs, "answered")).toBe(sum(rs, "valid") - sum(rs, "lost"));
      expect(sum(rs, "truncatedReplies")).toBe(sum(rs, "oversize") - sum(rs, "lostTruncated"));
      // udp_active: exactly the peers seen within the window, then 0 after it.
      expect(sum(rs, "touched")).toBe(PEERS);
      expect(active1).toBe(PEERS);
      // total_clients: every peer counted exactly once over the lifetime, even
      // one that aged out mid-flood (a reply lost, 2 s timeout) and came back.
      expect(total1).toBe(PEERS + 1); // + the TCP connection asking
      expect(expired).toBe(true);
      // The cap.
      expect(Number(sr.sent) - sprayDrops).toBeGreaterThan(CAP);
      expect(spraySeconds).toBeLessThan(WINDOW_S - 1); // all still inside the window when counted
      expect(activeFull).toBe(CAP);
      // Every distinct peer that reached the server counts once, past the window cap too.
      expect(totalFull - totalBefore - 1).toBe(Number(sr.sent) - sprayDrops); // minus the TCP connection asking
      expect(reply.toString()).toBe("past the cap");
      expect(activePast).toBe(CAP);
      expect(totalPast).toBe(totalFull + 2); // the new UDP peer and the TCP connection asking
      expect(emptied).toBe(true);
      // A full table costs a bounded few MiB.
      expect(mib(rssFull - rssBefore)).toBeLessThan(64);
      expect(tcpAsks).toBeGreaterThan(0);
    } finally {
      for (const c of children) await c.kill();
      expect(await d.stop()).toBe(0);
    }
  },
  pick(90_000, 240_000),
);
