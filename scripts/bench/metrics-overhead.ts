// Metrics on vs off, in one run (issue 7): what --metrics costs the echo path.
//
//   bun scripts/bench/metrics-overhead.ts [--rounds N] [--seconds S] [--only pipelined,udp,ping-pong] [--scrape-ms MS]
//
// The same compiled ./epoll-echo under the same load (scripts/bench/measure.ts,
// the benchmark's driver of the probe's load engine) in three variants, rounds interleaved so drift
// hits all of them alike, medians reported with the ratio to "off":
//   off      no --metrics
//   on       --metrics 127.0.0.1:PORT, nobody scraping
//   scraped  --metrics, and GET /metrics every --scrape-ms (default 1000 ms,
//            15x Prometheus' default scrape interval) during the whole run
// Server pinned to CPU 1, load client and this runner (the scraper) to CPU 0,
// as in run.ts. The counters themselves are bumped whether --metrics is on or
// not (src/core/stats.ts), so "on" isolates the idle HTTP listener and "scraped"
// the cost of building the exposition on the server's event loop.
import { parseArgs } from "node:util";
import { join, resolve } from "node:path";
import { existsSync } from "node:fs";
import { median } from "../../src/core/latency.ts";
import type { MeasureResult as LoadResult, MeasureSpec as LoadSpec } from "./measure.ts";
import { freePort } from "./ports.ts";

const HERE = import.meta.dir;
const ROOT = resolve(HERE, "../..");
const MEASURE = join(HERE, "measure.ts");
const EPOLL = join(ROOT, "epoll-echo");
const SERVER_CPU = "1";
const LOAD_CPU = "0";

const { values: opt } = parseArgs({
  args: process.argv.slice(2),
  strict: true,
  options: {
    rounds: { type: "string" },
    seconds: { type: "string" },
    only: { type: "string" },
    "scrape-ms": { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (opt.help) {
  console.log("usage: bun scripts/bench/metrics-overhead.ts [--rounds N] [--seconds S] [--only pipelined,udp,ping-pong] [--scrape-ms MS]");
  process.exit(0);
}
const rounds = Number(opt.rounds ?? 3);
const seconds = Number(opt.seconds ?? 5);
const scrapeMs = Number(opt["scrape-ms"] ?? 1000);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) throw new Error("--rounds: 1 to 20");
if (!(seconds > 0 && seconds <= 120)) throw new Error("--seconds: more than 0, at most 120");
if (!(scrapeMs >= 10)) throw new Error("--scrape-ms: at least 10");
if (!existsSync(EPOLL)) throw new Error(`${EPOLL} is missing: bun run build`);

const SCENARIOS: Record<string, { unit: string; spec: Partial<LoadSpec> }> = {
  pipelined: { unit: "line", spec: { scenario: "stream", conns: 50, window: 16, lineLen: 64 } },
  udp: { unit: "datagram", spec: { scenario: "udp", conns: 8, window: 8, lineLen: 64 } },
  "ping-pong": { unit: "line", spec: { scenario: "stream", conns: 1, window: 1, lineLen: 64 } },
};
const scenarios = (opt.only ?? "pipelined,udp,ping-pong").split(",").map((s) => s.trim());
for (const s of scenarios) if (!SCENARIOS[s]) throw new Error(`--only: unknown scenario ${s} (have ${Object.keys(SCENARIOS).join(", ")})`);

type Variant = "off" | "on" | "scraped";
const VARIANTS: Variant[] = ["off", "on", "scraped"];

const log = (s: string) => process.stderr.write(s + "\n");
const pinned = (cpu: string, cmd: string[]) => ["sh", "-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; cpu="$1"; shift; exec taskset -c "$cpu" "$@"', "sh", cpu, ...cmd];
// This runner scrapes: keep it off the server's CPU.
Bun.spawnSync(["taskset", "-p", "-c", LOAD_CPU, String(process.pid)]);

async function waitFor(url: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > until) throw new Error(`${url} did not answer`);
    await Bun.sleep(20);
  }
}

interface Row {
  result: LoadResult;
  scrapes: number;
  scrapeFailures: number;
}

async function runOne(scenario: string, variant: Variant): Promise<Row> {
  const port = await freePort();
  const metricsPort = await freePort();
  const args = [EPOLL, "-q", "--max-tcp", "15000", "--port", String(port)];
  if (variant !== "off") args.push("--metrics", `127.0.0.1:${metricsPort}`);
  const server = Bun.spawn(pinned(SERVER_CPU, args), { cwd: ROOT, stdin: "ignore", stdout: "ignore", stderr: "inherit" });
  const url = `http://127.0.0.1:${metricsPort}/metrics`;
  if (variant !== "off") await waitFor(url, 10_000);
  else await Bun.sleep(300); // the load client retries its first connect as well
  const spec = { host: "127.0.0.1", tcpPort: port, udpPort: port, serverPid: server.pid, serverCpu: SERVER_CPU, loadCpu: LOAD_CPU, warmupMs: 1500, measureMs: seconds * 1000, ...SCENARIOS[scenario]!.spec } as LoadSpec;
  let scrapes = 0;
  let scrapeFailures = 0;
  const scraper =
    variant === "scraped"
      ? setInterval(() => {
          fetch(url)
            .then(async (r) => {
              await r.text();
              if (r.ok) scrapes++;
              else scrapeFailures++;
            })
            .catch(() => scrapeFailures++);
        }, scrapeMs)
      : null;
  const load = Bun.spawn(pinned(LOAD_CPU, [process.execPath, MEASURE, JSON.stringify(spec)]), { cwd: ROOT, stdin: "ignore", stdout: "pipe", stderr: "inherit" });
  const out = await new Response(load.stdout).text();
  await load.exited;
  if (scraper) clearInterval(scraper);
  server.kill("SIGTERM");
  await server.exited;
  let result: LoadResult;
  try {
    result = JSON.parse(out.trim().split("\n").pop() ?? "");
  } catch {
    result = { ok: false, error: `load client gave no result (exit ${load.exitCode})` } as LoadResult;
  }
  return { result, scrapes, scrapeFailures };
}

const rows = new Map<string, Row[]>();
const t0 = Date.now();
for (let round = 0; round < rounds; round++) {
  for (const scenario of scenarios) {
    // Rotate the order every round so no variant always goes first.
    const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length]!);
    for (const variant of order) {
      log(`metrics-overhead: ${scenario} · ${variant} · round ${round + 1}/${rounds}`);
      const row = await runOne(scenario, variant);
      if (!row.result.ok) log(`metrics-overhead: ${scenario} · ${variant} FAILED: ${row.result.error}`);
      const key = `${scenario}/${variant}`;
      rows.set(key, [...(rows.get(key) ?? []), row]);
    }
  }
}

