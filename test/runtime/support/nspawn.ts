// Boot a real Debian 12 with systemd under systemd-nspawn and run commands in
// it: the runtime tests' machine. Reusable by any test that needs a booted
// systemd (units, templates, socket activation, journald).
//
//   const m = await bootDebian();            // own root, own network (lo only)
//   await m.exec(["systemctl", "is-active", "epoll-echo"]);
//   await m.inNetwork([BINARY, "probe", "127.0.0.1"]);   // host binary, container's network
//   await m.poweroff();
//
// The root file system comes from a cached tarball (debian-rootfs.sh:
// debootstrap once, ~45 s); every boot unpacks a fresh copy (~2 s), so
// machines never share state. The host's PID 1 need not be systemd:
// --register=no --keep-unit keep nspawn away from a host systemd.
import { chmodSync, mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Subprocess } from "bun";
import { runAsync, skipReason, type Run } from "../../deb/helpers.ts";

const ROOTFS_SCRIPT = join(import.meta.dir, "debian-rootfs.sh");
/** A clean environment for commands inside the machine. */
const INSIDE_ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8", SYSTEMD_PAGER: "", SYSTEMD_COLORS: "0" };

/** Why a machine cannot be booted here, or null when it can. */
export function nspawnSkipReason(): string | null {
  return skipReason(["systemd-nspawn", "nsenter", "tar", "flock"]) ?? (Bun.which("debootstrap") ? null : "debootstrap not found (apt-get install debootstrap)");
}

export interface Machine {
  /** The container's root directory on the host (write files into it directly). */
  root: string;
  /** PID of the container's systemd, as the host sees it. */
  pid: number;
  /** Seconds from spawning nspawn to `systemctl is-system-running` answering. */
  bootSeconds: number;
  /** Run a command inside the machine (all its namespaces, its file system). Never throws for a non-zero exit. */
  exec(cmd: string[], opts?: { timeoutMs?: number }): Promise<Run>;
  /** Like exec, but throws with the output unless the exit status is 0; returns stdout. */
  ok(cmd: string[], opts?: { timeoutMs?: number }): Promise<string>;
  /** Run a host command in the machine's network namespace only (host file system and binaries). */
  inNetwork(cmd: string[], opts?: { timeoutMs?: number; env?: Record<string, string> }): Promise<Run>;
  /** Spawn a host command in the machine's network namespace and leave it running. */
  spawnInNetwork(cmd: string[]): Subprocess<"ignore", "pipe", "pipe">;
  /** Write a file inside the machine (parents created). */
  writeFile(path: string, content: string | Uint8Array, mode?: number): void;
  readFile(path: string): string;
  /** `systemctl show -p NAME --value UNIT`. */
  prop(unit: string, name: string): Promise<string>;
  /** Stop the machine (a clean poweroff; nspawn is killed if that hangs) and delete its root. */
  poweroff(): Promise<void>;
}

