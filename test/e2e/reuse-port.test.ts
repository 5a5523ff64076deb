// --reuse-port: several instances share the TCP and UDP ports and the kernel
// spreads clients over them (counted with /instance); a UDP peer stays with
// one instance; without the flag a second instance still fails at once.
import { afterAll, beforeAll, expect, test } from "bun:test";
import * as dgram from "node:dgram";
import { runBinary, startDaemon, type Daemon } from "../support/daemon.ts";
import { TcpClient, bytes } from "../support/net.ts";

const CLIENTS = 40;
let a: Daemon;
let b: Daemon;
let ports: string[];
beforeAll(async () => {
  a = await startDaemon(["--port", "0", "--reuse-port", "--instance", "inst-a"]);
  ports = ["--tcp-port", String(a.tcpPort), "--udp-port", String(a.udpPort)];
  b = await startDaemon([...ports, "--reuse-port", "--instance", "inst-b"]);
  // Until b's per-address sockets join a's, a's 127.0.0.1 socket (more specific than b's wildcard) gets every datagram.
  await Promise.all([a.waitForLog(/UDP addresses: /), b.waitForLog(/UDP addresses: /)]);
});
afterAll(async () => {
  expect(await a.stop()).toBe(0);
  expect(await b.stop()).toBe(0);
});

async function tcpInstance(): Promise<string> {
  const c = await TcpClient.connect(a.tcpPort);
  try {
    c.send("/instance\n");
    return (await c.read(7)).toString("latin1");
  } finally {
    c.close();
  }
}

/** `count` /instance requests from one UDP socket (one peer); the replies. */
async function udpInstances(count: number): Promise<string[]> {
  const sock = dgram.createSocket("udp4");
  const replies: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${replies.length} of ${count} UDP replies`)), 3000);
      sock.on("message", (msg) => {
        replies.push(msg.toString("latin1"));
        if (replies.length === count) {
          clearTimeout(timer);
          resolve();
        }
      });
      for (let i = 0; i < count; i++) sock.send(bytes("/instance"), a.udpPort, "127.0.0.1");
    });
  } finally {
    sock.close();
  }
  return replies;
}

const tally = (names: string[]) => names.reduce<Record<string, number>>((t, n) => ((t[n] = (t[n] ?? 0) + 1), t), {});

test(`TCP: ${CLIENTS} connections are spread over both instances`, async () => {
  const names = await Promise.all(Array.from({ length: CLIENTS }, tcpInstance));
  const t = tally(names);
  expect(Object.keys(t).sort()).toEqual(["inst-a\n", "inst-b\n"]);
});

test(`UDP: ${CLIENTS} peers are spread over both instances, each peer stays with one`, async () => {
  const perPeer = await Promise.all(Array.from({ length: CLIENTS }, () => udpInstances(5)));
  for (const replies of perPeer) expect(new Set(replies).size).toBe(1);
  const t = tally(perPeer.map((r) => r[0]!));
  expect(Object.keys(t).sort()).toEqual(["inst-a\n", "inst-b\n"]);
});

test("without --reuse-port a third instance fails at once: address in use", () => {
  const r = runBinary([...ports]);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(`cannot listen on TCP port ${a.tcpPort}: address already in use (EADDRINUSE)`);
  const udpOnly = runBinary(["--tcp-port", "0", "--udp-port", String(a.udpPort)]);
  expect(udpOnly.code).toBe(1);
  expect(udpOnly.stderr).toMatch(new RegExp(`cannot listen on UDP port ${a.udpPort}: address already in use \\(EADDRINUSE\\)`));
});
