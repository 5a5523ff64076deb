// SIGHUP, the conventional "reload" (systemctl reload sends it through the
// units' ExecReload=). It never ends the process: whatever can be reloaded
// registers a handler here, the handlers run in turn, and one that fails is
// logged without stopping the others or the server.
import type { Logger } from "./log.ts";

export type ReloadHandler = () => void | Promise<void>;

export class ReloadSignal {
  private readonly handlers: { what: string; run: ReloadHandler }[] = [];
  /** The reload in progress; a SIGHUP during it queues one more run. */
  private running: Promise<void> | null = null;
  private again = false;

  constructor(private readonly log: Logger) {
    process.on("SIGHUP", () => void this.reload());
  }

  /** Run `run` on every SIGHUP from now on; `what` names it in the log. */
  add(what: string, run: ReloadHandler): void {
    this.handlers.push({ what, run });
  }

  /** What a SIGHUP does: run every handler once (after the one in progress, if any). */
  reload(): Promise<void> {
    if (this.running !== null) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.runAll();
      } while (this.again);
      this.running = null;
    })();
    return this.running;
  }

  private async runAll(): Promise<void> {
    if (this.handlers.length === 0) {
      this.log.info("SIGHUP received: nothing to reload");
      return;
    }
    this.log.info("SIGHUP received: reloading", { what: this.handlers.map((h) => h.what).join(",") });
    for (const { what, run } of this.handlers) {
      try {
        await run();
      } catch (err) {
        this.log.error(`reloading ${what} failed`, { error: err instanceof Error ? err.message : String(err) });
      }
    }
  }
}
