// Where a start spends its time: each command is started N times (the
// commands interleaved, each pinned to one CPU), every line it writes to
// stderr is timestamped on arrival, and the median arrival of each line's key
// is printed per command, in ms after spawn. The child is killed once a line
// contains "listening". epoll-echo's own log lines are markers enough with
// --log-format json (the key is the first word of "msg"); a build with extra
// console.error("name") markers shows finer stages.
//
//   bun scripts/bench/stage-times.ts [--runs N] [--cpu C] "CMD ARGS" ["CMD ARGS" ...]
//   e.g. bun scripts/bench/stage-times.ts "./epoll-echo --port 0 --log-format json" "scripts/bench/.out/baseline --port 0"
import { median } from "../../src/core/latency.ts";

const commands: string[] = [];
const opts = new Map<string, string>();
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i]!;
  if (a === "--runs" || a === "--cpu") opts.set(a, process.argv[++i] ?? "");
  else commands.push(a);
}
const runs = Number(opts.get("--runs") ?? "11");
const cpu = opts.get("--cpu") ?? "1";
if (commands.length === 0 || !Number.isInteger(runs) || runs < 1 || runs > 200) {
  console.error('usage: bun scripts/bench/stage-times.ts [--runs N (1-200)] [--cpu C] "CMD ARGS" ...');
  process.exit(2);
}

/** The key of a stderr line: a JSON log line's first word of "msg", else the line's first word. */
function keyOf(line: string): string {
  const msg = /"msg":"([^" ]+)/.exec(line);
  return msg ? msg[1]! : (line.trim().split(/\s+/)[0] ?? "");
}

/** One start: each key's first arrival, ms after spawn (at most 10 s). */
async function once(cmd: string): Promise<Map<string, number>> {
  const marks = new Map<string, number>();
  const t0 = performance.now();
  const proc = Bun.spawn(["taskset", "-c", cpu, ...cmd.split(/\s+/).filter(Boolean)], { stdout: "ignore", stderr: "pipe" });
  const killer = setTimeout(() => proc.kill("SIGKILL"), 10_000);
  let pending = "";
  const decoder = new TextDecoder();
  for await (const chunk of proc.stderr) {
    const at = performance.now() - t0;
    pending += decoder.decode(chunk, { stream: true });
    let nl: number;
    let done = false;
    while ((nl = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      const key = keyOf(line);
      if (key !== "" && !marks.has(key)) marks.set(key, at);
      if (line.includes("listening")) done = true;
    }
    if (done) break;
  }
  proc.kill("SIGKILL");
  clearTimeout(killer);
  await proc.exited;
  return marks;
}

const samples = commands.map(() => new Map<string, number[]>());
for (let run = -1; run < runs; run++) {
  for (const [i, cmd] of commands.entries()) {
    const marks = await once(cmd);
    if (run < 0) continue; // a warm-up start of each, not counted
    for (const [key, at] of marks) {
      if (!samples[i]!.has(key)) samples[i]!.set(key, []);
      samples[i]!.get(key)!.push(at);
    }
  }
}
for (const [i, cmd] of commands.entries()) {
  const row = [...samples[i]!].map(([key, v]) => `${key}=${median(v).toFixed(2)}`).join(" ");
  console.log(`${cmd}\n  ${row}  (ms after spawn, median of ${runs})`);
}
