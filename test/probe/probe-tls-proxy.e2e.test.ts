// The probe's --tls (--ca, --insecure) and --proxy v1|v2 against the compiled
// server: a TLS listener and a PROXY-enabled one, every mode.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, type Daemon } from "../support/daemon.ts";
import { probe } from "../support/probe.ts";
import { makeCert, type TestCert } from "../support/tls.ts";

const dir = mkdtempSync(join(tmpdir(), "epoll-echo-probe-tls-"));
let cert: TestCert;
let other: TestCert;
let d: Daemon;
let tlsPort: number;
beforeAll(async () => {
  cert = makeCert(dir, "server", 0x77);
  other = makeCert(dir, "other", 0x78);
  // Headers expected from loopback: the probe's --proxy header names its own real addresses.
  d = await startDaemon(["--port", "0", "--proxy-protocol-from", "127.0.0.0/8,::1", "--tls-port", "0", "--tls-cert", cert.certFile, "--tls-key", cert.keyFile]);
  tlsPort = Number((await d.waitForLog(/listening \(.*\) tls_port=(\d+)/))[1]);
});
afterAll(async () => {
  expect(await d.stop()).toBe(0);
  rmSync(dir, { recursive: true, force: true });
});

describe("--tls", () => {
  test("ping, command and load over TLS, the certificate verified with --ca (the name is checked)", async () => {
    let r = await probe([`localhost:${tlsPort}`, "--tls", "--ca", cert.certFile, "--proxy", "v2", "--count", "3", "--interval", "0"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/3 sent, 3 received, 0 lost, 0 mismatched/);
    expect(r.stdout).toMatch(new RegExp(`^PROBE localhost:${tlsPort} \\(\\S+\\) tls: 3 lines of 64 bytes\n`));
    expect(r.stdout).toContain(`--- localhost:${tlsPort} tls probe ---`);
    r = await probe([`localhost:${tlsPort}`, "--tls", "--ca", cert.certFile, "--proxy", "v1", "--command", "/whoami"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^(127\.0\.0\.1|::1) [1-9][0-9]*\n$/);
    r = await probe([`127.0.0.1:${tlsPort}`, "--tls", "--insecure", "--proxy", "v2", "--load", "--connections", "2", "--pipeline", "8", "--duration", "0.5", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ mode: "load", proto: "tls", lost: 0, mismatched: 0, ok: true });
  });

  test("a certificate the CA does not vouch for, or a name it is not for: exit 2, one line", async () => {
    for (const args of [[`localhost:${tlsPort}`, "--ca", other.certFile], [`127.0.0.1:${tlsPort}`, "--ca", cert.certFile]]) {
      const r = await probe([...args, "--tls", "--proxy", "v1", "--command", "/instance"]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^epoll-echo probe: cannot connect to .*: TLS: .+\n$/);
    }
    const r = await probe([`localhost:${tlsPort}`, "--tls", "--ca", join(dir, "missing.pem"), "--command", "/instance"]);
    expect(r).toMatchObject({ code: 2, stdout: "" });
    expect(r.stderr).toContain("--ca ");
    expect(r.stderr).toContain("no such file");
  });
});

describe("--proxy", () => {
  test.each(["v1", "v2"])("%s: /whoami names the probe's own address and port; lines echo after the header", async (v) => {
    for (const host of ["127.0.0.1", "[::1]"]) {
      const r = await probe([`${host}:${d.tcpPort}`, "--proxy", v, "--command", "/whoami"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^${host.replace(/[[\]]/g, "").replace(/\./g, "\\.")} [1-9][0-9]*\\n$`));
    }
    const r = await probe([`127.0.0.1:${d.tcpPort}`, "--proxy", v, "--count", "2", "--interval", "0"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/2 sent, 2 received, 0 lost, 0 mismatched/);
  });

  test("without --proxy the PROXY-enabled server closes the probe's connection", async () => {
    const r = await probe([`127.0.0.1:${d.tcpPort}`, "--command", "/whoami", "--timeout", "5000"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("connection closed by the server");
  });
});
