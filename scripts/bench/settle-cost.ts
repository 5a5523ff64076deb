// What the settle step (issue 15) costs the first client and what it leaves
// resident: each server is started, left alone 1.5 s (the settle runs 0.2 s
// after start), then one client connects and echoes one line, then a second
// one. Reported per server, medians over interleaved starts: the first and
// second client's connect-to-echo time, the minor page faults the first one
// caused, and RSS split into the executable's code (r-xp), its constants
// (r--p), anonymous memory and the rest, before the first client and after both.
// With --load S, the probe's load engine (./epoll-echo probe --load, 50
// connections × 16 lines of 64 B in flight, pinned to CPU 0 with the server on
// CPU 1, like the bench's pipelined row) then runs S seconds against the
// settled and re-warmed server: lines/s and server CPU µs per line.
//
//   flock /work/locks/cpu.lock bun scripts/bench/settle-cost.ts [--runs 11] [--env unit|none] [--load S] NAME=BINARY...
//
// A server must print "listening (TCP port=P, ...)" on stderr when ready
// (epoll-echo and the bench baseline both do); it is started with --port 0.
import { parseArgs } from "node:util";
import { median } from "../../src/core/latency.ts";
import { cpuSeconds, statFields } from "../../src/sys/procfs.ts";
import { formatRss, rssComposition, unitEnvironment, withoutUnitEnvironment, type RssComposition } from "./wakeups.ts";

const ROOT = `${import.meta.dir}/../..`;
const { values, positionals } = parseArgs({ args: Bun.argv.slice(2), options: { runs: { type: "string", default: "11" }, env: { type: "string", default: "unit" }, load: { type: "string", default: "0" } }, allowPositionals: true });
const servers = positionals.map((p) => {
  const eq = p.indexOf("=");
  return { name: p.slice(0, eq), cmd: p.slice(eq + 1).split(" ") };
});
const direct = withoutUnitEnvironment(process.env, ROOT);
const env = values.env === "unit" ? { ...direct, ...unitEnvironment(ROOT) } : direct;

const minorFaults = (pid: number) => Number(statFields(pid)[7]);

/** Connect, send one line, wait for its echo: ms, or NaN when it failed. */
function echoOnce(port: number): Promise<number> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let done = false;
    const finish = (v: number, s?: import("bun").Socket<undefined>) => {
      if (done) return;
      done = true;
      s?.end();
      resolve(v);
    };
    Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: { open: (s) => void s.write("settle-cost\n"), data: (s, d) => finish(d.length === 12 ? performance.now() - t0 : NaN, s), close: () => finish(NaN), error: () => finish(NaN) },
    }).catch(() => finish(NaN));
  });
}

interface Sample {
  first: number;
  second: number;
  faults: number;
  atRest: RssComposition;
  after: RssComposition;
  linesPerSec: number;
  cpuUsPerLine: number;
}

/** The probe's load against `port` for `secs`; lines/s and the server's CPU µs per line. */
function load(port: number, pid: number, secs: number): { linesPerSec: number; cpuUsPerLine: number } {
  if (secs <= 0) return { linesPerSec: NaN, cpuUsPerLine: NaN };
  const cpu0 = cpuSeconds(pid);
  const probe = Bun.spawnSync(["taskset", "-c", "0", `${ROOT}/epoll-echo`, "probe", `127.0.0.1:${port}`, "--load", "--connections", "50", "--pipeline", "16", "--duration", String(secs), "--json"]);
  const cpu = cpuSeconds(pid) - cpu0;
  const report = JSON.parse(probe.stdout.toString().split("\n")[0]!) as { ok: boolean; received: number; lines_per_s: number };
  if (!report.ok) throw new Error(`probe --load: lost or mismatched lines`);
  return { linesPerSec: report.lines_per_s, cpuUsPerLine: (cpu * 1e6) / report.received };
}

async function once(cmd: string[]): Promise<Sample> {
  const proc = Bun.spawn(["taskset", "-c", "1", ...cmd, "--port", "0"], { env, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  try {
    let text = "";
    const dec = new TextDecoder();
    let port = 0;
    for await (const chunk of proc.stderr) {
      text += dec.decode(chunk);
      const m = /listening \(TCP port=(\d+)/.exec(text);
      if (m) {
        port = Number(m[1]);
        break;
      }
    }
    if (port === 0) throw new Error(`${cmd[0]}: no "listening" line`);
    void (async () => {
      for await (const _ of proc.stderr);
    })();
    await Bun.sleep(1500);
    const atRest = rssComposition(proc.pid); // taskset exec'd the server: same pid
    const f0 = minorFaults(proc.pid);
    const first = await echoOnce(port);
    const faults = minorFaults(proc.pid) - f0;
    const second = await echoOnce(port);
    await Bun.sleep(100);
    const after = rssComposition(proc.pid);
    return { first, second, faults, atRest, after, ...load(port, proc.pid, Number(values.load)) };
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

const samples = new Map<string, Sample[]>(servers.map((s) => [s.name, []]));
for (let r = 0; r < Number(values.runs); r++) for (const s of servers) samples.get(s.name)!.push(await once(s.cmd));

const f = (x: number, d = 1) => x.toFixed(d);
const comp = (list: RssComposition[]) => {
  const m = (k: keyof RssComposition) => median(list.map((c) => c[k]));
  return formatRss({ total: m("total"), code: m("code"), constants: m("constants"), anon: m("anon"), other: m("other") });
};
console.log(`env: ${values.env}; medians of ${values.runs} interleaved starts`);
console.log("| server | first client: connect to echo ms | its minor faults | second client ms | RSS MiB at rest, 1.5 s after start | RSS MiB after both clients | load: lines/s | server CPU µs/line |");
console.log("|---|---|---|---|---|---|---|---|");
for (const s of servers) {
  const l = samples.get(s.name)!;
  console.log(`| ${s.name} | ${f(median(l.map((x) => x.first)), 2)} | ${median(l.map((x) => x.faults))} | ${f(median(l.map((x) => x.second)), 2)} | ${comp(l.map((x) => x.atRest))} | ${comp(l.map((x) => x.after))} | ${f(median(l.map((x) => x.linesPerSec)) / 1e6, 2)} M | ${f(median(l.map((x) => x.cpuUsPerLine)), 3)} |`);
}
