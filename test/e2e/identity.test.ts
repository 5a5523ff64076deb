// /whoami and /instance on the compiled binary, over TCP and UDP on both
// stacks, and where the instance name shows up (startup log line).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as dgram from "node:dgram";
import { runBinary, startDaemon, type Daemon } from "../support/daemon.ts";
import { TcpClient, bytes } from "../support/net.ts";

let named: Daemon;
beforeAll(async () => {
  named = await startDaemon(["--port", "0", "--instance", "edge-7"]);
});
afterAll(async () => {
  expect(await named.stop()).toBe(0);
});

/** A UDP request from a socket whose own port we know, so /whoami can be checked exactly. */
async function udpFrom(host: string, port: number, payload: string): Promise<{ reply: string; localPort: number }> {
  const sock = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  try {
    await new Promise<void>((resolve) => sock.bind(0, host, resolve));
    const localPort = sock.address().port;
    const reply = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no UDP reply within 2000 ms")), 2000);
      sock.once("message", (msg) => {
        clearTimeout(timer);
        resolve(msg.toString("latin1"));
      });
      sock.send(bytes(payload), port, host);
    });
    return { reply, localPort };
  } finally {
    sock.close();
  }
}

describe.each(["127.0.0.1", "::1"])("over %s", (host) => {
  test("TCP /whoami is the client's address and port, /instance the name", async () => {
    const c = await TcpClient.connect(named.tcpPort, host);
    try {
      const reply = `${host} ${c.socket.localPort}\n`;
      c.send("/whoami\n/instance\r\n/whoami extra\n");
      expect((await c.read(reply.length * 2 + "edge-7\n".length)).toString("latin1")).toBe(reply + "edge-7\n" + reply);
    } finally {
      c.close();
    }
  });

  test("UDP /whoami and /instance, with LF, CRLF or nothing after them", async () => {
    for (const suffix of ["", "\n", "\r\n"]) {
      const who = await udpFrom(host, named.udpPort, "/whoami" + suffix);
      expect(who.reply).toBe(`${host} ${who.localPort}\n`);
      expect((await udpFrom(host, named.udpPort, "/instance" + suffix)).reply).toBe("edge-7\n");
    }
  });
});

test("the startup log line carries the instance name", () => {
  expect(named.stderr()).toMatch(/epoll-echo \S+ starting.*instance=edge-7/);
});

test("without --instance the name is the hostname", async () => {
  const host = (await Bun.file("/proc/sys/kernel/hostname").text()).trim();
  const d = await startDaemon(["--port", "0"]);
  try {
    const c = await TcpClient.connect(d.tcpPort);
    c.send("/instance\n");
    expect((await c.read(host.length + 1)).toString("latin1")).toBe(host + "\n");
    c.close();
  } finally {
    expect(await d.stop()).toBe(0);
  }
});

test("a bad --instance is a one-line usage error, exit 2", () => {
  for (const bad of ["", "two words", "x".repeat(65)]) {
    const r = runBinary(["--instance", bad, "--port", "0"]);
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toMatch(/^epoll-echo: --instance: expected 1 to 64 printable ASCII characters without spaces/);
  }
});
