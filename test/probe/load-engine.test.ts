// The load engine's phases as the benchmark drives them (scripts/bench/measure.ts),
// against the real server: line budgets (churn, idle) and the counter reset
// at the start of a measured window.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { LoadEngine, type EngineParams } from "../../src/probe/load.ts";
import { PLAIN } from "../../src/probe/net.ts";
import { startDaemon, type Daemon } from "../support/daemon.ts";
import { probe } from "../support/probe.ts";

let d: Daemon;
beforeAll(async () => {
  d = await startDaemon(["--port", "0"]);
});
afterAll(async () => {
  expect(await d.stop()).toBe(0);
});

const events: string[] = [];
function engine(extra: Partial<EngineParams>): LoadEngine {
  return new LoadEngine({
    endpoint: { address: "127.0.0.1", family: 4, port: d.tcpPort },
    stream: PLAIN,
    udp: false,
    connections: 2,
    pipeline: 4,
    size: 64,
    timeoutMs: 2000,
    onEvent: (m) => events.push(m),
    ...extra,
  });
}

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond() && performance.now() < end) await Bun.sleep(5);
}

async function totalClients(): Promise<number> {
  const r = await probe([`127.0.0.1:${d.tcpPort}`, "--command", "/stats"]);
  return Number(r.stdout.split(" ")[0]);
}

test("budget 'reconnect': one line per connection, then FIN and a fresh connection (churn)", async () => {
  const before = await totalClients();
  const load = engine({ pipeline: 1, budget: { lines: 1, then: "reconnect" } });
  await load.open();
  load.start();
  await until(() => load.counters.received >= 50);
  load.stopSending();
  await load.settle();
  load.close();
  const c = load.counters;
  expect(c.received).toBeGreaterThanOrEqual(50);
  expect(c.received).toBe(c.sent);
  expect({ lost: c.lost, mismatched: c.mismatched, disconnects: c.disconnects }).toEqual({ lost: 0, mismatched: 0, disconnects: 0 });
  // Every line came on a connection of its own (+1: this query's own connection).
  expect((await totalClients()) - before).toBeGreaterThanOrEqual(c.received + 1);
  expect(events).toEqual([]);
});

test("budget 'idle': one line per connection, then the connections stay open and quiet", async () => {
  const load = engine({ connections: 5, pipeline: 1, budget: { lines: 1, then: "idle" } });
  await load.open();
  load.start();
  await until(() => load.counters.received === 5);
  await Bun.sleep(100);
  expect(load.counters.sent).toBe(5);
  expect(load.counters.received).toBe(5);
  // Still connected: the server counts them (+1: the query's own connection).
  const r = await probe([`127.0.0.1:${d.tcpPort}`, "--command", "/stats"]);
  expect(Number(r.stdout.split(" ")[1])).toBe(6);
  load.close();
  expect(load.counters.lost).toBe(0);
  expect(events).toEqual([]);
});

test("resetCounters: a measured window counts only what completes after it starts", async () => {
  const load = engine({});
  await load.open();
  load.start();
  await until(() => load.counters.received > 1000);
  load.resetCounters();
  expect(load.counters.received).toBe(0);
  expect(load.counters.latency().count).toBe(0);
  await until(() => load.counters.received > 100);
  const inWindow = load.counters.received;
  expect(load.counters.latency().count).toBe(inWindow);
  load.stopSending();
  await load.settle();
  load.close();
  // Lines in flight at the reset came back inside the window: more received than sent since.
  expect(load.counters.received - load.counters.sent).toBe(8);
  expect(load.counters.lost).toBe(0);
});
