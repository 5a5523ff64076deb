// Is stderr connected to the journal? systemd sets JOURNAL_STREAM="dev:ino" of
// the stream it hands the service; only a match with stderr's own fstat counts
// (a child that inherited the variable but writes elsewhere must not use it).
import { nodeFs } from "./node-fs.ts";

export function stderrIsJournal(env: Record<string, string | undefined>, fd = 2): boolean {
  const value = env.JOURNAL_STREAM;
  if (!value) return false;
  const m = /^(\d+):(\d+)$/.exec(value);
  if (!m) return false;
  try {
    const st = nodeFs().fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}
