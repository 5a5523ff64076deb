// The deferred re-exec: a server started without the runtime's idle settings
// (IDLE_SETTINGS, src/core/handover.ts: the units and the image set them, a
// shell does not) idles at 13-14 wakeups/s for its first half minute, from
// the runtime's GC helper and allocator scavenger threads. Nothing inside a
// running process can change those settings, and re-executing at the top of
// main would cost a second runtime start. So the server starts and serves as
// it is, and at its first rest (MemoryTrim's first settle: no client
// connected) it execve()s itself, same PID, same argv, with the settings
// added to its environment, handing its sockets over: every listening TCP,
// TLS and metrics socket and every UDP socket keeps its descriptor across the
// exec (FD_CLOEXEC cleared), so connections waiting in the accept backlog and
// datagrams queued in the socket buffers are served by the new process,
// which adopts the descriptors and carries the counters on (a memfd named by
// HANDOVER_VARIABLE describes both), and takes its process name back (an exec
// of /proc/self/exe names a process "exe"). This module loads only for that.
//
// Signals. SIGTERM, SIGINT and SIGHUP are blocked on every thread before the
// exec: a signal sent meanwhile stays pending for the process, execve keeps
// it (and the main thread's mask), and the new process unblocks them once
// its handlers are in (resumed()), so it takes the graceful path. The main
// thread blocks them itself; the runtime's helper threads (JITWorker,
// HeapHelper, ...) never do, so each is made to (libc.setThreadMasks: a
// private signal whose handler edits the mask the thread returns to), and
// the exec waits until /proc shows every thread blocking them. A signal a
// helper thread took before that ran Bun's handler, which queues it for the
// JavaScript thread and writes the event loop's eventfd: so after blocking,
// the loop is given a turn (anything queued before is handled: a stop
// cancels the exec), and the eventfd's counter, which Bun 1.4.5 never reads
// back, is checked right before execve: any write since means something was
// queued, and the exec waits for another round. If the exec does not
// happen, the helper threads are made to unblock them again.
import * as libc from "../sys/libc.ts";
import { nodeFs } from "../sys/node-fs.ts";
import type { Logger } from "../sys/log.ts";
import { errnoName, errorText } from "../core/error-text.ts";
import { decodeHandover, encodeHandover, execEnvironment, handoverFd, type HandedSocket, type Handover } from "../core/handover.ts";
import { HANDOVER_VARIABLE, settingsText } from "../core/idle-settings.ts";
import type { Config } from "../core/config.ts";
import type { Server } from "./server.ts";

const HELD_SIGNALS = [libc.SIGHUP, libc.SIGINT, libc.SIGTERM];
/** Rounds of (block, one turn, check) before giving up when the event loop keeps being woken. */
const MAX_ROUNDS = 5;
/** The turn given to the event loop between blocking the signals and the exec, ms. */
const TURN_MS = 2;

/** What the re-exec needs besides the server. */
export interface RestContext {
  log: Logger;
  server: Server;
  /** The metrics listener, if any: its socket is handed over too, and a scrape in progress puts the exec off. */
  metrics: { readonly fd: number; readonly connections: number } | null;
  /** The new process reads the token and the TLS pair again: they must still be readable. */
  config: Pick<Config, "shutdownTokenFile" | "tls">;
  credentialsDirectory: string | undefined;
}

type Outcome = "busy" | "stopping" | "woken" | "failed";

/**
 * MemoryTrim's first rest: re-execute with the idle settings, handing the
 * sockets over. Returns only if the process was not replaced: true = ask again
 * at the next quiet tick (clients were connected), false = settle and never ask again.
 */
export async function reexecAtRest(ctx: RestContext): Promise<boolean> {
  const { log } = ctx;
  try {
    const obstacle = exeObstacle() ?? (await filesObstacle(ctx)) ?? masksObstacle();
    if (obstacle !== null) {
      log.debug(`not re-executing with the runtime's idle settings: ${obstacle}`);
      return false;
    }
    const argv = commandLine();
    const name = nodeFs().readFileSync("/proc/self/comm", "latin1").trim();
    const wakers = eventfds();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      holdSignals(true);
      takeWakeups(wakers);
      wake(wakers); // what was queued before still gets its turn
      await Bun.sleep(TURN_MS);
      const outcome = execNow(ctx, argv, name, wakers);
      holdSignals(false);
      if (outcome !== "woken") return outcome === "busy";
    }
    log.debug("not re-executing with the runtime's idle settings: the event loop kept being woken, or a thread kept the signals unblocked");
    return false;
  } catch (err) {
    holdSignals(false);
    log.warn("re-exec with the runtime's idle settings failed; carrying on without them", { error: errorText(err) });
    return false;
  }
}

