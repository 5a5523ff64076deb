// sd_notify through a real AF_UNIX datagram socket (test/systemd/notify-listener.py
// stands in for systemd and reports each sender's pid from SCM_CREDENTIALS):
// READY=1 with STATUS=, WATCHDOG=1, periodic STATUS=, STOPPING=1, in order,
// from the daemon's own pid, for a path and for an @abstract address.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LAUNCH, startDaemon, type Daemon } from "../support/daemon.ts";
import { TcpClient } from "../support/net.ts";
import { NotifyListener } from "../support/systemd.ts";

let daemon: Daemon | null = null;
let listener: NotifyListener | null = null;
let dir: string | null = null;
afterEach(async () => {
  if (daemon) await daemon.stop();
  if (listener) await listener.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  daemon = listener = dir = null;
});

const STATUS = /^STATUS=notify-test: (\d+) TCP clients, (\d+) UDP peers, (\d+) lines and (\d+) datagrams echoed$/;

async function lifecycle(address: string, opts: { watchdogPidIsOurs: boolean }) {
  listener = await NotifyListener.open(address);
  const l = listener;
  const env = { NOTIFY_SOCKET: address, WATCHDOG_USEC: "200000" };
  // WATCHDOG_PID must name the daemon, whose pid is only known once it runs: set it from inside an exec'ing shell.
  const command = opts.watchdogPidIsOurs ? ["sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"', ...LAUNCH] : undefined;
  daemon = await startDaemon(["--port", "0", "--instance", "notify-test"], { env, command });
  const d = daemon;

  await l.waitFor(/^READY=1$/);
  expect(l.messages[0]!.data).toMatch(/^READY=1\nSTATUS=notify-test: 0 TCP clients, 0 UDP peers, 0 lines and 0 datagrams echoed$/);
  await l.waitFor(/^WATCHDOG=1$/);
  // The status follows the counters (refreshed every 2 s when it changed).
  const c = await TcpClient.connect(d.tcpPort);
  c.send("one\ntwo\n");
  await c.read(8);
  const changed = await l.waitFor(/^STATUS=notify-test: 1 TCP clients, 0 UDP peers, 2 lines/, 6000);
  expect(changed).toMatch(STATUS);
  c.close();

  expect(await d.stop()).toBe(0);
  await l.waitFor(/^STOPPING=1$/);
  const seen = l.assignments();
  const first = (p: RegExp) => seen.findIndex((a) => p.test(a));
  const ready = first(/^READY=1$/);
  const status = first(/^STATUS=/);
  const watchdog = first(/^WATCHDOG=1$/);
  const stopping = first(/^STOPPING=1$/);
  expect(ready).toBe(0);
  expect(ready).toBeLessThan(status);
  expect(status).toBeLessThan(watchdog);
  expect(watchdog).toBeLessThan(stopping);
  expect(seen.filter((a) => a === "READY=1")).toHaveLength(1);
  // The timers stop with the stop: no watchdog ping after STOPPING=1.
  expect(seen.slice(stopping).filter((a) => a === "WATCHDOG=1")).toEqual([]);
  expect(seen[stopping + 1]).toBe("STATUS=stopping (SIGTERM)");
  // Every datagram came from the daemon itself (what NotifyAccess=main demands): no helper process.
  expect(new Set(l.messages.map((m) => m.pid))).toEqual(new Set([d.pid]));
  expect(d.stderr()).not.toMatch(/sd_notify failed/);
}

test("path NOTIFY_SOCKET, WATCHDOG_PID set to the daemon", async () => {
  dir = mkdtempSync(join(tmpdir(), "epoll-echo-notify-"));
  await lifecycle(join(dir, "notify.sock"), { watchdogPidIsOurs: true });
}, 20_000);

test("abstract @NOTIFY_SOCKET, no WATCHDOG_PID", async () => {
  await lifecycle(`@epoll-echo-test-${process.pid}-${Math.random().toString(36).slice(2)}`, { watchdogPidIsOurs: false });
}, 20_000);

test("watchdog off when WATCHDOG_PID names another process", async () => {
  listener = await NotifyListener.open(`@epoll-echo-test-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const l = listener;
  daemon = await startDaemon(["--port", "0", "-v"], {
    env: { NOTIFY_SOCKET: l.address, WATCHDOG_USEC: "20000", WATCHDOG_PID: "1" },
  });
  await l.waitFor(/^READY=1$/);
  expect(daemon.stderr()).toMatch(/DEBUG watchdog disabled: WATCHDOG_PID=1 is another process/);
  expect(await daemon.stop()).toBe(0);
  await l.waitFor(/^STOPPING=1$/);
  expect(l.assignments()).not.toContain("WATCHDOG=1");
}, 20_000);

test("an unreachable notify socket is warned about once and never stops the daemon", async () => {
  dir = mkdtempSync(join(tmpdir(), "epoll-echo-notify-"));
  // 10 ms watchdog interval: many failed sends, one warning, the rest at debug level.
  daemon = await startDaemon(["--port", "0", "-v"], {
    env: { NOTIFY_SOCKET: join(dir, "nobody-listens"), WATCHDOG_USEC: "20000" },
  });
  const d = daemon;
  await d.waitForLog(/(DEBUG sd_notify failed.*\n[^]*){3}/);
  expect(d.stderr().match(/WARN +sd_notify failed/g)).toHaveLength(1);
  expect(d.stderr()).toMatch(/WARN +sd_notify failed \(further failures logged at debug level\) call=sendto error=ENOENT/);
  const c = await TcpClient.connect(d.tcpPort);
  c.send("still here\n");
  expect((await c.read(11)).toString()).toBe("still here\n");
  c.close();
  expect(await d.stop()).toBe(0);
}, 20_000);

test("a NOTIFY_SOCKET that is neither a path nor @name is ignored with a warning", async () => {
  daemon = await startDaemon(["--port", "0"], { env: { NOTIFY_SOCKET: "relative/notify.sock" } });
  expect(daemon.stderr()).toMatch(/WARN +sd_notify disabled: NOTIFY_SOCKET="relative\/notify.sock": neither an absolute path nor an @abstract name/);
  expect(await daemon.stop()).toBe(0);
}, 20_000);
