// What the settle step (issue 15) costs the first client and what it leaves
// resident: each server is started, left alone 1.5 s (the settle runs 0.2 s
// after start), then one client connects and echoes one line, then a second
// one. Reported per server, medians over interleaved starts: the first and
// second client's connect-to-echo time, the minor page faults the first one
// caused, and RSS split into the executable's code (r-xp), its constants
// (r--p), anonymous memory and the rest, before the first client and after both.
//
//   flock /work/locks/cpu.lock bun scripts/bench/settle-cost.ts [--runs 11] [--env unit|none] NAME=BINARY...
//
// A server must print "listening (TCP port=P, ...)" on stderr when ready
// (epoll-echo and the bench baseline both do); it is started with --port 0.
import { parseArgs } from "node:util";
import { median } from "../../src/core/latency.ts";
import { statFields } from "../../src/sys/procfs.ts";
import { formatRss, rssComposition, unitEnvironment, withoutUnitEnvironment, type RssComposition } from "./wakeups.ts";

const ROOT = `${import.meta.dir}/../..`;
const { values, positionals } = parseArgs({ args: Bun.argv.slice(2), options: { runs: { type: "string", default: "11" }, env: { type: "string", default: "unit" } }, allowPositionals: true });
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
}

async function once(cmd: string[]): Promise<Sample> {
  const proc = Bun.spawn([...cmd, "--port", "0"], { env, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
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
    const atRest = rssComposition(proc.pid);
    const f0 = minorFaults(proc.pid);
    const first = await echoOnce(port);
    const faults = minorFaults(proc.pid) - f0;
    const second = await echoOnce(port);
    await Bun.sleep(100);
    return { first, second, faults, atRest, after: rssComposition(proc.pid) };
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
console.log("| server | first client: connect to echo ms | its minor faults | second client ms | RSS MiB at rest, 1.5 s after start | RSS MiB after both clients |");
console.log("|---|---|---|---|---|---|");
for (const s of servers) {
  const l = samples.get(s.name)!;
  console.log(`| ${s.name} | ${f(median(l.map((x) => x.first)), 2)} | ${median(l.map((x) => x.faults))} | ${f(median(l.map((x) => x.second)), 2)} | ${comp(l.map((x) => x.atRest))} | ${comp(l.map((x) => x.after))} |`);
}
