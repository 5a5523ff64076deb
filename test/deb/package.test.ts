// The Debian package, end to end on this machine: build it with
// scripts/deb/build.sh (which also runs lintian and checks the binary was not
// stripped), inspect it, install it with dpkg -i, run the installed binary and
// echo through it, check the units with systemd-analyze, then purge it.
//
// It installs into the running machine, so it needs root and runs under a
// machine-wide lock; it is skipped (with the reason printed) when not root or
// when dpkg-buildpackage/dpkg are absent. There is no running systemd here:
// what dh_installsystemd's maintainer-script snippets would do with systemctl
// is checked from the scripts' text, and what deb-systemd-helper does offline
// (the enable symlinks) from the file system.
//
// EPOLL_ECHO_DEB=path/to.deb tests that package instead of building one.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { startDaemon, type Daemon } from "../support/daemon.ts";
import { TcpClient, udpRequest } from "../support/net.ts";
import { lockMachine, ROOT, run, runAsync, skipReason } from "./helpers.ts";

const VERSION: string = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
const UNITS = ["epoll-echo.service", "epoll-echo.socket", "epoll-echo-udp.socket", "epoll-echo-activated.service", "epoll-echo@.service"];
const UNIT_DIR = "/lib/systemd/system";
/** Every file the package installs, with its mode. */
const FILES: Record<string, string> = {
  "./usr/bin/epoll-echo": "-rwxr-xr-x",
  "./etc/default/epoll-echo": "-rw-r--r--",
  "./usr/share/man/man1/epoll-echo.1.gz": "-rw-r--r--",
  "./usr/share/doc/epoll-echo/copyright": "-rw-r--r--",
  "./usr/share/doc/epoll-echo/changelog.gz": "-rw-r--r--",
  "./usr/share/lintian/overrides/epoll-echo": "-rw-r--r--",
  ...Object.fromEntries(UNITS.map((u) => [`.${UNIT_DIR}/${u}`, "-rw-r--r--"])),
};
const WANTS_SERVICE = "/etc/systemd/system/multi-user.target.wants/epoll-echo.service";
const WANTS_SOCKETS = ["epoll-echo.socket", "epoll-echo-udp.socket"].map((u) => `/etc/systemd/system/sockets.target.wants/${u}`);
/** Where `systemctl enable epoll-echo@N` puts an instance's link. */
const wantsInstance = (n: number) => `/etc/systemd/system/multi-user.target.wants/epoll-echo@${n}.service`;
const HELPER_STATE = "/var/lib/systemd/deb-systemd-helper-enabled";

const reason = skipReason(["dpkg-buildpackage", "dpkg", "dpkg-deb", "flock"]);
if (reason) console.log(`test/deb/package.test.ts: skipped: ${reason}`);

const installed = () => run(["dpkg-query", "-W", "-f", "${Status}", "epoll-echo"]).stdout.trim() === "install ok installed";
const dpkgKnows = () => run(["dpkg-query", "-W", "epoll-echo"]).code === 0;
/** pids of running processes whose executable is the installed binary. */
function installedBinaryPids(): number[] {
  const pids: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readlinkSync(`/proc/${d}/exe`).startsWith("/usr/bin/epoll-echo")) pids.push(Number(d));
    } catch {
      // gone, or a kernel thread
    }
  }
  return pids;
}

