// The UDP protocol of the compiled binary, byte for byte, on both stacks.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import * as dgram from "node:dgram";
import { startDaemon, type Daemon } from "../support/daemon.ts";
import { udpRequest, bytes } from "../support/net.ts";

let d: Daemon;
beforeAll(async () => {
  d = await startDaemon(["--port", "0", "--max-datagram", "1000"]);
});
afterAll(async () => {
  expect(await d.stop()).toBe(0);
});

const text = async (p: Promise<Buffer>) => (await p).toString("latin1");

describe.each(["127.0.0.1", "::1"])("UDP over %s", (host) => {
  test("a datagram comes back verbatim, binary included", async () => {
    const payload = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    expect((await udpRequest(d.udpPort, payload, host)).equals(payload)).toBe(true);
  });

  test("a zero-length datagram gets a zero-length reply", async () => {
    expect((await udpRequest(d.udpPort, new Uint8Array(0), host)).length).toBe(0);
  });

  test("/time and /stats with LF, CRLF or nothing after them", async () => {
    for (const suffix of ["", "\n", "\r\n"]) {
      expect(await text(udpRequest(d.udpPort, "/time" + suffix, host))).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$/);
      expect(await text(udpRequest(d.udpPort, "/stats" + suffix, host))).toMatch(/^\d+ \d+ \d+\n$/);
    }
  });

  test("/shutdown is always refused over UDP", async () => {
    for (const p of ["/shutdown", "/shutdown token", "/shutdown\n", "/shutdown  x \r\n"]) {
      expect(await text(udpRequest(d.udpPort, p, host))).toBe("ERR shutdown-not-allowed\n");
    }
  });

  test("unknown commands", async () => {
    expect(await text(udpRequest(d.udpPort, "/what\n", host))).toBe("ERR unknown-command\n");
  });

  test("a datagram over --max-datagram is answered with an error, not echoed", async () => {
    expect(await text(udpRequest(d.udpPort, "x".repeat(1001), host))).toBe("ERR datagram-truncated\n");
    expect((await udpRequest(d.udpPort, "x".repeat(1000), host)).length).toBe(1000);
  });
});

test("the default --max-datagram is the largest payload: 65,527 bytes over IPv6, 65,507 over IPv4", async () => {
  const big = await startDaemon(["--port", "0"]);
  try {
    const v6 = Buffer.alloc(65527, 0x61);
    expect((await udpRequest(big.udpPort, v6, "::1")).equals(v6)).toBe(true);
    const v4 = Buffer.alloc(65507, 0x62);
    expect((await udpRequest(big.udpPort, v4, "127.0.0.1")).equals(v4)).toBe(true);
  } finally {
    expect(await big.stop()).toBe(0);
  }
});

test("/stats counts distinct UDP peers in udp_active and total_clients", async () => {
  const before = (await text(udpRequest(d.udpPort, "/stats"))).trim().split(" ").map(Number);
  // three new peers (each udpRequest uses a fresh source port), then ask from a fourth
  for (let i = 0; i < 3; i++) await udpRequest(d.udpPort, "hi");
  const after = (await text(udpRequest(d.udpPort, "/stats"))).trim().split(" ").map(Number);
  expect(after[0]! - before[0]!).toBe(4);
  expect(after[2]! - before[2]!).toBe(4);
});

test("no reply to a source port below 1024; --udp-allow-low-ports allows it", async () => {
  if (process.getuid?.() !== 0) {
    console.log("skipped: binding a source port below 1024 needs root");
    return;
  }
  const ask = (port: number) =>
    new Promise<Buffer | null>((resolve, reject) => {
      const s = dgram.createSocket("udp4");
      s.bind(1023, "127.0.0.1", () => {
        const t = setTimeout(() => {
          s.close();
          resolve(null);
        }, 500);
        s.once("message", (m) => {
          clearTimeout(t);
          s.close();
          resolve(m);
        });
        s.send(bytes("loop?"), port, "127.0.0.1");
      });
      s.once("error", reject);
    });
  expect(await ask(d.udpPort)).toBeNull();
  // the datagram that was refused is still proof of life: the server answers others
  expect(await text(udpRequest(d.udpPort, "ok"))).toBe("ok");
  expect(d.stderr()).toContain("not answering UDP from source ports below 1024");

  const open = await startDaemon(["--port", "0", "--udp-allow-low-ports"]);
  try {
    expect((await ask(open.udpPort))?.toString()).toBe("loop?");
  } finally {
    expect(await open.stop()).toBe(0);
  }
});
