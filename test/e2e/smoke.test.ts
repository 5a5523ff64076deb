import { afterAll, beforeAll, expect, test } from "bun:test";
import { startDaemon, type Daemon } from "../support/daemon.ts";
import { TcpClient, udpRequest } from "../support/net.ts";

let d: Daemon;
beforeAll(async () => {
  d = await startDaemon(["--port", "0"]);
});
afterAll(async () => {
  expect(await d.stop()).toBe(0);
});

test("tcp and udp echo on both stacks", async () => {
  for (const host of ["127.0.0.1", "::1"]) {
    const c = await TcpClient.connect(d.tcpPort, host);
    c.send("a\r\nb\n");
    expect((await c.read(5)).toString("latin1")).toBe("a\r\nb\n");
    c.close();
    expect((await udpRequest(d.udpPort, "hi", host)).toString("latin1")).toBe("hi");
  }
});
