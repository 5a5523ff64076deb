// --listen: TCP and UDP bound on exactly the given addresses; a bad literal is
// a usage error, an address this host does not have a one-line startup error.
import { expect, test } from "bun:test";
import * as net from "node:net";
import { BINARY, runBinary, startDaemon, type Daemon } from "../support/daemon.ts";
import { createTestNetns, exchangeInNetns, type TestNetns } from "../support/netns.ts";
import { TcpClient, udpRequest } from "../support/net.ts";

const tcpRefused = (port: number, host: string) =>
  new Promise<string>((resolve) => {
    const s = net.connect({ port, host });
    s.once("connect", () => {
      s.destroy();
      resolve("connected");
    });
    s.once("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });

async function echoes(tcpPort: number, udpPort: number, host: string): Promise<void> {
  const c = await TcpClient.connect(tcpPort, host);
  c.send("hi\n");
  expect((await c.read(3)).toString()).toBe("hi\n");
  c.close();
  expect((await udpRequest(udpPort, "u", host)).toString()).toBe("u");
}

test("--listen 127.0.0.1: served there, not on ::1", async () => {
  const d = await startDaemon(["--port", "0", "--listen", "127.0.0.1"]);
  try {
    await echoes(d.tcpPort, d.udpPort, "127.0.0.1");
    expect(await tcpRefused(d.tcpPort, "::1")).toBe("ECONNREFUSED");
    await expect(udpRequest(d.udpPort, "u", "::1", 300)).rejects.toThrow();
    expect(d.stderr()).toMatch(/starting.* listen=127\.0\.0\.1 /);
    expect(d.stderr()).toMatch(/UDP addresses: 127\.0\.0\.1 port=/);
  } finally {
    expect(await d.stop()).toBe(0);
  }
});

test("--listen twice: both addresses, one port per protocol", async () => {
  const d = await startDaemon(["--port", "0", "--listen", "[::1]", "--listen", "127.0.0.1"]);
  try {
    for (const host of ["127.0.0.1", "::1"]) await echoes(d.tcpPort, d.udpPort, host);
  } finally {
    expect(await d.stop()).toBe(0);
  }
});

test("--listen 0.0.0.0: every IPv4 address, no IPv6", async () => {
  const d = await startDaemon(["--port", "0", "--listen", "0.0.0.0"]);
  try {
    await echoes(d.tcpPort, d.udpPort, "127.0.0.1");
    expect(await tcpRefused(d.tcpPort, "::1")).toBe("ECONNREFUSED");
    const udp = (await d.waitForLog(/UDP addresses: ([^\n]*?) \(others on the wildcard 0\.0\.0\.0\)/))[1]!;
    expect(udp.split(", ")).toContain("127.0.0.1");
    expect(udp).not.toContain(":");
  } finally {
    expect(await d.stop()).toBe(0);
  }
});

test("an address this host does not have: one line naming it, exit 1", () => {
  const r = runBinary(["--port", "0", "--listen", "198.51.100.7"]);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/ERROR\s+cannot listen on TCP 198\.51\.100\.7 port 0: address not available on this host \(EADDRNOTAVAIL\)\n$/);
  expect(r.stderr).not.toContain("    at ");
});

test("a bad literal is a usage error, exit 2", () => {
  for (const bad of ["localhost", "127.0.0.256", "[127.0.0.1]", "::1:12345x"]) {
    const r = runBinary(["--listen", bad]);
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toBe(`epoll-echo: --listen: expected an IPv4 or IPv6 address, got ${JSON.stringify(bad)}`);
  }
});

/** Network namespaces need root and iproute2 (createTestNetns says why when it cannot). */
const noNetns = process.getuid?.() !== 0 || !Bun.which("ip");

test.skipIf(noNetns)("--listen with a zone (fe80::77%lo, by interface name): TCP and UDP echo there", async () => {
  const ns = createTestNetns() as TestNetns;
  const ip = (...args: string[]) => expect(Bun.spawnSync(["ip", "-n", ns.name, ...args]).exitCode).toBe(0);
  let d: Daemon | null = null;
  try {
    ip("addr", "add", "fe80::77/64", "dev", "lo", "nodad");
    d = await startDaemon(["--port", "0", "--listen", "fe80::77%lo"], { command: [...ns.exec, BINARY] });
    expect(d.stderr()).toMatch(/starting.* listen=fe80::77%lo /);
    expect(exchangeInNetns(ns, "tcp", "fe80::77%lo", d.tcpPort, "zoned\n").toString()).toBe("zoned\n");
    expect(exchangeInNetns(ns, "udp", "fe80::77%lo", d.udpPort, "zoned").toString()).toBe("zoned");
  } finally {
    if (d) expect(await d.stop()).toBe(0);
    ns.remove();
  }
});

test("a zone naming no interface: one line naming it, exit 1", () => {
  const r = runBinary(["--port", "0", "--listen", "fe80::77%nosuch0"]);
  expect(r.code).toBe(1);
  expect(r.stderr).toMatch(/ERROR\s+cannot listen on fe80::77%nosuch0: no interface nosuch0\n$/);
});
