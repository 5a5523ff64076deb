// Runs slash commands for both transports against the live server: supplies
// the clock, the /stats figures and the token to the pure command module, and
// counts and logs the outcome.
import { runCommand, type CommandOutcome, type Transport } from "./commands.ts";
import type { Logger, Fields } from "./log.ts";
import type { Stats } from "./stats.ts";

export class CommandRunner {
  constructor(
    private readonly stats: Stats,
    private readonly log: Logger,
    private readonly token: Uint8Array | null,
  ) {}

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
      this.log.warn("shutdown refused", { reason: outcome.rejected, proto: transport, ...who });
    } else if (outcome.shutdown) {
      this.log.info("shutdown requested", { proto: transport, ...who });
    } else if (this.log.debugOn) {
      this.log.debug("command", { name: outcome.name, proto: transport, ...who });
    }
    return outcome;
  }
}
