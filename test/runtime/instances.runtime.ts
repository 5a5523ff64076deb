// Several instances on one port under a real, booted systemd (issue 14):
// the freshly built .deb installed in a Debian 12 machine (systemd-nspawn,
// its own network), epoll-echo.service swapped for four instances of the
// template epoll-echo@.service, each with its own metrics port from
// /etc/default/epoll-echo@N. Then: all four active under their names, 400 TCP
// connections (and 400 UDP sockets) spread over all four with at least 10 %
// each, counted with /instance; the per-instance metrics add up; and one
// instance stopped while a client keeps connecting: nothing refused, the
// others answer everything.
//
// Run by test/runtime/run.ts (`bun run test:runtime`), which builds the
// package and passes it in EPOLL_ECHO_DEB. Skipped (with the reason printed)
// where no machine can be booted (not root, no systemd-nspawn or debootstrap).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { bootDebian, nspawnSkipReason, type Machine } from "./support/nspawn.ts";

const DEB = process.env.EPOLL_ECHO_DEB ?? "";
const reason = nspawnSkipReason() ?? (DEB ? null : "EPOLL_ECHO_DEB not set (run through test/runtime/run.ts)");
if (reason) console.log(`test/runtime/instances.runtime.ts: skipped: ${reason}`);

const COUNT = join(import.meta.dir, "support", "instance-count.ts");
const CONNECT_LOOP = join(import.meta.dir, "support", "connect-loop.ts");
const INSTANCES = [1, 2, 3, 4];
const unit = (n: number) => `epoll-echo@${n}.service`;
const metricsPort = (n: number) => 9800 + n;

interface Counts {
  counts: Record<string, number>;
  failed: number;
  firstError: string;
}

describe.skipIf(reason !== null)("epoll-echo@.service: four instances on port 12345 under a booted systemd", () => {
  let m: Machine;
  let host = "";
  const name = (n: number) => `${host}-${n}`;

  /** `/instance` asked over `count` connections (sockets) at once, from inside the machine's network. */
  async function whoAnswers(count: number, proto: "tcp" | "udp"): Promise<Counts> {
    const r = await m.inNetwork([process.execPath, COUNT, "127.0.0.1", "12345", String(count), proto]);
    if (r.code !== 0) throw new Error(`instance-count.ts: ${r.stderr}`);
    return JSON.parse(r.stdout);
  }

  beforeAll(async () => {
    m = await bootDebian();
    console.log(`test/runtime/instances: machine booted in ${m.bootSeconds.toFixed(1)} s`);
    m.writeFile("/root/epoll-echo.deb", readFileSync(DEB));
    await m.ok(["dpkg", "-i", "/root/epoll-echo.deb"]);
    host = (await m.ok(["hostname"])).trim();
    // The README's recipe: the plain service off, one options file per instance.
    await m.ok(["systemctl", "disable", "--now", "epoll-echo.service"]);
    for (const n of INSTANCES) m.writeFile(`/etc/default/epoll-echo@${n}`, `EPOLL_ECHO_INSTANCE_OPTS="--metrics 127.0.0.1:${metricsPort(n)}"\n`);
    // Hand connections still queued on a stopping instance to the others
    // (the README's advice; per network namespace).
    const sysctl = await m.inNetwork(["sysctl", "-qw", "net.ipv4.tcp_migrate_req=1"]);
    if (sysctl.code !== 0) console.log(`test/runtime/instances: net.ipv4.tcp_migrate_req not set: ${sysctl.stderr.trim()}`);
    await m.ok(["systemctl", "enable", "--now", ...INSTANCES.map(unit)]);
  }, 900_000);

  afterAll(async () => {
    await m?.poweroff();
  });

  test("all four active (READY reached), enabled, named HOSTNAME-N, as one dynamic user", async () => {
    const uids = new Set<string>();
    for (const n of INSTANCES) {
      expect(await m.prop(unit(n), "ActiveState")).toBe("active");
      expect((await m.exec(["systemctl", "is-enabled", unit(n)])).stdout.trim()).toBe("enabled");
      expect(await m.prop(unit(n), "StatusText")).toStartWith(`${name(n)}: `);
      const pid = await m.prop(unit(n), "MainPID");
      const uid = /^Uid:\s+(\d+)/m.exec(await m.ok(["cat", `/proc/${pid}/status`]))![1]!;
      expect(uid).not.toBe("0");
      uids.add(uid);
    }
    expect(uids.size).toBe(1);
    expect(await m.prop("epoll-echo.service", "ActiveState")).toBe("inactive");
  });

  test("400 TCP connections at once: every one answered, each instance got at least 10 %", async () => {
    const r = await whoAnswers(400, "tcp");
    console.log(`test/runtime/instances: TCP /instance over 400 connections: ${JSON.stringify(r.counts)}`);
    expect(r.failed).toBe(0);
    expect(Object.keys(r.counts).sort()).toEqual(INSTANCES.map(name).sort());
    for (const c of Object.values(r.counts)) expect(c).toBeGreaterThanOrEqual(40);
  }, 60_000);

  test("400 UDP sockets: every datagram answered, each instance got at least 10 % of the peers", async () => {
    const r = await whoAnswers(400, "udp");
    console.log(`test/runtime/instances: UDP /instance from 400 source ports: ${JSON.stringify(r.counts)}`);
    expect(r.failed).toBe(0);
    expect(Object.keys(r.counts).sort()).toEqual(INSTANCES.map(name).sort());
    for (const c of Object.values(r.counts)) expect(c).toBeGreaterThanOrEqual(40);
  }, 60_000);

  test("each instance's own --metrics port: its name on epoll_echo_build_info; the accepted counts add up to the connections made", async () => {
    let accepted = 0;
    for (const n of INSTANCES) {
      const r = await m.inNetwork([process.execPath, "-e", `console.log(await (await fetch("http://127.0.0.1:${metricsPort(n)}/metrics")).text())`]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`instance="${name(n)}"`);
      accepted += Number(/^epoll_echo_tcp_accepted_total (\d+)$/m.exec(r.stdout)![1]);
    }
    // The 400 above; a probe or two more at most from nothing else (the machine is private).
    expect(accepted).toBe(400);
  }, 60_000);

  test("one instance stopped while a client keeps connecting: nothing refused or lost; the other three answer everything", async () => {
    const loop = m.spawnInNetwork([process.execPath, CONNECT_LOOP, "127.0.0.1", "12345", "4000"]);
    await Bun.sleep(1000);
    await m.ok(["systemctl", "stop", unit(2)]);
    const [out, code] = await Promise.all([new Response(loop.stdout).text(), loop.exited]);
    expect(code).toBe(0);
    const counts = JSON.parse(out);
    console.log(`test/runtime/instances: connect loop across the stop of ${unit(2)}: ${out.trim()}`);
    expect(counts.ok).toBeGreaterThan(100);
    expect(counts.refused).toBe(0);
    expect(counts.unanswered).toBe(0);
    expect(counts.other).toEqual({});
    expect(counts.ok).toBe(counts.attempts);

    expect(await m.prop(unit(2), "ActiveState")).toBe("inactive");
    for (const n of [1, 3, 4]) expect(await m.prop(unit(n), "ActiveState")).toBe("active");
    const r = await whoAnswers(200, "tcp");
    expect(r.failed).toBe(0);
    expect(Object.keys(r.counts).sort()).toEqual([1, 3, 4].map(name).sort());
  }, 60_000);
});
