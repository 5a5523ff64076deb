// Runs the stress suite: `bun test/stress/run.ts [short|full] [NN ...]`.
//   short (default): every scenario at CI size, under 2 minutes in all
//   full:            the sizes of issue 5 (5,000 clients, 20,000 cycles, ...)
//   NN ...:          only these scenarios (e.g. `full 01 04`)
// Builds ./epoll-echo first if it is missing. Runs the scenario files in one
// `bun test` (its ` N pass` / ` N fail` lines are the verdict), then prints
// every scenario's figures again as one summary. Exit status: bun test's.
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
const args = process.argv.slice(2);
const profile = args[0] === "full" || args[0] === "short" ? args.shift()! : "short";
const only = new Set(args);
const files = readdirSync(import.meta.dir)
  .filter((f) => f.endsWith(".stress.ts") && (only.size === 0 || only.has(f.slice(0, 2))))
  .sort()
  .map((f) => "./" + join("test", "stress", f));
if (files.length === 0) {
  console.error(`no scenario matches ${[...only].join(" ")}`);
  process.exit(2);
}

if (!existsSync(join(ROOT, "epoll-echo"))) {
  const b = Bun.spawnSync(["bash", "scripts/build.sh"], { cwd: ROOT, stdout: "inherit", stderr: "inherit" });
  if (b.exitCode !== 0) process.exit(b.exitCode ?? 1);
}

const results = `/tmp/epoll-echo-stress-${profile}-${process.pid}.jsonl`;
const t0 = performance.now();
const proc = Bun.spawn([process.execPath, "test", "--timeout", "600000", ...files], {
  cwd: ROOT,
  stdin: "ignore",
  stdout: "inherit",
  stderr: "inherit",
  env: { ...process.env, STRESS_PROFILE: profile, STRESS_RESULTS: results },
});
const code = await proc.exited;
const seconds = (performance.now() - t0) / 1000;

console.log(`\nstress suite (${profile} profile): ${files.length} files in ${seconds.toFixed(1)} s, bun test exit ${code}`);
if (existsSync(results)) {
  for (const line of readFileSync(results, "utf8").split("\n")) {
    if (!line) continue;
    const { scenario, profile: _p, ...figures } = JSON.parse(line) as Record<string, unknown>;
    const shown = Object.entries(figures).map(([k, v]) => `${k}=${typeof v === "number" && !Number.isInteger(v) ? Number(v.toFixed(3)) : v}`);
    console.log(`  ${String(scenario).padEnd(40)} ${shown.join(" ")}`);
  }
  rmSync(results, { force: true });
}
process.exit(code);
