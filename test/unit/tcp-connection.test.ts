// The server's per-client backpressure, against a fake socket whose "kernel"
// takes only what the test allows: no network, every step observable.
import { expect, test } from "bun:test";
import type { Socket } from "bun";
import { FRAME_SLICE, OUTPUT_HIGH_WATER, OUTPUT_LOW_WATER, outputPolicy, TcpConnection } from "../../src/server/tcp-connection.ts";
import { CommandRunner } from "../../src/server/command-runner.ts";
import { Stats, UdpPeerTable } from "../../src/core/stats.ts";
import { CoarseClock } from "../../src/core/clock.ts";
import { createLogger } from "../../src/sys/log.ts";

class FakeSocket {
  room = 0;
  taken: Uint8Array[] = [];
  paused = false;
  pauses = 0;
  ended = false;
  write(data: Uint8Array, offset = 0, length = data.length - offset): number {
    const n = Math.min(length, this.room);
    this.room -= n;
    this.taken.push(data.slice(offset, offset + n));
    return n;
  }
  pause(): void {
    this.paused = true;
    this.pauses++;
  }
  resume(): void {
    this.paused = false;
  }
  end(): void {
    this.ended = true;
  }
  terminate(): void {
    this.ended = true;
  }
  get takenBytes(): number {
    return this.taken.reduce((n, b) => n + b.length, 0);
  }
}

function connection() {
  const stats = new Stats(new UdpPeerTable(60_000, 16));
  const log = createLogger({ output: "text", verbosity: 0, write: () => {} });
  const socket = new FakeSocket();
  const conn = new TcpConnection(1, socket as unknown as Socket<TcpConnection>, "127.0.0.1", 40000, true, {
    maxLine: 4096,
    log,
    stats,
    clock: new CoarseClock(),
    commands: new CommandRunner(stats, log, null, () => "test"),
    onShutdownRequest: () => {},
    output: outputPolicy(stats),
  });
  return { conn, socket, stats };
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

test("a client that does not read: reading pauses over the high-water mark, resumes at the low one, every byte echoed in order", async () => {
  const { conn, socket, stats } = connection();
  const line = new TextEncoder().encode("x".repeat(63) + "\n");
  const input = new Uint8Array(4 * 1024 * 1024);
  for (let i = 0; i < input.length; i += line.length) input.set(line, i);
  // A peer pushing 4 MiB in reads of 512 KiB, never reading the echo. Reads
  // after the pause stand for what Bun still delivers then: held, not framed.
  for (let i = 0; i < input.length; i += 512 * 1024) {
    conn.onData(input.subarray(i, i + 512 * 1024));
    await nextTurn();
  }
  expect(socket.paused).toBe(true);
  // Framing stops within one slice of the mark (echo replies are as long as their input).
  const bound = OUTPUT_HIGH_WATER + FRAME_SLICE;
  expect(stats.tcpPendingOutput).toBeGreaterThan(OUTPUT_HIGH_WATER);
  expect(stats.tcpPendingOutput).toBeLessThanOrEqual(bound);
  expect(conn.owesNothing).toBe(false);

  // The kernel takes all but just over the low-water mark: still paused, nothing more framed.
  socket.room = stats.tcpPendingOutput - OUTPUT_LOW_WATER - 1;
  conn.onDrain();
  await nextTurn();
  expect(stats.tcpPendingOutput).toBe(OUTPUT_LOW_WATER + 1);
  expect(socket.paused).toBe(true);

  // Down to the mark: held input is framed again, and so on until all is echoed.
  let maxPending = 0;
  for (let rounds = 0; socket.takenBytes < input.length; rounds++) {
    expect(rounds).toBeLessThan(1000);
    socket.room = 256 * 1024;
    conn.onDrain();
    await nextTurn();
    maxPending = Math.max(maxPending, stats.tcpPendingOutput);
  }
  expect(maxPending).toBeLessThanOrEqual(bound);
  expect(Buffer.concat(socket.taken).equals(Buffer.from(input))).toBe(true);
  expect(socket.paused).toBe(false);
  expect(stats.tcpPendingOutput).toBe(0);
  expect(stats.tcpBytesOut).toBe(input.length);
  expect(conn.owesNothing).toBe(true);
});

test("a closed connection takes its unsent bytes off the pending-output gauge", () => {
  const { conn, socket, stats } = connection();
  socket.room = 10;
  conn.onData(new TextEncoder().encode("hello world\n"));
  expect(stats.tcpPendingOutput).toBe(2);
  conn.onClose();
  expect(stats.tcpPendingOutput).toBe(0);
  expect(stats.tcpBytesOut).toBe(10);
});
