// The OCI image under a real container engine (podman with runc), run the way
// a careful operator would: read-only root, no capabilities, no new
// privileges, TCP and UDP published on a free loopback port. Checks the
// image's metadata, the archive `bun run image` wrote, echo from the host
// over both protocols, the HEALTHCHECK, the readiness line in `podman logs`
// and a clean `podman stop`.
//
// Run by test/runtime/run.ts (`bun run test:runtime`), which builds the image
// (`bun run image`) and passes its name in EPOLL_ECHO_IMAGE.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { BINARY, ROOT } from "../support/daemon.ts";
import { probe } from "../support/probe.ts";
import { run, runAsync, skipReason } from "../deb/helpers.ts";
import { VERSION } from "./support/builds.ts";

const IMAGE = process.env.EPOLL_ECHO_IMAGE ?? "";
const ARCHIVE = join(ROOT, "dist", "epoll-echo-image.tar");
/** crun refuses this machine's hybrid cgroups; the file events backend needs no systemd. */
const PODMAN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs", "--events-backend=file"];
const reason = skipReason(["podman", "runc"]) ?? (IMAGE ? null : "EPOLL_ECHO_IMAGE not set (run through test/runtime/run.ts)");
if (reason) console.log(`test/runtime/image.runtime.ts: skipped: ${reason}`);

const name = `epoll-echo-test-${process.pid}`;
const seen: Record<string, string | number> = {};
const podman = (args: string[]) => run([...PODMAN, ...args]);

/** A port free for both TCP and UDP on 127.0.0.1 right now. */
async function freePort(): Promise<number> {
  for (;;) {
    const l = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    const port = l.port;
    l.stop(true);
    try {
      const u = await Bun.udpSocket({ hostname: "127.0.0.1", port });
      u.close();
      return port;
    } catch {
      // taken for UDP: try another
    }
  }
}