/** Unpack the cached Debian root and boot it. `privateNetwork` (default true) gives it its own loopback only. */
export async function bootDebian(opts: { name?: string; privateNetwork?: boolean; bootTimeoutMs?: number } = {}): Promise<Machine> {
  const made = await runAsync(["bash", ROOTFS_SCRIPT]);
  if (made.code !== 0) throw new Error(`debian-rootfs.sh failed:\n${made.stderr}`);
  const tarball = made.stdout.trim();
  const root = mkdtempSync("/var/tmp/epoll-echo-machine.");
  const untar = await runAsync(["tar", "-C", root, "--numeric-owner", "-xf", tarball]);
  if (untar.code !== 0) {
    rmSync(root, { recursive: true, force: true });
    throw new Error(`tar -x ${tarball}: ${untar.stderr}`);
  }
  // It becomes "/": mkdtemp's 0700 would lock every non-root user (dbus) out.
  chmodSync(root, 0o755);
  const name = opts.name ?? `epoll-echo-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
  const t0 = performance.now();
  const args = ["systemd-nspawn", "-D", root, "-M", name, "-b", "--console=passive", "--register=no", "--keep-unit"];
  if (opts.privateNetwork ?? true) args.push("--private-network");
  const nspawn = Bun.spawn(args, { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  let console_ = "";
  const drain = async (s: ReadableStream<Uint8Array>) => {
    const d = new TextDecoder();
    for await (const c of s) console_ = (console_ + d.decode(c, { stream: true })).slice(-20_000);
  };
  void drain(nspawn.stdout);
  void drain(nspawn.stderr);

  const kill = async () => {
    nspawn.kill("SIGKILL");
    await nspawn.exited;
    rmSync(root, { recursive: true, force: true });
  };
  const deadline = Date.now() + (opts.bootTimeoutMs ?? 60_000);
  let pid = 0;
  try {
    // The container's init is nspawn's child once it has exec'd systemd.
    while (pid === 0) {
      if (nspawn.exitCode !== null) throw new Error(`systemd-nspawn exited ${nspawn.exitCode}:\n${console_}`);
      if (Date.now() > deadline) throw new Error(`no systemd under systemd-nspawn:\n${console_}`);
      pid = childRunning(nspawn.pid, "systemd");
      if (pid === 0) await Bun.sleep(20);
    }
    // nsenter forks the command into the machine's PID namespace, where killing
    // nsenter would not reach it: `timeout` inside bounds it (runFor then gives up 2 s later).
    const nsenter = (cmd: string[], ms: number) => [
      "nsenter", "-t", String(pid), "-a",
      "env", "-i", ...Object.entries(INSIDE_ENV).map(([k, v]) => `${k}=${v}`),
      "timeout", "-k", "1", String(Math.ceil(ms / 1000)), ...cmd,
    ];
    const inside = (cmd: string[], ms: number) => runFor(nsenter(cmd, ms), ms + 2000);
    // `--wait` blocks until the boot finishes: "running", or "degraded" if some unit failed.
    for (;;) {
      const r = await inside(["systemctl", "is-system-running", "--wait"], Math.max(1000, deadline - Date.now()));
      const state = r?.stdout.trim();
      if (state === "running" || state === "degraded") break;
      if (Date.now() > deadline || nspawn.exitCode !== null) throw new Error(`machine did not boot (state ${state ?? "timeout"}):\n${console_}`);
      await Bun.sleep(100);
    }
    const bootSeconds = (performance.now() - t0) / 1000;

    const exec = async (cmd: string[], o: { timeoutMs?: number } = {}): Promise<Run> => {
      const r = await inside(cmd, o.timeoutMs ?? 60_000);
      if (!r) throw new Error(`timed out inside the machine: ${cmd.join(" ")}`);
      return r;
    };
    const machine: Machine = {
      root,
      pid,
      bootSeconds,
      exec,
      async ok(cmd, o) {
        const r = await exec(cmd, o);
        if (r.code !== 0) throw new Error(`inside the machine: ${cmd.join(" ")} exited ${r.code}\n${r.stdout}${r.stderr}`);
        return r.stdout;
      },
      async inNetwork(cmd, o = {}) {
        const r = await runFor(["nsenter", "-t", String(pid), "-n", ...cmd], o.timeoutMs ?? 60_000, o.env);
        if (!r) throw new Error(`timed out in the machine's network: ${cmd.join(" ")}`);
        return r;
      },
      spawnInNetwork(cmd) {
        return Bun.spawn(["nsenter", "-t", String(pid), "-n", ...cmd], { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      },
      writeFile(path, content, mode = 0o644) {
        const p = join(root, path);
        mkdirSync(dirname(p), { recursive: true });
        writeFileSync(p, content, { mode });
      },
      readFile: (path) => readFileSync(join(root, path), "utf8"),
      async prop(unit, name) {
        return (await exec(["systemctl", "show", "-p", name, "--value", unit])).stdout.trim();
      },
      async poweroff() {
        // SIGTERM makes nspawn ask the machine's systemd to power off (SIGRTMIN+3).
        nspawn.kill("SIGTERM");
        if ((await withTimeout(nspawn.exited, 30_000)) === null) nspawn.kill("SIGKILL");
        await nspawn.exited;
        rmSync(root, { recursive: true, force: true });
      },
    };
    return machine;
  } catch (err) {
    await kill();
    throw err;
  }
}

/** PID of a child of `parent` whose command name is `comm`, or 0. */
function childRunning(parent: number, comm: string): number {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${parent}/task`);
  } catch {
    return 0;
  }
  for (const t of tasks) {
    let children: string[] = [];
    try {
      children = readFileSync(`/proc/${parent}/task/${t}/children`, "utf8").split(" ").filter(Boolean);
    } catch {
      continue;
    }
    for (const c of children) {
      try {
        if (readFileSync(`/proc/${c}/comm`, "utf8").trim() === comm) return Number(c);
      } catch {
        // gone meanwhile
      }
    }
  }
  return 0;
}

/**
 * Run a command to completion; after ms, kill it (by its PID) and return null
 * without waiting for its output (a child it forked may still hold the pipes).
 */
export async function runFor(cmd: string[], ms: number, env?: Record<string, string>): Promise<Run | null> {
  const p = Bun.spawn(cmd, { stdin: "ignore", stdout: "pipe", stderr: "pipe", env: { ...process.env, ...env } as Record<string, string> });
  const done = Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const r = await withTimeout(done, ms);
  if (r === null) {
    p.kill("SIGKILL");
    return null;
  }
  const [stdout, stderr, code] = r;
  return { code, stdout, stderr };
}

/** The promise's value, or null if it takes longer than ms. */
export async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | null> {
  let timer: Timer | undefined;
  const timeout = new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), ms)));
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
