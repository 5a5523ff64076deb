// The FROM-scratch case: the compiled binary in a root file system holding
// nothing but itself, the libraries `ldd` lists and the dynamic loader. The
// root is entered with `unshare --mount --root=DIR --mount-proc` (chroot plus
// a private /proc mount): Bun aborts at start without /proc, and every
// container runtime mounts one, so the root gets an empty /proc directory as
// mount point and nothing else. The test then echoes through the daemon over
// loopback (the chroot shares the host's network namespace).
//
// Skipped (with the reason printed) when not root, when unshare or ldd is
// missing, or when ./epoll-echo has not been built.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { startDaemon, type Daemon } from "../support/daemon.ts";
import { TcpClient, udpRequest } from "../support/net.ts";
import { ROOT, run, skipReason } from "./helpers.ts";

const BINARY = join(ROOT, "epoll-echo");
const reason = skipReason(["unshare", "ldd"]) ?? (existsSync(BINARY) ? null : "./epoll-echo not built (bun run build)");
if (reason) console.log(`test/deb/minimal-root.test.ts: skipped: ${reason}`);

/** Absolute paths of the shared objects ldd lists, the loader included (not the vDSO). */
function lddPaths(binary: string): string[] {
  const r = run(["ldd", binary]);
  if (r.code !== 0) throw new Error(`ldd ${binary}: ${r.stderr}`);
  const paths: string[] = [];
  for (const line of r.stdout.split("\n")) {
    const m = /=>\s+(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(0x/.exec(line);
    if (m) paths.push(m[1]!);
  }
  return paths;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true })
    .map(String)
    .filter((f) => statSync(join(dir, f)).isFile())
    .map((f) => "/" + f)
    .sort();
}

describe.skipIf(reason !== null)("minimal root: binary + ldd libraries only", () => {
  let root = "";
  let libs: string[] = [];
  let daemon: Daemon | null = null;
  const enter = () => ["unshare", "--mount", `--root=${root}`, "--mount-proc", "/epoll-echo"];

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), "epoll-echo-root."));
    copyFileSync(BINARY, join(root, "epoll-echo"));
    libs = lddPaths(BINARY);
    for (const lib of libs) {
      mkdirSync(join(root, dirname(lib)), { recursive: true });
      copyFileSync(lib, join(root, lib)); // follows symlinks: the real file under the listed name
    }
    mkdirSync(join(root, "proc"));
  });

  afterAll(async () => {
    if (daemon) await daemon.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test("the root holds only the binary, libc's libraries and the loader", () => {
    expect(libs.some((l) => /\/ld-linux-x86-64\.so\.2$/.test(l))).toBe(true);
    expect(libs.some((l) => /\/libc\.so\.6$/.test(l))).toBe(true);
    // Only glibc's own objects: no libstdc++, libgcc_s, libssl, libz...
    for (const l of libs) expect(relative("/", l)).toMatch(/(^|\/)(ld-linux-x86-64|libc|libm|libdl|libpthread|librt)\.so\.\d+$/);
    expect(filesUnder(root)).toEqual(["/epoll-echo", ...libs].sort());
    console.log(`test/deb: minimal root = epoll-echo + ${libs.join(", ")}`);
  });

  test("--version inside the root", () => {
    const r = run([...enter(), "--version"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^epoll-echo \d+\.\d+\.\d+/);
    expect(r.code).toBe(0);
  });

  test("serves from inside the root: TCP and UDP echo over loopback, clean exit on SIGTERM", async () => {
    daemon = await startDaemon(["--port", "0"], { command: enter() });
    const line = Buffer.from("from a scratch root \xff\x00!\n", "latin1");
    const c = await TcpClient.connect(daemon.tcpPort);
    try {
      c.send(line);
      expect((await c.read(line.length)).equals(line)).toBe(true);
    } finally {
      c.close();
    }
    const datagram = Buffer.from("udp \x00\x01\x02 scratch", "latin1");
    expect((await udpRequest(daemon.udpPort, datagram)).equals(datagram)).toBe(true);
    expect(await daemon.stop()).toBe(0);
    daemon = null;
    // unshare --mount: the /proc mount lived in a private namespace only.
    expect(run(["grep", "-c", root, "/proc/mounts"]).stdout.trim()).toBe("0");
  }, 30_000);
});
