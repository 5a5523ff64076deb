// The TCP protocol of the compiled binary, byte for byte, on both stacks.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { startDaemon, type Daemon } from "../support/daemon.ts";
import { TcpClient, bytes } from "../support/net.ts";

let d: Daemon;
beforeAll(async () => {
  d = await startDaemon(["--port", "0", "--max-line", "64"]);
});
afterAll(async () => {
  expect(await d.stop()).toBe(0);
});

const TIME = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\n$/;

async function exchange(input: string, expectedLength: number, host = "127.0.0.1"): Promise<string> {
  const c = await TcpClient.connect(d.tcpPort, host);
  try {
    c.send(input);
    return (await c.read(expectedLength)).toString("latin1");
  } finally {
    c.close();
  }
}

describe.each(["127.0.0.1", "::1"])("TCP over %s", (host) => {
  test("lines come back byte-exact with their own terminators", async () => {
    expect(await exchange("a\r\nb\n", 5, host)).toBe("a\r\nb\n");
  });

  test("binary bytes, NUL and invalid UTF-8 are echoed unchanged", async () => {
    // every byte value except LF, in lines short enough for --max-line 64
    const values = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).filter((c) => c !== "\n");
    const all = Array.from({ length: 5 }, (_, k) => values.slice(k * 51, k * 51 + 51).join("") + "\n").join("");
    expect(await exchange(all, all.length, host)).toBe(all);
  });
});

test("many lines in one write are all answered in order", async () => {
  const input = Array.from({ length: 500 }, (_, i) => `line ${i}\n`).join("");
  expect(await exchange(input, input.length)).toBe(input);
});

test("a line split over many writes is framed correctly", async () => {
  const c = await TcpClient.connect(d.tcpPort);
  for (const piece of ["he", "l", "lo wor", "ld\r", "\n"]) {
    c.send(piece);
    await Bun.sleep(5); // separate segments on purpose: the framing under test spans reads
  }
  expect((await c.read(13)).toString("latin1")).toBe("hello world\r\n");
  c.close();
});

test("commands: /time, /stats, unknown, CRLF-terminated, replies end in a bare LF", async () => {
  const c = await TcpClient.connect(d.tcpPort);
  c.send("/time\r\n");
  expect((await c.read(20)).toString("latin1")).toMatch(TIME);
  c.send("/stats\r\n");
  await c.until(() => c.data.includes(0x0a), 5000, "stats line");
  const stats = (await c.read(c.data.indexOf(0x0a) + 1)).toString("latin1");
  expect(stats).toMatch(/^\d+ \d+ \d+\n$/);
  expect(Number(stats.split(" ")[1])).toBeGreaterThanOrEqual(1);
  c.send("/nope\n/\r\n");
  expect((await c.read(40)).toString("latin1")).toBe("ERR unknown-command\nERR unknown-command\n");
  c.close();
});

test("an overlong line gets ERR, the rest is discarded, the connection goes on", async () => {
  const c = await TcpClient.connect(d.tcpPort);
  c.send("x".repeat(65) + "\nok\n");
  expect((await c.read(21)).toString("latin1")).toBe("ERR too-long-line\nok\n");
  // exactly max-line bytes (CR counted) is fine
  const exact = "y".repeat(63) + "\r\n";
  c.send(exact);
  expect((await c.read(65)).toString("latin1")).toBe(exact);
  c.close();
});

test("a second overlong line in a row gets ERR and the connection is closed", async () => {
  const c = await TcpClient.connect(d.tcpPort);
  c.send("x".repeat(100) + "\n" + "z".repeat(100) + "\nnot echoed\n");
  expect((await c.readToEnd()).toString("latin1")).toBe("ERR too-long-line\nERR too-long-line\n");
});

test("half-close: owed replies and the unterminated last line are delivered, then close", async () => {
  const c = await TcpClient.connect(d.tcpPort);
  c.send("one\ntwo\nlast-no-lf");
  c.shutdownWrite();
  expect((await c.readToEnd()).toString("latin1")).toBe("one\ntwo\nlast-no-lf");
});

test("half-close after an unterminated command answers the command", async () => {
  const c = await TcpClient.connect(d.tcpPort);
  c.send("/time");
  c.shutdownWrite();
  expect((await c.readToEnd()).toString("latin1")).toMatch(TIME);
});

test("a client that sends megabytes without reading gets every byte back once it reads", async () => {
  const c = await TcpClient.connect(d.tcpPort);
  c.socket.pause();
  const line = bytes("z".repeat(60) + "\n");
  const total = 8 * 1024 * 1024;
  const block = Buffer.concat(Array.from({ length: 1024 }, () => line));
  let sent = 0;
  while (sent < total) {
    if (!c.socket.write(block)) await new Promise((r) => c.socket.once("drain", r));
    sent += block.length;
  }
  c.socket.resume();
  const back = await c.read(sent, 30_000);
  expect(back.length).toBe(sent);
  expect(back.equals(Buffer.concat(Array.from({ length: sent / block.length }, () => block)))).toBe(true);
  c.close();
});

test("a client that resets mid-reply does not disturb the server", async () => {
  const c = await TcpClient.connect(d.tcpPort);
  c.send("r".repeat(60) + "\n".repeat(1) + "q\n".repeat(100_000));
  c.socket.resetAndDestroy();
  expect(await exchange("still here\n", 11)).toBe("still here\n");
});