const f = (x: number, d = 0) => (Number.isFinite(x) ? x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d }) : "–");
const lines = [
  `| scenario | variant | ops/s | ratio to off | server CPU µs/op | ratio to off | p99 µs | scrapes (failed) | valid |`,
  `|---|---|---|---|---|---|---|---|---|`,
];
const summary: Record<string, unknown>[] = [];
for (const scenario of scenarios) {
  const base = rows.get(`${scenario}/off`)!.filter((r) => r.result.ok);
  const baseOps = median(base.map((r) => r.result.opsPerSec));
  const baseCpu = median(base.map((r) => r.result.serverCpuUsPerOp));
  for (const variant of VARIANTS) {
    const all = rows.get(`${scenario}/${variant}`)!;
    const ok = all.filter((r) => r.result.ok && r.result.mismatches === 0);
    const ops = median(ok.map((r) => r.result.opsPerSec));
    const cpu = median(ok.map((r) => r.result.serverCpuUsPerOp));
    const p99 = median(ok.map((r) => r.result.p99us ?? NaN));
    const scrapes = all.reduce((n, r) => n + r.scrapes, 0);
    const failed = all.reduce((n, r) => n + r.scrapeFailures, 0);
    const lost = all.reduce((n, r) => n + (r.result.lost ?? 0), 0);
    lines.push(
      `| ${scenario} | ${variant} | ${f(ops)} | ${f(ops / baseOps, 3)} | ${f(cpu, 2)} | ${f(cpu / baseCpu, 3)} | ${f(p99)} | ${variant === "scraped" ? `${scrapes} (${failed})` : "–"} | ${ok.length}/${all.length}${lost ? `, ${lost} lost` : ""} |`,
    );
    summary.push({ scenario, variant, opsPerSec: ops, opsRatio: ops / baseOps, serverCpuUsPerOp: cpu, cpuRatio: cpu / baseCpu, p99us: p99, scrapes, scrapeFailures: failed, valid: ok.length, runs: all.length });
  }
}
console.log(`\nmetrics on vs off: ${rounds} round(s), ${seconds} s measured after a 1.5 s warm-up, medians; scraped = GET /metrics every ${scrapeMs} ms; ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
console.log(lines.join("\n"));
console.log(`\n${JSON.stringify(summary)}`);
