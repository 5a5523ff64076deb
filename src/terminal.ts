// Is stderr a terminal? Asked through fstat instead of process.stderr.isTTY:
// touching process.stderr builds Node's stream machinery, which costs the
// daemon's startup several milliseconds (docs/benchmarks.md).
import { fstatSync } from "node:fs";

// Linux character-device majors of terminals: 4 (tty, ttyS), 5 (/dev/tty,
// console, ptmx), 136-143 (Unix98 pseudo-terminals, /dev/pts/*).
const isTerminalMajor = (major: number) => major === 4 || major === 5 || (major >= 136 && major <= 143);

export function fdIsTerminal(fd: number): boolean {
  try {
    const st = fstatSync(fd);
    return st.isCharacterDevice() && isTerminalMajor(Math.floor(st.rdev / 256) & 0xfff);
  } catch {
    return false;
  }
}
