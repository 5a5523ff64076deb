// The artefacts the runtime tests install: the .deb of this checkout (per
// architecture), a second .deb with a higher version (for the upgrade test),
// and the OCI image. Each build is the project's own script.
import { cpSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, runAsync } from "../../deb/helpers.ts";

export const VERSION: string = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;

async function script(cmd: string[], cwd = ROOT, env?: Record<string, string>): Promise<number> {
  const t0 = performance.now();
  const r = await runAsync(cmd, { cwd, env });
  if (r.code !== 0) throw new Error(`${cmd.join(" ")} failed (${r.code}):\n${r.stdout}\n${r.stderr.slice(-4000)}`);
  return (performance.now() - t0) / 1000;
}

/** `bash scripts/deb/build.sh ARCH` (lintian included); the package's path and the seconds it took. */
export async function buildDeb(arch: "amd64" | "arm64"): Promise<{ path: string; seconds: number }> {
  const seconds = await script(["bash", "scripts/deb/build.sh", arch]);
  return { path: join(ROOT, "dist", `epoll-echo_${VERSION}_${arch}.deb`), seconds };
}

/**
 * The same sources built as version VERSION+upgrade1 (package.json,
 * debian/changelog and the man page bumped in a copy of the tree), so an
 * upgrade installs a binary that says a different version.
 */
export async function buildUpgradeDeb(): Promise<{ path: string; version: string; seconds: number }> {
  const version = `${VERSION}+upgrade1`;
  const tree = mkdtempSync("/var/tmp/epoll-echo-upgrade.");
  for (const f of ["src", "scripts", "debian", "package.json", "bun.lock", "tsconfig.json", "bunfig.toml"]) cpSync(join(ROOT, f), join(tree, f), { recursive: true });
  symlinkSync(join(ROOT, "node_modules"), join(tree, "node_modules"));
  const edit = (f: string, change: (s: string) => string) => writeFileSync(join(tree, f), change(readFileSync(join(tree, f), "utf8")));
  edit("package.json", (s) => s.replace(`"version": "${VERSION}"`, `"version": "${version}"`));
  edit("debian/epoll-echo.1", (s) => s.replace(`"epoll-echo ${VERSION}"`, `"epoll-echo ${version}"`));
  edit("debian/changelog", (s) => {
    const trailer = s.split("\n").find((l) => l.startsWith(" -- "))!;
    return `epoll-echo (${version}) unstable; urgency=medium\n\n  * Test build for the upgrade test.\n\n${trailer}\n\n${s}`;
  });
  const seconds = await script(["bash", "scripts/deb/build.sh", "amd64"], tree, { EPOLL_ECHO_DEB_SKIP_LINTIAN: "1" });
  return { path: join(tree, "dist", `epoll-echo_${version}_amd64.deb`), version, seconds };
}