/** Synchronous from the last check to execve: returns only when the exec did not happen. */
function execNow(ctx: RestContext, argv: string[], name: string, wakers: number[]): Outcome {
  const rest = ctx.server.restState();
  if (typeof rest === "string") return rest === "stopping" ? "stopping" : "busy";
  if ((ctx.metrics?.connections ?? 0) > 0) return "busy";
  // Our own wake-up is 1; more means a signal (or other work) was queued since.
  if (takeWakeups(wakers) > 1) return wake(wakers);
  const sockets: HandedSocket[] = [...rest.sockets];
  if (ctx.metrics) sockets.push({ fd: ctx.metrics.fd, kind: "metrics" });
  const failed = (call: string, rc: number, memfd = -1): Outcome => {
    restore(sockets, memfd);
    ctx.log.warn("re-exec with the runtime's idle settings failed; carrying on without them", { call, error: errnoName(rc) });
    return "failed";
  };
  const memfd = libc.memfdCreate("epoll-echo-handover");
  if (memfd < 0) return failed("memfd_create", memfd);
  const bytes = encodeHandover({
    sockets,
    udpScanned: rest.udpScanned,
    stats: rest.stats.save(performance.now()),
    execAt: performance.timeOrigin + performance.now(),
    name,
  });
  for (let done = 0; done < bytes.length; ) {
    const n = libc.write(memfd, bytes.subarray(done));
    if (n <= 0) return failed("write", n, memfd);
    done += n;
  }
  for (const s of sockets) {
    const rc = libc.setCloseOnExec(s.fd, false);
    if (rc < 0) return failed("fcntl", rc, memfd);
  }
  const exec = libc.prepareExecve("/proc/self/exe", argv, execEnvironment(process.env, memfd));
  // Every thread blocks the signals: from here one stays pending over the exec (see the top of this file).
  if (threadsNotHolding().length > 0) {
    restore(sockets, memfd);
    return "woken";
  }
  if (ctx.log.debugOn) ctx.log.debug("at rest: re-executing with the runtime's idle settings", { sockets: sockets.length });
  // The last look: anything Bun's handler queued before its thread blocked them.
  if (takeWakeups(wakers) > 0) {
    restore(sockets, memfd);
    return wake(wakers);
  }
  return failed("execve", exec(), memfd);
}

/** Why the new process could not read its token or TLS pair now, or null. */
async function filesObstacle(ctx: RestContext): Promise<string | null> {
  const { config, credentialsDirectory } = ctx;
  try {
    if (credentialsDirectory !== undefined || config.shutdownTokenFile !== null) {
      (await import("./token.ts")).loadShutdownToken({ credentialsDirectory, tokenFile: config.shutdownTokenFile });
    }
    if (config.tls) await (await import("./tls-credentials.ts")).loadTlsCredentials(config.tls, credentialsDirectory);
    return null;
  } catch (err) {
    return errorText(err);
  }
}

/** The descriptors go back to close-on-exec, the hand-over memfd is closed. */
function restore(sockets: HandedSocket[], memfd: number): void {
  for (const s of sockets) libc.setCloseOnExec(s.fd, true);
  if (memfd >= 0) libc.close(memfd);
}

/** Why /proc/self/exe cannot be executed again as this same program, or null. */
function exeObstacle(): string | null {
  try {
    const target = nodeFs().readlinkSync("/proc/self/exe");
    // Bun finds its embedded program by the executable's path: a replaced file would start another one.
    return target.endsWith(" (deleted)") ? `the executable ${target}` : null;
  } catch (err) {
    return `/proc/self/exe: ${errorText(err)}`;
  }
}

/** The command line exactly as this process was started (argv[1] in process.argv is the bundle's path, not the user's word). */
function commandLine(): string[] {
  const raw = nodeFs().readFileSync("/proc/self/cmdline", "utf8");
  return raw.split("\0").slice(0, -1);
}

/** The threads that blocked the held signals before holdSignals(true) asked the others to: they keep them blocked. */
let holdingBefore = new Set<number>();

