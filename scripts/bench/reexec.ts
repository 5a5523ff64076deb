// The re-exec at rest (src/server/handover.ts), what it costs and what it
// leaves: N interleaved pairs of starts of ./epoll-echo -vv --port 0, one
// directly (without the unit's Environment=: it re-executes itself at rest)
// and one with it (no re-exec). Reported: the exec window (exec_ms of the
// "re-executed" line: from just before execve to the new image serving), and
// RSS 0.5 s after the settle for both kinds of start. With --signals M, M
// more direct starts get a SIGTERM the instant the old image's last line
// ("at rest: re-executing") arrives, the narrowest moment there is: counted
// are the graceful exits (0) and the signals lost (still running 3 s later,
// then killed).
//
//   flock /work/locks/cpu.lock bun scripts/bench/reexec.ts [--starts 11] [--signals 40] [BINARY]
import { parseArgs } from "node:util";
import { median } from "../../src/core/latency.ts";
import { readMem } from "../../src/sys/procfs.ts";
import { unitEnvironment, withoutUnitEnvironment } from "./wakeups.ts";

const ROOT = `${import.meta.dir}/../..`;
const { values, positionals } = parseArgs({
  args: Bun.argv.slice(2),
  options: { starts: { type: "string", default: "11" }, signals: { type: "string", default: "0" } },
  allowPositionals: true,
});
const binary = positionals[0] ?? `${ROOT}/epoll-echo`;
const direct = withoutUnitEnvironment(process.env, ROOT);
const unit = { ...direct, ...unitEnvironment(ROOT) };

/** Start, wait until stderr matches `until` (10 s at most), call `then`, stop; stderr and the exit code. */
async function run(env: Record<string, string | undefined>, until: RegExp, then: (pid: number) => Promise<void> | void): Promise<{ text: string; code: number }> {
  const proc = Bun.spawn([binary, "-vv", "--port", "0"], { env: env as Record<string, string>, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  let text = "";
  const decoder = new TextDecoder();
  const reader = (async () => {
    for await (const chunk of proc.stderr) text += decoder.decode(chunk, { stream: true });
  })();
  const deadline = performance.now() + 10_000;
  while (!until.test(text) && performance.now() < deadline && proc.exitCode === null) await Bun.sleep(1);
  if (!until.test(text)) throw new Error(`no ${until} within 10 s; stderr:\n${text}`);
  await then(proc.pid);
  proc.kill("SIGTERM");
  const code = await proc.exited;
  await reader;
  return { text, code };
}

const SETTLED_AFTER_REEXEC = /re-executed[^\n]*exec_ms=[\d.]+[\s\S]*DEBUG settled/;
const execMs: number[] = [];
const rss = { direct: [] as number[], unit: [] as number[] };
const restingRss = async (pid: number, into: number[]) => {
  await Bun.sleep(500);
  into.push(readMem(pid).rssKiB / 1024);
};
for (let i = 0; i < Number(values.starts); i++) {
  const d = await run(direct, SETTLED_AFTER_REEXEC, (pid) => restingRss(pid, rss.direct));
  execMs.push(Number(/exec_ms=([\d.]+)/.exec(d.text)![1]));
  await run(unit, /DEBUG settled/, (pid) => restingRss(pid, rss.unit));
}
const fmt = (xs: number[], digits: number) => `median ${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
if (execMs.length > 0) {
  console.log(`exec window (exec_ms), ${execMs.length} direct starts: ${fmt(execMs, 1)} ms`);
  console.log(`RSS 0.5 s after the settle: direct start (re-executed) ${fmt(rss.direct, 1)} MiB; unit's Environment= ${fmt(rss.unit, 1)} MiB`);
}

let graceful = 0;
let lost = 0;
for (let i = 0; i < Number(values.signals); i++) {
  const proc = Bun.spawn([binary, "-vv", "--port", "0"], { env: direct as Record<string, string>, stdin: "ignore", stdout: "ignore", stderr: "pipe" });
  let text = "";
  let sent = false;
  const decoder = new TextDecoder();
  const reader = (async () => {
    for await (const chunk of proc.stderr) {
      text += decoder.decode(chunk, { stream: true });
      // Sent from the reading loop itself: the instant the line is here.
      if (!sent && text.includes("at rest: re-executing")) {
        sent = true;
        proc.kill("SIGTERM");
      }
    }
  })();
  const timer = setTimeout(() => proc.kill("SIGKILL"), 13_000);
  const code = await Promise.race([proc.exited, (async () => {
    while (!sent) await Bun.sleep(1);
    await Bun.sleep(3000);
    return -1;
  })()]);
  if (code === -1) proc.kill("SIGKILL");
  await proc.exited;
  clearTimeout(timer);
  await reader;
  if (code === 0) graceful++;
  else lost++;
}
if (Number(values.signals) > 0) console.log(`SIGTERM the instant "at rest: re-executing" arrives: ${graceful} graceful exits, ${lost} lost (killed after 3 s)`);
