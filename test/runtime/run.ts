// The runtime suite, `bun run test:runtime`: epoll-echo where users run it.
//   1. builds what the tests install: the amd64 and arm64 .deb (the project's
//      scripts, lintian included), a second amd64 .deb with a higher version
//      (upgrade test) and the OCI image (`bun run image`)
//   2. bun test test/runtime/*.runtime.ts: the .deb under a booted systemd
//      (systemd-nspawn), four instances of epoll-echo@.service on one port
//      there, and the image under podman
//   3. the TCP, UDP and lifecycle end-to-end files again, against the arm64
//      binary taken out of the arm64 .deb, under qemu-aarch64
// A part whose tools are missing is skipped with the reason printed. Each
// `bun test` prints its own " N pass" / " N fail" lines; the exit status is
// non-zero if a build or any test failed. Heavy: run it under the machine's
// CPU lock where there is one.
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ROOT, run, skipReason } from "../deb/helpers.ts";
import { buildDeb, buildUpgradeDeb, VERSION } from "./support/builds.ts";

const QEMU = ["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu"];
const ARM64_E2E = ["tcp-protocol", "udp-protocol", "lifecycle"].map((f) => `./test/e2e/${f}.test.ts`);
/** Emulated startup is ~1.7 s instead of ~10 ms: scale the harness's waits. */
const ARM64_TIME_SCALE = "5";

const t0 = performance.now();
const figures: string[] = [];
const cleanup: string[] = [];
let failed = false;
const step = (what: string, seconds: number) => figures.push(`${what.padEnd(44)} ${seconds.toFixed(1)} s`);

function bunTest(files: string[], env: Record<string, string>): Promise<number> {
  return Bun.spawn([process.execPath, "test", "--timeout", "180000", ...files], {
    cwd: ROOT,
    stdin: "ignore",
    stdout: "inherit",
    stderr: "inherit",
    env: { ...process.env, ...env },
  }).exited;
}

/** Run a build; on failure print why and go on without its result. */
async function build<T>(what: string, f: () => Promise<T & { seconds: number }>): Promise<T | null> {
  console.log(`runtime: ${what} ...`);
  try {
    const r = await f();
    step(what, r.seconds);
    return r;
  } catch (err) {
    console.error(`runtime: ${what} FAILED: ${(err as Error).message}`);
    failed = true;
    return null;
  }
}

const b = run(["bash", "scripts/build.sh"]);
if (b.code !== 0) {
  console.error(b.stderr);
  process.exit(1);
}

const debReason = skipReason(["dpkg-buildpackage", "dpkg-deb"]);
const env: Record<string, string> = {};
let arm64Bin = "";
if (debReason) {
  console.log(`runtime: no packages built: ${debReason}`);
} else {
  const amd64 = await build("bun run deb (amd64)", () => buildDeb("amd64"));
  if (amd64) env.EPOLL_ECHO_DEB = amd64.path;
  const upgrade = await build("second .deb, higher version (no lintian)", buildUpgradeDeb);
  if (upgrade) {
    env.EPOLL_ECHO_DEB_UPGRADE = upgrade.path;
    env.EPOLL_ECHO_DEB_UPGRADE_VERSION = upgrade.version;
    cleanup.push(join(upgrade.path, "..", ".."));
  }
  const arm64 = await build("bun run deb:arm64", () => buildDeb("arm64"));
  if (arm64) {
    const dir = mkdtempSync("/var/tmp/epoll-echo-arm64.");
    cleanup.push(dir);
    const x = run(["dpkg-deb", "-x", arm64.path, dir]);
    if (x.code === 0) arm64Bin = join(dir, "usr", "bin", "epoll-echo");
    else {
      console.error(`runtime: dpkg-deb -x ${arm64.path}: ${x.stderr}`);
      failed = true;
    }
  }
}

const imageReason = skipReason(["podman", "runc"]);
if (imageReason) console.log(`runtime: no image built: ${imageReason}`);
else {
  const image = await build("bun run image", async () => {
    const s = performance.now();
    const r = run(["bash", "scripts/image/build.sh"]);
    if (r.code !== 0) throw new Error(r.stderr.slice(-3000));
    return { seconds: (performance.now() - s) / 1000 };
  });
  if (image) env.EPOLL_ECHO_IMAGE = `localhost/epoll-echo:${VERSION}`;
}

let s = performance.now();
if ((await bunTest(["./test/runtime/systemd.runtime.ts", "./test/runtime/instances.runtime.ts", "./test/runtime/image.runtime.ts"], env)) !== 0) failed = true;
step("bun test: systemd, instances, image", (performance.now() - s) / 1000);

const qemuReason = skipReason(["qemu-aarch64"]) ?? (run(["test", "-d", QEMU[2]!]).code === 0 ? null : `${QEMU[2]} missing (apt-get install libc6-arm64-cross)`);
if (qemuReason || !arm64Bin) {
  console.log(`runtime: arm64 end-to-end tests skipped: ${qemuReason ?? "no arm64 package"}`);
} else {
  console.log(`\nruntime: ${ARM64_E2E.join(" ")} against ${arm64Bin} under ${QEMU.join(" ")} (emulated)`);
  s = performance.now();
  const code = await bunTest(ARM64_E2E, { EPOLL_ECHO_BIN: arm64Bin, EPOLL_ECHO_LAUNCHER: QEMU.join(" "), EPOLL_ECHO_TIME_SCALE: ARM64_TIME_SCALE });
  if (code !== 0) failed = true;
  step("bun test: arm64 e2e under qemu-aarch64", (performance.now() - s) / 1000);
}

for (const d of cleanup) rmSync(d, { recursive: true, force: true });
console.log(`\nruntime suite: ${((performance.now() - t0) / 1000).toFixed(0)} s in all${failed ? ", FAILED" : ""}`);
for (const f of figures) console.log(`  ${f}`);
process.exit(failed ? 1 : 0);
