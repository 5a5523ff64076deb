// Runs slash commands for both transports against the live server: supplies
// the clock, the /stats figures, the token and the instance name to the pure
// command module, and counts and logs the outcome. The one place that keeps
// account of refused /shutdown attempts: the counters, the rate-limited
// warnings, and the limit after which a TCP connection is closed.
import { runCommand, type CommandOutcome, type Transport } from "../core/commands.ts";
import type { Logger, Fields } from "../sys/log.ts";
import type { Stats } from "../core/stats.ts";

/** Refused /shutdown attempts logged per window; the rest are counted and summed up in one line. */
export const REFUSAL_LOG_BURST = 10;
export const REFUSAL_LOG_WINDOW_MS = 10_000;
/** Refused /shutdown attempts after which a connection is closed (its last reply delivered). */
export const MAX_SHUTDOWN_REFUSALS = 5;

/** Whoever sent a command line: a TCP connection, or the source of one datagram. */
export interface CommandSender {
  readonly transport: Transport;
  /** The real socket peer is 127.0.0.0/8, ::1 or v4-mapped loopback (never judged from a PROXY header). */
  readonly loopback: boolean;
  /** The client as /whoami reports it: the socket peer, or the address a PROXY header carried. */
  readonly clientAddress: string;
  readonly clientPort: number;
  /** Fields naming the sender in log lines. */
  logFields(): Fields;
  /**
   * Refused /shutdown attempts so far, kept by the runner. Only a sender that
   * can be closed (a TCP connection) has it; at MAX_SHUTDOWN_REFUSALS the
   * outcome says to close it.
   */
  shutdownRefusals?: number;
}

export type RunOutcome = CommandOutcome & {
  /** Too many refused /shutdown attempts: close the sender once this reply is out. */
  close?: true;
};

export class CommandRunner {
  private windowStart = -Infinity;
  private loggedInWindow = 0;
  private suppressed = 0;
  private suppressedBy: Record<string, number> = {};

  constructor(
    private readonly stats: Stats,
    private readonly log: Logger,
    private readonly token: Uint8Array | null,
    /** Asked for by /instance only: the default (the hostname) costs a uname call. */
    private readonly instance: () => string,
  ) {}

  /**
   * A warning about refused /shutdown attempts, at most REFUSAL_LOG_BURST per
   * 10 s: 10,000 wrong attempts must not become 10,000 log lines. The rest are
   * counted and reported in one line when the window ends.
   */
  warnRefusal(message: string, fields: Fields, reason = "connection-closed"): void {
    const now = performance.now();
    if (now - this.windowStart >= REFUSAL_LOG_WINDOW_MS) this.startWindow(now);
    if (this.loggedInWindow < REFUSAL_LOG_BURST) {
      this.loggedInWindow++;
      this.log.warn(message, fields);
      return;
    }
    this.suppressedBy[reason] = (this.suppressedBy[reason] ?? 0) + 1;
    if (this.suppressed++ === 0) {
      const left = this.windowStart + REFUSAL_LOG_WINDOW_MS - now;
      setTimeout(() => this.startWindow(performance.now()), Math.max(0, left)).unref();
    }
  }

  private startWindow(now: number): void {
    if (this.suppressed > 0) {
      const by = Object.entries(this.suppressedBy).map(([k, v]) => `${k}:${v}`).join(",");
      this.log.warn("more /shutdown refusals not logged", { count: this.suppressed, reasons: by, window_s: REFUSAL_LOG_WINDOW_MS / 1000 });
    }
    this.windowStart = now;
    this.loggedInWindow = 0;
    this.suppressed = 0;
    this.suppressedBy = {};
  }

  /** Answer one command line, buf[start, end) without its terminator. */
  run(sender: CommandSender, buf: Uint8Array, start: number, end: number): RunOutcome {
    const stats = this.stats;
    const transport = sender.transport;
    const outcome = runCommand(buf, start, end, {
      transport,
      peerIsLoopback: sender.loopback,
      clientAddress: sender.clientAddress,
      clientPort: sender.clientPort,
      instance: this.instance,
      token: this.token,
      now: () => new Date(),
      stats: () => stats.snapshot(performance.now()),
    });
    stats.commands[outcome.name]++;
    if (outcome.rejected) {
      stats.shutdownRejected[outcome.rejected] = (stats.shutdownRejected[outcome.rejected] ?? 0) + 1;
      this.warnRefusal("shutdown refused", { reason: outcome.rejected, proto: transport, ...sender.logFields() }, outcome.rejected);
      if (sender.shutdownRefusals !== undefined && ++sender.shutdownRefusals >= MAX_SHUTDOWN_REFUSALS) {
        this.warnRefusal("closing the connection after repeated /shutdown refusals", { ...sender.logFields(), refused: sender.shutdownRefusals });
        return { ...outcome, close: true };
      }
    } else if (outcome.shutdown) {
      this.log.info("shutdown requested", { proto: transport, ...sender.logFields() });
    } else if (this.log.debugOn) {
      this.log.debug("command", { name: outcome.name, proto: transport, ...sender.logFields() });
    }
    return outcome;
  }
}
