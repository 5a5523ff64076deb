// Is a descriptor a terminal? Asked through libc's isatty instead of
// process.stderr.isTTY: touching process.stderr builds Node's stream
// machinery, which costs the daemon's startup several milliseconds.
import { libc } from "./libc-on-demand.ts";

export function fdIsTerminal(fd: number): boolean {
  return libc().isatty(fd);
}
