// A burst of datagrams larger than the reply batch (replies go out 8 at a
// time within a turn, the rest at the turn's end): every datagram is answered
// once, byte for byte, and the byte and datagram counters are exact.
import { expect, test } from "bun:test";
import * as dgram from "node:dgram";
import { startDaemon } from "../support/daemon.ts";
import { parseExposition, sample, scrape } from "../support/metrics.ts";

const METRICS_URL = /metrics at (http:\/\/\S+\/metrics)/;
const BURST = 50;

test("a burst of 50 datagrams from one socket: each echoed once, exactly; bytes and datagrams counted exactly", async () => {
  const d = await startDaemon(["--port", "0", "--metrics", "127.0.0.1:0"]);
  const sock = dgram.createSocket("udp4");
  try {
    const url = (await d.waitForLog(METRICS_URL))[1]!;
    const payloads = Array.from({ length: BURST }, (_, i) => Buffer.from(`burst ${i} `.padEnd(10 + (i % 7), "x")));
    const replies: Buffer[] = [];
    const all = new Promise<void>((resolve) =>
      sock.on("message", (msg) => {
        replies.push(msg);
        if (replies.length === BURST) resolve();
      }),
    );
    await new Promise<void>((resolve) => sock.bind(0, "127.0.0.1", () => resolve()));
    for (const p of payloads) sock.send(p, d.udpPort, "127.0.0.1");
    await all;
    expect(replies.map((r) => r.toString("latin1")).sort()).toEqual(payloads.map((p) => p.toString("latin1")).sort());
    const total = payloads.reduce((n, p) => n + p.length, 0);
    const m = parseExposition((await scrape(url)).body);
    expect(sample(m, "epoll_echo_udp_datagrams_total")).toBe(BURST);
    expect(sample(m, "epoll_echo_bytes_received_total", { proto: "udp" })).toBe(total);
    expect(sample(m, "epoll_echo_bytes_sent_total", { proto: "udp" })).toBe(total);
  } finally {
    sock.close();
    expect(await d.stop()).toBe(0);
  }
});
