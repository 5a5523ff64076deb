// The .deb under a real booted systemd: Debian 12 in systemd-nspawn (own
// network namespace, loopback only), `dpkg -i` of the package built from this
// checkout, then every promise the units make, checked against systemd
// itself: readiness and STATUS=, journald priorities, credentials and
// /shutdown, the watchdog, Restart=on-failure, socket activation (with a
// restart under a connecting client), the exposure score, an upgrade that
// keeps a changed /etc/default file, and a purge that leaves nothing.
//
// Run by test/runtime/run.ts (`bun run test:runtime`), which builds the
// packages and passes them in EPOLL_ECHO_DEB and EPOLL_ECHO_DEB_UPGRADE.
// Clients run in the machine's network namespace: the host's own binary
// (`epoll-echo probe`, the same build as the package) and a host bash.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync } from "node:fs";
import { join } from "node:path";
import { BINARY } from "../support/daemon.ts";
import { bootDebian, nspawnSkipReason, type Machine } from "./support/nspawn.ts";

const DEB = process.env.EPOLL_ECHO_DEB ?? "";
const DEB_UPGRADE = process.env.EPOLL_ECHO_DEB_UPGRADE ?? "";
const UPGRADE_VERSION = process.env.EPOLL_ECHO_DEB_UPGRADE_VERSION ?? "";
const reason = nspawnSkipReason() ?? (DEB && DEB_UPGRADE ? null : "EPOLL_ECHO_DEB / EPOLL_ECHO_DEB_UPGRADE not set (run through test/runtime/run.ts)");
if (reason) console.log(`test/runtime/systemd.runtime.ts: skipped: ${reason}`);

const SERVICE = "epoll-echo.service";
const ACTIVATED = "epoll-echo-activated.service";
const TOKEN = "runtime-test-token-5b1c0e";
/** Figures printed at the end (the report of what the real systemd did). */
const seen: Record<string, string | number> = {};

let m: Machine;

/** The host's probe, inside the machine's network. */
async function probe(args: string[]) {
  const r = await m.inNetwork([BINARY, "probe", ...args, "--json"], { env: { NO_COLOR: "1" } });
  if (r.code !== 0) throw new Error(`probe ${args.join(" ")} exited ${r.code}: ${r.stdout}${r.stderr}`);
  return JSON.parse(r.stdout) as { sent: number; received: number; rtt_ms?: { min: number; avg: number; max: number } };
}

/** One TCP exchange in the machine's network with the host's bash: send text, read until the server closes. */
async function tcpExchange(text: string, timeoutS = 5): Promise<string> {
  const script = `exec 3<>/dev/tcp/127.0.0.1/12345 && printf '%s' "$1" >&3 && timeout ${timeoutS} cat <&3`;
  return (await m.inNetwork(["bash", "-c", script, "bash", text])).stdout;
}

