// Readiness and watchdog, the sd_notify(3) contract: when NOTIFY_SOCKET names
// an AF_UNIX datagram socket (a path, or "@name" for the abstract namespace),
// send READY=1 (with a STATUS= line) once both protocols listen, a fresh
// STATUS= at most every few seconds when the figures may have changed (the
// server says when: no polling while idle), STOPPING=1 when a stop
// begins, and WATCHDOG=1 every WATCHDOG_USEC/2 when WATCHDOG_USEC is set and
// WATCHDOG_PID is unset or ours. Datagrams leave this process through libc
// (socket/sendto, non-blocking) so systemd sees our own pid as the sender:
// never via systemd-notify. A failed send is logged once and never stops the
// daemon; the timers are unref'd and cleared when the stop begins.
import { errnoName } from "../core/error-text.ts";
import * as libc from "../sys/libc.ts";
import type { Logger } from "../sys/log.ts";
import type { Env } from "./socket-activation.ts";

/** How soon after a change STATUS= is refreshed, at most once per interval (only sent when the text changed). */
export const STATUS_INTERVAL_MS = 2000;

const SUN_PATH_MAX = 108;
const SUN_PATH_OFFSET = 2;

export class NotifyAddressError extends Error {}

/**
 * Pure: the sockaddr_un bytes for a NOTIFY_SOCKET value, with the length
 * sd_notify uses: family + path + NUL for a path, family + NUL + name (no
 * trailing NUL: abstract names are length-exact) for "@name".
 */
export function encodeNotifyAddress(value: string): Uint8Array {
  const abstract = value.startsWith("@");
  if (!abstract && !value.startsWith("/")) {
    throw new NotifyAddressError(`NOTIFY_SOCKET=${JSON.stringify(value)}: neither an absolute path nor an @abstract name`);
  }
  const name = new TextEncoder().encode(abstract ? value.slice(1) : value);
  const pathBytes = name.length + 1; // the trailing NUL of a path, the leading NUL of an abstract name
  if (pathBytes > SUN_PATH_MAX || (abstract && name.length === 0)) {
    throw new NotifyAddressError(`NOTIFY_SOCKET=${JSON.stringify(value)}: ${name.length === 0 ? "empty name" : "too long for sockaddr_un"}`);
  }
  const addr = new Uint8Array(SUN_PATH_OFFSET + pathBytes);
  addr.set(new Uint8Array(new Uint16Array([libc.AF_UNIX]).buffer), 0); // sun_family, host byte order
  addr.set(name, abstract ? SUN_PATH_OFFSET + 1 : SUN_PATH_OFFSET); // zero-filled: NUL before or after
  return addr;
}

export type WatchdogPlan = { kind: "off"; why?: string } | { kind: "on"; intervalMs: number } | { kind: "invalid"; why: string };

/** Pure: whether and how often to send WATCHDOG=1 (half the timeout, as sd_watchdog_enabled(3) advises). */
export function watchdogPlan(env: Env, pid: number): WatchdogPlan {
  const usec = env.WATCHDOG_USEC;
  if (usec === undefined) return { kind: "off" };
  if (!/^[0-9]+$/.test(usec) || Number(usec) === 0) return { kind: "invalid", why: `WATCHDOG_USEC=${JSON.stringify(usec)} is not a positive number` };
  const owner = env.WATCHDOG_PID;
  if (owner !== undefined && owner !== "" && owner !== String(pid)) return { kind: "off", why: `WATCHDOG_PID=${owner} is another process` };
  return { kind: "on", intervalMs: Math.max(1, Math.floor(Number(usec) / 2000)) };
}

export interface StatusFigures {
  /** The --instance name (the hostname by default). */
  instance: string;
  tcpClients: number;
  udpPeers: number;
  lines: number;
  datagrams: number;
}

/** Pure: the one-line STATUS= text shown by `systemctl status`. */
export function statusLine(f: StatusFigures): string {
  return `${f.instance}: ${f.tcpClients} TCP clients, ${f.udpPeers} UDP peers, ${f.lines} lines and ${f.datagrams} datagrams echoed`;
}

