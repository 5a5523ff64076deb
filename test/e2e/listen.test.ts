// --listen: TCP and UDP bound on exactly the given addresses; a bad literal is
// a usage error, an address this host does not have a one-line startup error.
import { expect, test } from "bun:test";
import * as net from "node:net";
import { runBinary, startDaemon } from "../support/daemon.ts";
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
    const udp = d.stderr().match(/UDP addresses: ([^\n]*?) port=/)![1]!;
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