describe.skipIf(reason !== null)("Debian package", () => {
  let lock: { release(): Promise<void> } | null = null;
  let deb = "";
  let work = "";
  let ctrl = "";
  let daemon: Daemon | null = null;

  beforeAll(async () => {
    lock = await lockMachine("epoll-echo-deb-test");
    work = mkdtempSync(join(tmpdir(), "epoll-echo-deb-test."));
    if (process.env.EPOLL_ECHO_DEB) {
      deb = process.env.EPOLL_ECHO_DEB;
      console.log(`test/deb: testing ${deb} (EPOLL_ECHO_DEB), not building`);
    } else {
      const t0 = performance.now();
      const r = await runAsync(["bash", "scripts/deb/build.sh"]);
      if (r.code !== 0) throw new Error(`scripts/deb/build.sh failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
      console.log(`test/deb: built the package in ${((performance.now() - t0) / 1000).toFixed(1)} s (lintian clean, binary unstripped)`);
      deb = join(ROOT, "dist", `epoll-echo_${VERSION}_amd64.deb`);
    }
    ctrl = join(work, "DEBIAN");
    const e = run(["dpkg-deb", "-e", deb, ctrl]);
    if (e.code !== 0) throw new Error(`dpkg-deb -e: ${e.stderr}`);
    if (dpkgKnows()) {
      // Left over from an interrupted run (or installed by hand): start clean.
      console.log("test/deb: epoll-echo was already known to dpkg; purging it first");
      run(["dpkg", "-P", "epoll-echo"]);
    }
  }, 600_000);

  afterAll(async () => {
    if (daemon) await daemon.stop();
    if (dpkgKnows()) run(["dpkg", "-P", "epoll-echo"]);
    if (work) rmSync(work, { recursive: true, force: true });
    await lock?.release();
  });

  test("dpkg-deb --info: name, version from package.json, arch, computed libc dependency", () => {
    const r = run(["dpkg-deb", "--info", deb]);
    expect(r.code).toBe(0);
    const field = (name: string) => new RegExp(`^ ${name}: (.*)$`, "m").exec(r.stdout)?.[1];
    expect(field("Package")).toBe("epoll-echo");
    expect(field("Version")).toBe(VERSION);
    expect(field("Architecture")).toBe("amd64");
    expect(field("Section")).toBe("net");
    // dh_shlibdeps ran on the binary: libc6 with a version.
    expect(field("Depends")).toMatch(/^libc6 \(>= 2\.\d+\)$/);
  });

  test("dpkg-deb --contents: exactly the expected files, root-owned, with their modes", () => {
    const r = run(["dpkg-deb", "--contents", deb]);
    expect(r.code).toBe(0);
    const files: Record<string, string> = {};
    for (const line of r.stdout.trim().split("\n")) {
      const [mode, owner, , , , path] = line.split(/\s+/);
      expect(owner).toBe("root/root");
      if (!mode!.startsWith("d")) files[path!] = mode!;
    }
    expect(files).toEqual(FILES);
    // The whole compiled executable (runtime + program), not a stub. (Stripping
    // changes the size only a little: build.sh compares checksums, and the
    // --version test below would print Bun's version instead of ours.)
    const size = Number(/\s(\d+)\s+\S+\s+\S+\s+\.\/usr\/bin\/epoll-echo$/m.exec(r.stdout)?.[1]);
    expect(size).toBeGreaterThan(50 * 1024 * 1024);
  });

  test("conffiles: /etc/default/epoll-echo", () => {
    expect(readFileSync(join(ctrl, "conffiles"), "utf8")).toBe("/etc/default/epoll-echo\n");
  });

  test("maintainer scripts: the service is enabled, started and stopped; the sockets and the template are not", () => {
    const postinst = readFileSync(join(ctrl, "postinst"), "utf8");
    const prerm = readFileSync(join(ctrl, "prerm"), "utf8");
    const postrm = readFileSync(join(ctrl, "postrm"), "utf8");
    // epoll-echo.service: enabled on install, started (restarted on upgrade).
    expect(postinst).toContain("deb-systemd-helper enable 'epoll-echo.service'");
    expect(postinst).toContain("_dh_action=start");
    expect(postinst).toContain("_dh_action=restart");
    expect(postinst).toContain("deb-systemd-invoke $_dh_action 'epoll-echo.service'");
    // Socket units and the activated service: only re-enabled if the admin
    // enabled them before (the "don't enable" snippet), never started.
    for (const u of ["epoll-echo.socket", "epoll-echo-udp.socket", "epoll-echo-activated.service"]) {
      expect(postinst).toContain(`if deb-systemd-helper debian-installed '${u}'; then`);
      const unconditional = postinst
        .split("\n")
        .filter((l) => l.includes(`'${u}'`) || l.includes(` ${u}`))
        .filter((l) => /deb-systemd-invoke (start|restart|\$_dh_action)/.test(l));
      expect(unconditional).toEqual([]);
    }
    // The template: nothing enabled or started by the package.
    expect(postinst.split("\n").filter((l) => /deb-systemd-(helper|invoke) (enable|start|restart|\$_dh_action)\b.*epoll-echo@/.test(l))).toEqual([]);
    // Upgrade: the activated service is try-restarted, its sockets stay open;
    // running instances of the template are try-restarted one at a time.
    expect(postinst).toMatch(/deb-systemd-invoke try-restart epoll-echo-activated\.service\b/);
    expect(postinst).not.toMatch(/try-restart[^\n]*epoll-echo(-udp)?\.socket/);
    expect(postinst).toContain("for unit in $(systemctl list-units --plain --no-legend --state=active 'epoll-echo@*.service'");
    expect(postinst).toContain('deb-systemd-invoke try-restart "$unit"');
    // Removal stops everything, instances included; purge forgets all enable state.
    expect(prerm).toContain("deb-systemd-invoke stop 'epoll-echo.service'");
    expect(prerm).toContain("deb-systemd-invoke stop epoll-echo.socket epoll-echo-udp.socket epoll-echo-activated.service 'epoll-echo@*.service'");
    expect(postrm).toContain("deb-systemd-helper purge 'epoll-echo.service'");
    expect(postrm).toMatch(/deb-systemd-helper purge [^\n]*'epoll-echo\.socket'/);
    expect(postrm).toMatch(/if \[ "\$1" = purge \]; then\n\trm -f "\$\{DPKG_ROOT:-\}"\/etc\/systemd\/system\/\*\.wants\/epoll-echo@\*\.service\n/);
    for (const s of [postinst, prerm, postrm]) expect(s.startsWith("#!/bin/sh\nset -e\n")).toBe(true);
  });

  test("dpkg -i installs it; the postinst's start is a no-op without systemd", () => {
    const noSystemd = !existsSync("/run/systemd/system");
    const r = run(["dpkg", "-i", deb]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.code).toBe(0);
    expect(installed()).toBe(true);
    expect(run(["dpkg-query", "-W", "-f", "${Version}", "epoll-echo"]).stdout).toBe(VERSION);
    for (const path of Object.keys(FILES)) expect(existsSync(path.slice(1))).toBe(true);
    if (noSystemd) {
      // Nothing was started (so nothing holds port 12345).
      expect(installedBinaryPids()).toEqual([]);
    } else {
      console.log("test/deb: a running systemd is present: postinst really started epoll-echo.service");
    }
  }, 120_000);

  test("deb-systemd-helper enabled epoll-echo.service, not the socket units nor any instance of the template", () => {
    expect(lstatSync(WANTS_SERVICE).isSymbolicLink()).toBe(true);
    expect(readlinkSync(WANTS_SERVICE)).toBe(`${UNIT_DIR}/epoll-echo.service`);
    for (const s of WANTS_SOCKETS) expect(existsSync(s)).toBe(false);
    expect(readdirSync(dirname(WANTS_SERVICE)).filter((f) => f.startsWith("epoll-echo@"))).toEqual([]);
    expect(existsSync(`${HELPER_STATE}/epoll-echo.service.dsh-also`)).toBe(true);
  });

  test("/usr/bin/epoll-echo --version and --help", () => {
    const v = run(["/usr/bin/epoll-echo", "--version"], { cwd: work });
    expect(v.code).toBe(0);
    expect(v.stdout).toBe(`epoll-echo ${VERSION}\n`);
    const h = run(["/usr/bin/epoll-echo", "--help"], { cwd: work });
    expect(h.code).toBe(0);
    expect(h.stdout).toContain("--max-tcp");
  });

  test("the installed binary serves: TCP line and UDP datagram echoed byte-exact", async () => {
    daemon = await startDaemon(["--port", "0"], { command: ["/usr/bin/epoll-echo"], cwd: work });
    expect(daemon.tcpPort).toBeGreaterThan(0);
    expect(daemon.udpPort).toBeGreaterThan(0);

    const line = Buffer.concat([Buffer.from("hello from the .deb \x01\xff\t"), Buffer.from([0xc3, 0xa9]), Buffer.from("\r\n")]);
    const c = await TcpClient.connect(daemon.tcpPort);
    try {
      c.send(line);
      c.send("second\n");
      expect((await c.read(line.length)).equals(line)).toBe(true);
      expect((await c.read(7)).toString("latin1")).toBe("second\n");
    } finally {
      c.close();
    }

    const datagram = Buffer.from([0x00, 0x01, 0x02, 0x0a, 0x0a, 0xfe, 0x41, 0x42]);
    const reply = await udpRequest(daemon.udpPort, datagram);
    expect(reply.equals(datagram)).toBe(true);

    expect(await daemon.stop()).toBe(0);
    daemon = null;
  }, 30_000);

  test("systemd-analyze verify: every installed unit", () => {
    const withMan = Bun.which("man") !== null;
    if (!withMan) console.log("test/deb: man(1) absent: systemd-analyze verify --man=no");
    const r = run(["systemd-analyze", "verify", `--man=${withMan ? "yes" : "no"}`, ...UNITS.map((u) => `${UNIT_DIR}/${u}`)]);
    const ours = (r.stdout + r.stderr)
      .split("\n")
      .filter((l) => l.trim() !== "");
    expect(ours).toEqual([]);
    expect(r.code).toBe(0);
  }, 60_000);

  test("systemd-analyze security --offline: every service, the template too, at most 2.0 (OK)", () => {
    for (const unit of ["epoll-echo.service", "epoll-echo-activated.service", "epoll-echo@.service"]) {
      const r = run(["systemd-analyze", "security", "--offline=true", "--threshold=20", "--no-pager", `${UNIT_DIR}/${unit}`]);
      const m = /Overall exposure level for \S+: (\d+\.\d+) (\S+)/.exec(r.stdout);
      expect(m).not.toBeNull();
      console.log(`test/deb: systemd-analyze security ${unit}: exposure ${m![1]} ${m![2]}`);
      expect(Number(m![1])).toBeLessThanOrEqual(2.0);
      expect(r.code).toBe(0);
    }
  }, 60_000);

  test("dpkg -r keeps only the conffile; dpkg -P removes everything, the admin's instance links too", () => {
    // What `systemctl enable epoll-echo@3` would have left (systemctl itself
    // needs a running systemd here).
    symlinkSync(`${UNIT_DIR}/epoll-echo@.service`, wantsInstance(3));
    const r = run(["dpkg", "-r", "epoll-echo"]);
    expect(r.code).toBe(0);
    expect(existsSync("/usr/bin/epoll-echo")).toBe(false);
    for (const u of UNITS) expect(existsSync(`${UNIT_DIR}/${u}`)).toBe(false);
    expect(existsSync("/etc/default/epoll-echo")).toBe(true); // conffile: kept until purge (policy 10.7.3)

    const p = run(["dpkg", "-P", "epoll-echo"]);
    expect(p.code).toBe(0);
    expect(dpkgKnows()).toBe(false);
    for (const path of Object.keys(FILES)) expect(existsSync(path.slice(1))).toBe(false);
    expect(existsSync("/usr/share/doc/epoll-echo")).toBe(false);
    expect(existsSync(WANTS_SERVICE)).toBe(false);
    expect(lstatSync(wantsInstance(3), { throwIfNoEntry: false })).toBeUndefined();
    const state = existsSync(HELPER_STATE) ? readdirSync(HELPER_STATE, { recursive: true }).map(String) : [];
    expect(state.filter((f) => f.includes("epoll-echo"))).toEqual([]);
    expect(installedBinaryPids()).toEqual([]);
  }, 120_000);
});