describe.skipIf(reason !== null)("the OCI image under podman (runc)", () => {
  afterAll(() => {
    podman(["rm", "-f", "-t", "0", name]);
    console.log("\nwhat podman showed:");
    for (const [k, v] of Object.entries(seen)) console.log(`  ${k.padEnd(40)} ${v}`);
  });

  test("metadata: scratch-sized, numeric non-root user, ports, stop signal, healthcheck, OCI labels", () => {
    const r = podman(["image", "inspect", IMAGE]);
    expect(r.code).toBe(0);
    const [img] = JSON.parse(r.stdout) as [{ Size: number; Config: Record<string, any>; Healthcheck: { Test: string[] }; RepoTags: string[] }];
    const c = img.Config;
    expect(c.User).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    expect(Object.keys(c.ExposedPorts).sort()).toEqual(["12345/tcp", "12345/udp"]);
    expect(c.StopSignal).toBe("SIGTERM");
    expect(c.Entrypoint).toEqual(["/usr/bin/epoll-echo"]);
    expect(img.Healthcheck.Test.slice(0, 3)).toEqual(["CMD", "/usr/bin/epoll-echo", "probe"]);
    expect(c.Labels["org.opencontainers.image.version"]).toBe(VERSION);
    expect(c.Labels["org.opencontainers.image.licenses"]).toBe("MIT");
    expect(c.Labels["org.opencontainers.image.source"]).toBeTruthy();
    expect(img.RepoTags).toEqual(expect.arrayContaining([`localhost/epoll-echo:${VERSION}`, "localhost/epoll-echo:latest"]));
    seen["image size"] = `${img.Size} bytes (${(img.Size / 1e6).toFixed(1)} MB)`;
    seen["user / ports"] = `${c.User} / ${Object.keys(c.ExposedPorts).join(" ")}`;
  });

  test("dist/epoll-echo-image.tar is a docker-archive podman loads, healthcheck included", () => {
    expect(existsSync(ARCHIVE)).toBe(true);
    const tar = run(["tar", "-xOf", ARCHIVE, "manifest.json"]);
    expect(tar.code).toBe(0);
    const manifest = JSON.parse(tar.stdout) as { RepoTags: string[] }[];
    expect(manifest.flatMap((e) => e.RepoTags)).toEqual(expect.arrayContaining([`localhost/epoll-echo:${VERSION}`, "localhost/epoll-echo:latest"]));
    const load = podman(["load", "-i", ARCHIVE]);
    expect(load.code).toBe(0);
    expect(load.stdout).toContain(`localhost/epoll-echo:${VERSION}`);
    const hc = podman(["image", "inspect", "--format", "{{json .Config.Healthcheck.Test}}", `localhost/epoll-echo:${VERSION}`]);
    expect(hc.stdout).toContain("probe");
    seen["archive"] = `${(Bun.file(ARCHIVE).size / 1e6).toFixed(1)} MB, tags ${manifest.flatMap((e) => e.RepoTags).join(" ")}`;
  });

  test("hardened run: echo over published TCP and UDP, healthcheck, readiness in logs, podman stop exit 0", async () => {
    const port = await freePort();
    const hard = Number(run(["sh", "-c", "ulimit -Hn"]).stdout.trim()) || 4096;
    const nofile = Math.min(4096, hard);
    const t0 = performance.now();
    const started = podman([
      "run", "-d", "--name", name,
      "--read-only", "--cap-drop=ALL", "--security-opt", "no-new-privileges",
      // podman's defaults exceed this machine's hard limits (EPERM): stay within them
      "--ulimit", `nofile=${nofile}:${nofile}`, "--ulimit", "nproc=4096:4096",
      "-p", `127.0.0.1:${port}:12345/tcp`, "-p", `127.0.0.1:${port}:12345/udp`,
      IMAGE,
    ]);
    expect(started.code).toBe(0);
    // Time from `podman run` to the first echo: the probe, once, until it gets its line back.
    let first = await probe([`127.0.0.1:${port}`, "--count", "1", "--timeout", "300"]);
    while (first.code !== 0 && performance.now() - t0 < 20_000) {
      await Bun.sleep(20);
      first = await probe([`127.0.0.1:${port}`, "--count", "1", "--timeout", "300"]);
    }
    expect(first.code).toBe(0);
    seen["podman run -> first TCP echo"] = `${Math.round(performance.now() - t0)} ms`;

    const tcp = await probe([`127.0.0.1:${port}`, "--count", "5", "--interval", "20", "--json"]);
    const udp = await probe([`127.0.0.1:${port}`, "--udp", "--count", "5", "--interval", "20", "--json"]);
    expect(tcp.code).toBe(0);
    expect(udp.code).toBe(0);
    const [t, u] = [JSON.parse(tcp.stdout), JSON.parse(udp.stdout)];
    expect([t.received, u.received]).toEqual([5, 5]);
    seen["probe from host TCP / UDP rtt avg"] = `${t.rtt_ms.avg} ms / ${u.rtt_ms.avg} ms (5 of 5 each)`;

    const hc0 = performance.now();
    const hc = podman(["healthcheck", "run", name]);
    expect(hc.code).toBe(0);
    seen["podman healthcheck run"] = `exit 0 in ${Math.round(performance.now() - hc0)} ms`;

    const logs = podman(["logs", name]);
    expect(logs.stdout + logs.stderr).toMatch(/INFO\s+listening \(TCP port=12345, UDP port=12345\)/);

    expect(podman(["inspect", "--format", "{{.HostConfig.ReadonlyRootfs}}", name]).stdout.trim()).toBe("true");
    // The running process: the image's user, no effective capabilities.
    const top = podman(["top", name, "huser", "capeff"]);
    expect(top.code).toBe(0);
    const [, row] = top.stdout.trim().split("\n");
    expect(row!.trim().split(/\s+/).slice(0, 2)).toEqual(["65532", "none"]);
    seen["podman top: uid, capeff"] = row!.trim().split(/\s+/).slice(0, 2).join(", ");

    const s0 = performance.now();
    const stop = await runAsync([...PODMAN, "stop", "-t", "10", name]);
    const stopMs = performance.now() - s0;
    expect(stop.code).toBe(0);
    expect(podman(["inspect", "--format", "{{.State.ExitCode}}", name]).stdout.trim()).toBe("0");
    expect(stopMs).toBeLessThan(5000);
    seen["podman stop -t 10"] = `exit code 0 after ${Math.round(stopMs)} ms`;
    const after = podman(["logs", name]);
    expect(after.stdout + after.stderr).toMatch(/stopping reason=SIGTERM/);
  }, 60_000);
});
