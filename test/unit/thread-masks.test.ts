// Other threads' signal masks (src/sys/libc.ts, setThreadMasks; used by
// src/server/handover.ts before the exec): each thread of this test process
// that does not block a signal is asked to, /proc shows that every one
// does, then to unblock it, and /proc shows that none does. The main thread is left alone.
import { expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import * as libc from "../../src/sys/libc.ts";

const bit = libc.signalBits([libc.SIGHUP]);

function blocking(tid: number): boolean | null {
  try {
    const m = /^SigBlk:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/self/task/${tid}/status`, "latin1"));
    return (BigInt(`0x${m![1]}`) & bit) !== 0n;
  } catch {
    return null; // gone meanwhile
  }
}

async function until(done: () => boolean): Promise<boolean> {
  for (let i = 0; i < 200 && !done(); i++) await Bun.sleep(5);
  return done();
}

test("every other thread blocks a signal when asked, and unblocks it again; the main thread is not touched", async () => {
  // The threads that do not block it (some runtime threads block every signal: left out). Also left
  // out: the test runner's "HTTP Client" thread, which waits in epoll_pwait with a signal mask of its
  // own, the mask /proc shows while it waits (the daemon has no such thread; were there one, the
  // re-exec would see it in /proc and not happen).
  const others = readdirSync("/proc/self/task")
    .map(Number)
    .filter((tid) => tid !== process.pid && blocking(tid) === false && readFileSync(`/proc/self/task/${tid}/comm`, "latin1").trim() !== "HTTP Client");
  expect(others.length).toBeGreaterThan(0);
  libc.compileThreadMasks();
  expect(libc.setThreadMasks(others, [libc.SIGHUP], true)).toBe(others.length);
  expect(await until(() => others.every((tid) => blocking(tid) !== false))).toBe(true);
  expect(blocking(process.pid)).toBe(false);
  expect(libc.setThreadMasks(others, [libc.SIGHUP], false)).toBe(others.length);
  expect(await until(() => others.every((tid) => blocking(tid) !== true))).toBe(true);
});
