// Journald detection: stderr is a file whose dev:ino the test puts in
// JOURNAL_STREAM, as systemd does for the stream it connects to the journal.
// A match gives "<N>message" lines without our timestamp; anything else, the
// normal text format.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { daemonEnv, LAUNCH } from "../support/daemon.ts";
import { TcpClient } from "../support/net.ts";
import { waitForFile } from "../support/systemd.ts";

const ISO_TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/;
let dir: string | null = null;
let proc: Subprocess | null = null;
afterEach(async () => {
  if (proc && proc.exitCode === null) {
    proc.kill("SIGKILL");
    await proc.exited;
  }
  proc = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

/** An empty file to serve as stderr, and the JOURNAL_STREAM value naming it. */
function stderrFile(name: string): { path: string; stream: string } {
  dir ??= mkdtempSync(join(tmpdir(), "epoll-echo-journal-"));
  const path = join(dir, name);
  writeFileSync(path, "");
  const st = statSync(path, { bigint: true });
  return { path, stream: `${st.dev}:${st.ino}` };
}

function spawnWithStderr(args: string[], path: string, env: Record<string, string>): Subprocess {
  proc = Bun.spawn([...LAUNCH, ...args], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: Bun.file(path),
    env: daemonEnv(env),
  });
  return proc;
}

test("stderr is the journal: <N> priority prefixes, no timestamps", async () => {
  const { path, stream } = stderrFile("journal.log");
  // A bogus LISTEN_PID gives a warning line, -v and a command give a debug line.
  const p = spawnWithStderr(["--port", "0", "-v"], path, { JOURNAL_STREAM: stream, LISTEN_PID: "1", LISTEN_FDS: "1" });
  const ready = await waitForFile(path, /^<6>listening \(TCP port=(\d+), UDP port=\d+\)$/m);
  const c = await TcpClient.connect(Number(ready[1]));
  c.send("/time\n");
  await c.read(20);
  c.close();
  await waitForFile(path, /^<7>command name=time/m);
  p.kill("SIGTERM");
  expect(await p.exited).toBe(0);

  const lines = readFileSync(path, "utf8").trimEnd().split("\n");
  for (const line of lines) {
    expect(line).toMatch(/^<[0-7]>\S/);
    expect(line).not.toMatch(ISO_TIME);
  }
  expect(lines).toContain("<4>socket activation: LISTEN_PID=1 is another process (we are " + p.pid + ")");
  expect(lines.some((l) => l.startsWith("<6>epoll-echo ") && l.includes(" starting "))).toBe(true);
  expect(lines.some((l) => l.startsWith("<6>stopped "))).toBe(true);
}, 20_000);

test("errors get <3>", async () => {
  const { path, stream } = stderrFile("journal-error.log");
  const p = spawnWithStderr(["--shutdown-token-file", join(dir!, "missing")], path, { JOURNAL_STREAM: stream });
  expect(await p.exited).toBe(1);
  expect(readFileSync(path, "utf8")).toMatch(/^<3>--shutdown-token-file \S+missing: no such file$/m);
}, 20_000);

test("JOURNAL_STREAM naming another file, or garbage: the normal text format", async () => {
  const other = stderrFile("other.log");
  for (const stream of [other.stream, "garbage"]) {
    const { path } = stderrFile(`text-${stream === "garbage" ? "garbage" : "other"}.log`);
    const p = spawnWithStderr(["--port", "0"], path, { JOURNAL_STREAM: stream });
    await waitForFile(path, /listening \(TCP port=\d+, UDP port=\d+\)/);
    p.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    const lines = readFileSync(path, "utf8").trimEnd().split("\n");
    for (const line of lines) expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO |WARN |DEBUG|ERROR) /);
    expect(readFileSync(path, "utf8")).not.toMatch(/^<\d>/m);
  }
}, 20_000);