/**
 * Block the held signals on the main thread and ask every other thread that
 * does not block them all yet to do the same; or undo that (a thread that
 * blocked them before, like the allocator's, keeps them blocked; one started
 * meanwhile, which inherited the main thread's mask, is let go too).
 */
function holdSignals(block: boolean): void {
  libc.blockSignals(HELD_SIGNALS, block);
  if (block) {
    const asked = threadsNotHolding();
    holdingBefore = new Set(otherThreads().filter((tid) => !asked.includes(tid)));
    libc.setThreadMasks(asked, HELD_SIGNALS, true);
  } else {
    libc.setThreadMasks(otherThreads().filter((tid) => !holdingBefore.has(tid)), HELD_SIGNALS, false);
  }
}

/** This process's threads but the main one (which has just blocked them itself). */
function otherThreads(): number[] {
  return nodeFs()
    .readdirSync("/proc/self/task")
    .map(Number)
    .filter((tid) => tid !== process.pid);
}

/** The threads whose mask (SigBlk in /proc) does not block all of the held signals yet. */
function threadsNotHolding(): number[] {
  const fs = nodeFs();
  const held = libc.signalBits(HELD_SIGNALS);
  return otherThreads().filter((tid) => {
    try {
      const blocked = /^SigBlk:\s*([0-9a-f]+)$/m.exec(fs.readFileSync(`/proc/self/task/${tid}/status`, "latin1"));
      return blocked === null || (BigInt(`0x${blocked[1]}`) & held) !== held;
    } catch {
      return false; // gone meanwhile
    }
  });
}

/** Why other threads' signal masks cannot be set (bun:ffi's cc failed), or null. */
function masksObstacle(): string | null {
  try {
    libc.compileThreadMasks();
    return null;
  } catch (err) {
    return `cannot block signals in the runtime's threads: ${errorText(err)}`;
  }
}

/** The event loop's eventfds (Bun's wake-up: signal handlers and other threads write them). */
function eventfds(): number[] {
  const fs = nodeFs();
  const out: number[] = [];
  for (const name of fs.readdirSync("/proc/self/fd")) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${name}`) === "anon_inode:[eventfd]") out.push(Number(name));
    } catch {
      // closed meanwhile (the readdir's own descriptor)
    }
  }
  return out;
}

/** Read (and so reset) the eventfds' counters: the wake-ups since the last read. */
function takeWakeups(fds: number[]): number {
  let total = 0;
  for (const fd of fds) {
    if (libc.readableNow([fd]) <= 0) continue;
    const count = new BigUint64Array(1);
    if (libc.readFd(fd, new Uint8Array(count.buffer)) === 8) total += Number(count[0]!);
  }
  return total;
}

/** Wake the event loop (one count on each eventfd). */
function wake(fds: number[]): "woken" {
  const one = new Uint8Array(new BigUint64Array([1n]).buffer);
  for (const fd of fds) libc.write(fd, one);
  return "woken";
}

/**
 * The hand-over this process was re-executed with, removed from the
 * environment; null when there is none; a string saying why it is unusable
 * (the process cannot know its sockets then: a startup failure).
 */
export function takeHandover(env: Record<string, string | undefined>): Handover | null | string {
  const value = env[HANDOVER_VARIABLE];
  if (value === undefined) return null;
  libc.blankEnvironmentEntry(HANDOVER_VARIABLE);
  delete env[HANDOVER_VARIABLE];
  const fd = handoverFd(value);
  if (fd === null) return `${HANDOVER_VARIABLE}=${JSON.stringify(value)} is not a descriptor`;
  const bytes = libc.readWhole(fd);
  libc.close(fd);
  if (typeof bytes === "number") return `cannot read the hand-over (fd ${fd}): ${errnoName(bytes)}`;
  try {
    const handover = decodeHandover(bytes);
    libc.setThreadName(handover.name); // the process's name, not "exe"
    return handover;
  } catch (err) {
    return `hand-over (fd ${fd}): ${errorText(err)}`;
  }
}

/** In the new process, once its signal handlers are in: the one log line, and the signals held back over the exec let through. */
export function resumed(handover: Handover, log: Logger): void {
  const execMs = Math.round((performance.timeOrigin + performance.now() - handover.execAt) * 10) / 10;
  log.info(`re-executed with the runtime's idle settings (${settingsText()})`, { exec_ms: execMs, sockets: handover.sockets.length });
  libc.blockSignals(HELD_SIGNALS, false);
}