/** The server counters the status line is made of (a Stats satisfies it). */
export interface StatusSource {
  tcpConnected: number;
  tcpLines: number;
  udpDatagrams: number;
  udpPeers: { active(nowMs: number): number };
}

export class Notifier {
  private fd = -1;
  private failed = false;
  private timers: ReturnType<typeof setInterval>[] = [];
  private lastStatus = "";
  private status: (() => string) | null = null;
  private refresh: ReturnType<typeof setTimeout> | null = null;

  private constructor(
    private readonly addr: Uint8Array,
    private readonly watchdog: WatchdogPlan,
    private readonly log: Logger,
  ) {}

  /** A notifier when NOTIFY_SOCKET is set and usable, otherwise null (with a warning when it was set but unusable). */
  static fromEnv(env: Env, pid: number, log: Logger): Notifier | null {
    const value = env.NOTIFY_SOCKET;
    if (value === undefined || value === "") return null;
    let addr: Uint8Array;
    try {
      addr = encodeNotifyAddress(value);
    } catch (err) {
      log.warn(`sd_notify disabled: ${(err as Error).message}`);
      return null;
    }
    const watchdog = watchdogPlan(env, pid);
    if (watchdog.kind === "invalid") log.warn(`watchdog disabled: ${watchdog.why}`);
    else if (watchdog.kind === "off" && watchdog.why) log.debug(`watchdog disabled: ${watchdog.why}`);
    return new Notifier(addr, watchdog, log);
  }

  /** Both protocols listen: READY=1 with the first STATUS=, then the periodic messages. */
  ready(source: StatusSource, instance: string): void {
    const status = () =>
      statusLine({
        instance,
        tcpClients: source.tcpConnected,
        udpPeers: source.udpPeers.active(performance.now()),
        lines: source.tcpLines,
        datagrams: source.udpDatagrams,
      });
    this.lastStatus = status();
    this.status = status;
    this.send(`READY=1\nSTATUS=${this.lastStatus}`);
    if (this.watchdog.kind === "on") {
      this.log.debug("watchdog on", { interval_ms: this.watchdog.intervalMs });
      this.every(this.watchdog.intervalMs, () => this.send("WATCHDOG=1"));
    }
  }

  /** The figures may have changed: refresh STATUS= within STATUS_INTERVAL_MS (one timer, however many calls). */
  figuresChanged(): void {
    if (this.refresh !== null || this.status === null) return;
    this.refresh = setTimeout(() => {
      this.refresh = null;
      const text = this.status?.();
      if (text !== undefined && text !== this.lastStatus && this.send(`STATUS=${text}`)) this.lastStatus = text;
    }, STATUS_INTERVAL_MS);
    this.refresh.unref();
  }

  /** A stop began: tell systemd, and stop the periodic messages. */
  stopping(reason: string): void {
    this.clearTimers();
    this.send(`STOPPING=1\nSTATUS=stopping (${reason})`);
  }

  close(): void {
    this.clearTimers();
    if (this.fd >= 0) libc.close(this.fd);
    this.fd = -1;
  }

  /** One datagram; false (logged the first time only) when it could not be sent. */
  send(state: string): boolean {
    if (this.fd < 0) {
      const fd = libc.socket(libc.AF_UNIX, libc.SOCK_DGRAM | libc.SOCK_CLOEXEC | libc.SOCK_NONBLOCK);
      if (fd < 0) return this.failure("socket", fd);
      this.fd = fd;
    }
    const rc = libc.sendto(this.fd, new TextEncoder().encode(state), this.addr);
    if (rc < 0) return this.failure("sendto", rc);
    if (this.log.traceOn) this.log.trace("sd_notify", { state: state.replace(/\n/g, " ") });
    return true;
  }

  private failure(call: string, rc: number): false {
    const fields = { call, error: errnoName(rc) };
    if (!this.failed) this.log.warn("sd_notify failed (further failures logged at debug level)", fields);
    else this.log.debug("sd_notify failed", fields);
    this.failed = true;
    return false;
  }

  private every(ms: number, fn: () => void): void {
    const t = setInterval(fn, ms);
    t.unref();
    this.timers.push(t);
  }

  private clearTimers(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.refresh !== null) clearTimeout(this.refresh);
    this.refresh = null;
    this.status = null;
  }
}
