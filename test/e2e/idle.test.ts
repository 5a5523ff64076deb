// An idle server has no timer of its own: with the runtime settings of the
// packaged unit, the whole process wakes about once a second with no clients
// (the runtime's GC timer, which itself stops after ~30 s of idle) and two to
// three times with idle clients connected and no --idle-timeout (plus the
// runtime's socket sweep timer, which sometimes wakes twice). Before, the
// server's own once-a-second housekeeping added one more wakeup a second. Wakeups are context switches of
// all threads (/proc/PID/task/*/status); the test counts the voluntary ones
// (a thread going back to sleep), which do not depend on machine load the way
// preemptions and timings do.
import { afterEach, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { startDaemon, ROOT, type Daemon } from "../support/daemon.ts";
import { TcpClient } from "../support/net.ts";
import { formatWakeups, measureWakeups, unitEnvironment } from "../../scripts/bench/wakeups.ts";

const env = unitEnvironment(ROOT);
let d: Daemon | null = null;
const clients: TcpClient[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  if (d) await d.stop();
  d = null;
});

test("the unit's environment turns off the GC helper pool and the allocator's scavenger thread; the image sets the same", () => {
  expect(env).toEqual({ BUN_JSC_numberOfGCMarkers: "1", MIMALLOC_SCAVENGER: "0" });
  const image = readFileSync(join(ROOT, "scripts/image/Containerfile"), "utf8");
  expect(/^ENV (.*)$/m.exec(image)?.[1]).toBe(Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" "));
});

test("idle, no clients and then 20 idle clients: at most 1.5 and 4 wakeups/s in all", async () => {
  // Every address (no --listen): the per-address UDP sockets are bound just after start and rescanned only
  // when a datagram reaches the wildcard socket or on SIGHUP, never on a timer.
  d = await startDaemon(["--port", "0"], { env });
  await d.waitForLog(/UDP addresses: /);
  await Bun.sleep(1000);
  const none = await measureWakeups(d.pid, 4000);
  for (let i = 0; i < 20; i++) {
    const c = await TcpClient.connect(d.tcpPort);
    c.send("hello\n");
    expect((await c.read(6)).toString()).toBe("hello\n");
    clients.push(c);
  }
  // The activity tick stops after the first quiet second; the JIT settles, and
  // the runtime's one concurrent collection ~6-11 s after start is over.
  await Bun.sleep(7000);
  const held = await measureWakeups(d.pid, 4000);
  console.log(`wakeups: no clients ${formatWakeups(none)}; 20 idle clients ${formatWakeups(held)}`);
  expect(none.voluntary).toBeLessThanOrEqual(1.5);
  expect(held.voluntary).toBeLessThanOrEqual(4);
}, 30_000);
