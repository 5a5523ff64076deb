// Helpers shared by the packaging tests: a machine-wide lock (the .deb tests
// install into this machine and must not overlap with another run of
// themselves), command runners and the skip decision.
import { join } from "node:path";
import type { Subprocess } from "bun";

export const ROOT = join(import.meta.dir, "..", "..");

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command to completion; never throws for a non-zero exit. */
export function run(cmd: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Run {
  const r = Bun.spawnSync(cmd, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env } as Record<string, string>,
    stdin: "ignore",
  });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Like run(), async, for long commands (the package build) so timers keep running. */
export async function runAsync(cmd: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Run> {
  const p = Bun.spawn(cmd, {
    cwd: opts.cwd ?? ROOT,
    env: { ...process.env, ...opts.env } as Record<string, string>,
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/** Why these tests cannot run here, or null when they can. */
export function skipReason(tools: string[]): string | null {
  if (process.platform !== "linux") return "not Linux";
  if (process.getuid?.() !== 0) return "not root (installs into the machine / chroots)";
  for (const t of tools) if (!Bun.which(t)) return `${t} not found`;
  return null;
}

/**
 * Hold an flock(1) lock until release() (or until this process dies: the
 * holder reads our pipe and exits on EOF, so a crashed run never leaves the
 * lock taken).
 */
export async function lockMachine(name: string, timeoutSec = 900): Promise<{ release(): Promise<void> }> {
  const path = `/run/lock/${name}.lock`;
  const holder: Subprocess<"pipe", "pipe", "inherit"> = Bun.spawn(
    ["flock", "-w", String(timeoutSec), path, "sh", "-c", "echo locked; read _"],
    { stdin: "pipe", stdout: "pipe", stderr: "inherit" },
  );
  const reader = holder.stdout.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  if (!value || !new TextDecoder().decode(value).startsWith("locked")) {
    holder.kill();
    throw new Error(`could not take ${path} within ${timeoutSec} s`);
  }
  return {
    async release() {
      holder.stdin.end();
      await holder.exited;
    },
  };
}
