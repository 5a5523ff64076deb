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
// Signals. SIGTERM, SIGINT and SIGHUP are blocked on the main thread before
// the exec: the mask survives execve, a signal sent meanwhile stays pending,
// and the new process unblocks them once its handlers are in (resumed()).
// But the runtime's helper threads (JITWorker, HeapHelper) do not block
// them, and Bun's handler, on whatever thread it runs, queues the signal for
// the JavaScript thread and writes the event loop's eventfd: a signal taken
// that way just before the exec would be lost with the old image. So after
// blocking, the loop is given a turn (anything queued before is handled: a
// stop cancels the exec), and the eventfd's counter, which Bun 1.4.5 never
// reads back, is checked right before execve: any write since means
// something was queued, and the exec waits for another round.
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
    const obstacle = exeObstacle() ?? (await filesObstacle(ctx));
    if (obstacle !== null) {
      log.debug(`not re-executing with the runtime's idle settings: ${obstacle}`);
      return false;
    }
    const argv = commandLine();
    const name = nodeFs().readFileSync("/proc/self/comm", "latin1").trim();
    const wakers = eventfds();
    for (let round = 0; round < MAX_ROUNDS; round++) {
      libc.blockSignals(HELD_SIGNALS, true);
      takeWakeups(wakers);
      wake(wakers); // what was queued before still gets its turn
      await Bun.sleep(TURN_MS);
      const outcome = execNow(ctx, argv, name, wakers);
      libc.blockSignals(HELD_SIGNALS, false);
      if (outcome !== "woken") return outcome === "busy";
    }
    log.debug("not re-executing with the runtime's idle settings: the event loop kept being woken");
    return false;
  } catch (err) {
    libc.blockSignals(HELD_SIGNALS, false);
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
  if (ctx.log.debugOn) ctx.log.debug("at rest: re-executing with the runtime's idle settings", { sockets: sockets.length });
  // The last look: a signal queued from here on would be lost with this image (see the top of this file).
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