/** Poll a condition on the machine until it holds (or the time is up); returns the seconds it took. */
async function until(what: string, cond: () => Promise<boolean>, timeoutMs = 10_000): Promise<number> {
  const t0 = performance.now();
  while (!(await cond())) {
    if (performance.now() - t0 > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await Bun.sleep(100);
  }
  return (performance.now() - t0) / 1000;
}

/** The units' last journal lines: what a failure message needs. */
const journal = async () => (await m.exec(["journalctl", "--no-pager", "-n", "25", "-u", "epoll-echo*"])).stdout;

/** systemctl inside the machine; on failure, throws with the units' journal. */
async function systemctl(...args: string[]) {
  const r = await m.exec(["systemctl", ...args]);
  if (r.code !== 0) throw new Error(`systemctl ${args.join(" ")} exited ${r.code}: ${r.stderr}\n${await journal()}`);
}

const active = async (unit: string) => (await m.exec(["systemctl", "is-active", unit])).stdout.trim() === "active";
const mainPid = async (unit: string) => Number(await m.prop(unit, "MainPID"));
const nRestarts = async (unit: string) => Number(await m.prop(unit, "NRestarts"));

async function dropIn(unit: string, name: string, body: string | null) {
  const path = `/etc/systemd/system/${unit}.d/${name}.conf`;
  if (body === null) await m.exec(["sh", "-c", 'rm -f "$1" && rmdir --ignore-fail-on-non-empty "${1%/*}"', "sh", path]);
  else m.writeFile(path, `[Service]\n${body}\n`);
  await systemctl("daemon-reload");
}

describe.skipIf(reason !== null)("the .deb under a booted systemd (Debian 12, systemd-nspawn)", () => {
  beforeAll(async () => {
    m = await bootDebian();
    seen["boot to running"] = `${m.bootSeconds.toFixed(1)} s`;
    seen["systemd"] = (await m.ok(["systemctl", "--version"])).split("\n")[0]!;
  }, 180_000);

  afterAll(async () => {
    await m?.poweroff();
    console.log("\nwhat the booted systemd showed:");
    for (const [k, v] of Object.entries(seen)) console.log(`  ${k.padEnd(44)} ${v}`);
  });

  test("dpkg -i: the service is active (READY reached), StatusText set, TCP and UDP echo", async () => {
    copyFileSync(DEB, join(m.root, "root/epoll-echo.deb"));
    const t0 = performance.now();
    await m.ok(["dpkg", "-i", "/root/epoll-echo.deb"], { timeoutMs: 120_000 });
    seen["dpkg -i (unpack + start)"] = `${((performance.now() - t0) / 1000).toFixed(1)} s`;
    if (!(await active(SERVICE))) throw new Error(`${SERVICE} is not active after dpkg -i:\n${await journal()}`);
    expect(await m.prop(SERVICE, "Type")).toBe("notify");
    expect(await m.prop(SERVICE, "StatusText")).toMatch(/^[^ ]+: \d+ TCP clients, \d+ UDP peers, \d+ lines and \d+ datagrams echoed$/);

    const tcp = await probe(["127.0.0.1:12345", "--count", "3", "--interval", "50"]);
    const udp = await probe(["[::1]:12345", "--udp", "--count", "3", "--interval", "50"]);
    expect([tcp.received, udp.received]).toEqual([3, 3]);
    seen["probe TCP / UDP rtt avg"] = `${tcp.rtt_ms?.avg} ms / ${udp.rtt_ms?.avg} ms`;
    // STATUS= is refreshed every 2 s when the figures change.
    await until("StatusText counts the probe's lines", async () => /[1-9]\d* lines and [1-9]\d* datagrams/.test(await m.prop(SERVICE, "StatusText")), 6000);
    seen["StatusText after the probes"] = await m.prop(SERVICE, "StatusText");
  }, 150_000);

  test("systemd-analyze security: exposure <= 2.0", async () => {
    const r = await m.exec(["systemd-analyze", "security", SERVICE]);
    const score = r.stdout.match(/Overall exposure level for epoll-echo\.service: (\d+\.\d+)/);
    expect(score).not.toBeNull();
    seen["systemd-analyze security"] = score![1]!;
    expect(Number(score![1])).toBeLessThanOrEqual(2.0);
  });

  test("journald: a busy rejection is logged at priority 4, info lines are not in -p warning", async () => {
    m.writeFile("/etc/default/epoll-echo", 'EPOLL_ECHO_OPTS="--max-tcp 1"\n');
    await systemctl("restart", SERVICE);
    const since = (await m.ok(["date", "+%s"])).trim();
    // The first client holds the only slot (it says "held" once its echo came
    // back, so it surely was accepted); the second is told "server busy".
    const holder = m.spawnInNetwork(["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/12345 && echo hi >&3 && head -c 3 <&3 >/dev/null && echo held && sleep 5"]);
    const reader = holder.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("held\n");
    expect(await tcpExchange("hello\n")).toBe("server busy\n");
    holder.kill();
    await holder.exited;
    const warnings = await m.ok(["journalctl", "-u", SERVICE, "--since", `@${since}`, "-p", "warning", "-o", "json", "--no-pager"]);
    const busy = warnings.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((e) => /server busy/.test(e.MESSAGE));
    expect(busy?.PRIORITY).toBe("4");
    expect(warnings).not.toContain("listening (TCP port=");
    const info = await m.ok(["journalctl", "-u", SERVICE, "--since", `@${since}`, "-p", "info", "-o", "json", "--no-pager"]);
    const ready = info.split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((e) => /listening \(TCP port=12345/.test(e.MESSAGE));
    expect(ready?.PRIORITY).toBe("6");
    seen["journal: busy warning"] = `PRIORITY=${busy.PRIORITY} "${busy.MESSAGE}"`;
    seen["journal: readiness line"] = `PRIORITY=${ready.PRIORITY}`;
    m.writeFile("/etc/default/epoll-echo", 'EPOLL_ECHO_OPTS=""\n');
  }, 60_000);

  test("credentials: LoadCredential token, /shutdown -> OK, inactive with status 0, not restarted", async () => {
    m.writeFile("/etc/epoll-echo/shutdown.token", `${TOKEN}\n`, 0o600);
    await dropIn(SERVICE, "token", "LoadCredential=shutdown.token:/etc/epoll-echo/shutdown.token");
    await systemctl("restart", SERVICE);
    const restarts = await nRestarts(SERVICE);
    expect(await tcpExchange(`/shutdown ${TOKEN}\n`)).toBe("OK, shutting down\n");
    await until("the unit is inactive", async () => (await m.prop(SERVICE, "ActiveState")) === "inactive");
    expect(await m.prop(SERVICE, "Result")).toBe("success");
    expect(await m.prop(SERVICE, "ExecMainStatus")).toBe("0");
    // RestartSec=1s: give systemd three times that to (wrongly) restart it.
    await Bun.sleep(3000);
    expect(await m.prop(SERVICE, "ActiveState")).toBe("inactive");
    expect(await nRestarts(SERVICE)).toBe(restarts);
    const journal = await m.ok(["journalctl", "-u", SERVICE, "--no-pager"]);
    expect(journal).not.toContain(TOKEN);
    seen["/shutdown via credential"] = "OK, shutting down; inactive, Result=success, status 0, not restarted after 3 s";
    await dropIn(SERVICE, "token", null);
    await systemctl("start", SERVICE);
  }, 60_000);

  test("watchdog: WatchdogSec=2s and kill -STOP -> killed and restarted; kill -9 -> restarted", async () => {
    await dropIn(SERVICE, "watchdog", "WatchdogSec=2s");
    await systemctl("restart", SERVICE);
    const before = await nRestarts(SERVICE);
    const stopped = await mainPid(SERVICE);
    await m.ok(["sh", "-c", 'kill -STOP "$1"', "sh", String(stopped)]); // minbase has no procps: the shell's kill
    const wd = await until(
      "restarted after the watchdog fired",
      async () => (await nRestarts(SERVICE)) > before && (await active(SERVICE)) && (await mainPid(SERVICE)) !== stopped,
    );
    const journal = await m.ok(["journalctl", "-u", SERVICE, "--no-pager", "-n", "30"]);
    expect(journal).toMatch(/[Ww]atchdog timeout/);
    seen["watchdog: STOP -> active again"] = `${wd.toFixed(1)} s (NRestarts ${before} -> ${await nRestarts(SERVICE)})`;

    const killed = await mainPid(SERVICE);
    const n = await nRestarts(SERVICE);
    await m.ok(["sh", "-c", 'kill -9 "$1"', "sh", String(killed)]);
    const k9 = await until(
      "restarted after SIGKILL",
      async () => (await nRestarts(SERVICE)) > n && (await active(SERVICE)) && (await mainPid(SERVICE)) !== killed,
    );
    seen["kill -9 -> active again"] = `${k9.toFixed(1)} s (RestartSec=1s)`;
    expect((await probe(["127.0.0.1:12345", "--count", "1"])).received).toBe(1);
    await dropIn(SERVICE, "watchdog", null);
  }, 60_000);

  test("socket activation: first TCP connection and first datagram start the service; restart refuses no connection", async () => {
    await systemctl("disable", "--now", SERVICE);
    await systemctl("enable", "--now", "epoll-echo.socket", "epoll-echo-udp.socket");
    expect(await active(ACTIVATED)).toBe(false);
    const t0 = performance.now();
    const tcp = await probe(["127.0.0.1:12345", "--count", "1", "--timeout", "10000"]);
    seen["socket activation: first TCP answer"] = `${Math.round(performance.now() - t0)} ms (incl. start)`;
    expect(tcp.received).toBe(1);
    expect(await active(ACTIVATED)).toBe(true);

    await systemctl("stop", ACTIVATED);
    const t1 = performance.now();
    const udp = await probe(["127.0.0.1:12345", "--udp", "--count", "1", "--timeout", "10000"]);
    seen["socket activation: first UDP answer"] = `${Math.round(performance.now() - t1)} ms (incl. start)`;
    expect(udp.received).toBe(1);
    expect(await active(ACTIVATED)).toBe(true);

    const loop = m.spawnInNetwork([process.execPath, join(import.meta.dir, "support", "connect-loop.ts"), "127.0.0.1", "12345", "4000"]);
    await Bun.sleep(1000);
    const pid = await mainPid(ACTIVATED);
    await systemctl("restart", ACTIVATED);
    expect(await mainPid(ACTIVATED)).not.toBe(pid);
    const [out, code] = await Promise.all([new Response(loop.stdout).text(), loop.exited]);
    expect(code).toBe(0);
    const counts = JSON.parse(out) as { attempts: number; ok: number; refused: number; unanswered: number; other: Record<string, number>; maxMs: number };
    seen["restart under a connecting client"] = `${counts.attempts} connections: ${counts.ok} echoed, ${counts.refused} refused, ${counts.unanswered} closed unanswered, other ${JSON.stringify(counts.other)}, slowest ${counts.maxMs} ms`;
    expect(counts.refused).toBe(0);
    expect(counts.other).toEqual({});
    expect(counts.ok).toBeGreaterThan(10);

    await systemctl("disable", "--now", "epoll-echo.socket", "epoll-echo-udp.socket", ACTIVATED);
    await systemctl("enable", "--now", SERVICE);
  }, 90_000);

  test("upgrade to a higher version: restarted on the new binary, changed /etc/default kept", async () => {
    m.writeFile("/etc/default/epoll-echo", 'EPOLL_ECHO_OPTS="--max-tcp 77"\n');
    await systemctl("restart", SERVICE);
    const oldPid = await mainPid(SERVICE);
    copyFileSync(DEB_UPGRADE, join(m.root, "root/epoll-echo-upgrade.deb"));
    const t0 = performance.now();
    await m.ok(["dpkg", "-i", "/root/epoll-echo-upgrade.deb"], { timeoutMs: 120_000 });
    seen["upgrade (dpkg -i of the higher version)"] = `${((performance.now() - t0) / 1000).toFixed(1)} s`;
    expect(await active(SERVICE)).toBe(true);
    const newPid = await mainPid(SERVICE);
    expect(newPid).not.toBe(oldPid);
    expect((await m.ok(["readlink", `/proc/${newPid}/exe`])).trim()).toBe("/usr/bin/epoll-echo");
    expect((await m.ok(["/usr/bin/epoll-echo", "--version"])).trim()).toBe(`epoll-echo ${UPGRADE_VERSION}`);
    expect((await m.ok(["dpkg-query", "-W", "-f", "${Version}", "epoll-echo"])).trim()).toBe(UPGRADE_VERSION);
    expect(m.readFile("/etc/default/epoll-echo")).toBe('EPOLL_ECHO_OPTS="--max-tcp 77"\n');
    expect((await m.ok(["cat", `/proc/${newPid}/cmdline`])).split("\0")).toContain("77");
    expect((await probe(["127.0.0.1:12345", "--count", "1"])).received).toBe(1);
    seen["upgrade"] = `${await m.ok(["dpkg-query", "-W", "-f", "${Version}", "epoll-echo"])}, MainPID ${oldPid} -> ${newPid}, /etc/default kept`;
  }, 150_000);

  test("dpkg -P: stopped, units and files gone, no process left", async () => {
    await m.ok(["dpkg", "-P", "epoll-echo"], { timeoutMs: 60_000 });
    expect(await active(SERVICE)).toBe(false);
    const left = await m.exec(["sh", "-c", "ls /usr/bin/epoll-echo /etc/default/epoll-echo /lib/systemd/system/epoll-echo* /etc/systemd/system/*/epoll-echo* 2>/dev/null"]);
    expect(left.stdout).toBe("");
    const procs = await m.exec(["sh", "-c", "for p in /proc/[0-9]*; do readlink $p/exe; done 2>/dev/null | grep epoll-echo || true"]);
    expect(procs.stdout).toBe("");
    expect((await m.exec(["systemctl", "list-unit-files", "epoll-echo*", "--no-legend"])).stdout.trim()).toBe("");
    seen["purge"] = "no binary, units, enablement links, /etc/default file or process left";
  }, 60_000);
});
