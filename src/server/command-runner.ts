// Runs slash commands for both transports against the live server: supplies
// the clock, the /stats figures and the token to the pure command module, and
// counts and logs the outcome.
import { runCommand, type CommandOutcome, type Transport } from "../core/commands.ts";
import type { Logger, Fields } from "../sys/log.ts";
import type { Stats } from "../core/stats.ts";

/** Refused /shutdown attempts logged per window; the rest are counted and summed up in one line. */
export const REFUSAL_LOG_BURST = 10;
export const REFUSAL_LOG_WINDOW_MS = 10_000;

export class CommandRunner {
  private windowStart = -Infinity;
  private loggedInWindow = 0;
  private suppressed = 0;
  private suppressedBy: Record<string, number> = {};

  constructor(
    private readonly stats: Stats,
    private readonly log: Logger,
    private readonly token: Uint8Array | null,
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

  run(transport: Transport, peerIsLoopback: boolean, buf: Uint8Array, start: number, end: number, who: Fields): CommandOutcome {
    const stats = this.stats;
    const outcome = runCommand(buf, start, end, {
      transport,
      peerIsLoopback,
      token: this.token,
      now: () => new Date(),
      stats: () => stats.snapshot(performance.now()),
    });
    stats.commands[outcome.name]++;
    if (outcome.rejected) {
      stats.shutdownRejected[outcome.rejected] = (stats.shutdownRejected[outcome.rejected] ?? 0) + 1;
      this.warnRefusal("shutdown refused", { reason: outcome.rejected, proto: transport, ...who }, outcome.rejected);
    } else if (outcome.shutdown) {
      this.log.info("shutdown requested", { proto: transport, ...who });
    } else if (this.log.debugOn) {
      this.log.debug("command", { name: outcome.name, proto: transport, ...who });
    }
    return outcome;
  }
}
