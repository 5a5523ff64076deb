// Capacity, idle timeouts and the listen backlog, on the compiled binary.
import { expect, test } from "bun:test";
import * as dgram from "node:dgram";
import { LAUNCH, startDaemon } from "../support/daemon.ts";
import { TcpClient, udpRequest } from "../support/net.ts";

async function stats(port: number): Promise<number[]> {
  return (await udpRequest(port, "/stats")).toString().trim().split(" ").map(Number);
}

test("past --max-tcp a client gets 'server busy' and is closed; the others are unaffected", async () => {
  const d = await startDaemon(["--port", "0", "--max-tcp", "2"]);
  try {
    const a = await TcpClient.connect(d.tcpPort);
    const b = await TcpClient.connect(d.tcpPort, "::1");
    a.send("a\n");
    b.send("b\n");
    expect((await a.read(2)).toString()).toBe("a\n");
    expect((await b.read(2)).toString()).toBe("b\n");
    const c = await TcpClient.connect(d.tcpPort);
    expect((await c.readToEnd()).toString()).toBe("server busy\n");
    a.send("still\n");
    expect((await a.read(6)).toString()).toBe("still\n");
    // rejected connections are not clients: 2 accepted + the UDP peer asking
    expect(await stats(d.udpPort)).toEqual([3, 2, 1]);
    await d.waitForLog(/WARN\s+server busy, rejecting connections .*max_tcp=2/);
    a.close();
    // a slot is free again once the server has seen a client leave
    for (let i = 0; i < 100 && (await stats(d.udpPort))[1] !== 1; i++) await Bun.sleep(20);
    const e = await TcpClient.connect(d.tcpPort);
    e.send("e\n");
    expect((await e.read(2)).toString()).toBe("e\n");
  } finally {
    expect(await d.stop()).toBe(0);
  }
});

test("--idle-timeout closes a silent client and keeps a talkative one", async () => {
  const d = await startDaemon(["--port", "0", "--idle-timeout", "1"]);
  try {
    const silent = await TcpClient.connect(d.tcpPort);
    const talker = await TcpClient.connect(d.tcpPort);
    const started = performance.now();
    let n = 0;
    while (!silent.ended && performance.now() - started < 6000) {
      talker.send(`${n}\n`);
      await talker.read(`${n}\n`.length);
      n++;
      await Bun.sleep(100); // the talker's pace: one line every 100 ms
    }
    const elapsed = performance.now() - started;
    expect(silent.ended).toBe(true);
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(4000);
    expect(talker.ended).toBe(false);
    talker.send("alive\n");
    expect((await talker.read(6)).toString()).toBe("alive\n");
  } finally {
    expect(await d.stop()).toBe(0);
  }
});

test("udp_active forgets peers after --udp-window; total_clients keeps them and does not count a returning peer again", async () => {
  const d = await startDaemon(["--port", "0", "--udp-window", "1"]);
  const returning = dgram.createSocket("udp4");
  try {
    await new Promise<void>((r) => returning.bind(0, "127.0.0.1", () => r()));
    const ask = (payload: string) =>
      new Promise<string>((resolve) => {
        returning.once("message", (m) => resolve(m.toString()));
        returning.send(payload, d.udpPort, "127.0.0.1");
      });
    expect(await ask("x")).toBe("x");
    await udpRequest(d.udpPort, "y");
    expect((await stats(d.udpPort))[2]).toBe(3);
    await Bun.sleep(1100); // the window under test is one second long
    const [total, , active] = await stats(d.udpPort);
    expect(active).toBe(1); // only the peer asking now
    expect(total).toBe(4);
    // The first peer comes back after the window: active again, but not a new client.
    expect(await ask("/stats")).toBe("4 0 2\n");
  } finally {
    returning.close();
    expect(await d.stop()).toBe(0);
  }
});

test("--backlog reaches listen(2): ss shows it as the listener's Send-Q", async () => {
  const somaxconn = Number(await Bun.file("/proc/sys/net/core/somaxconn").text());
  const d = await startDaemon(["--port", "0", "--backlog", "77"]);
  try {
    const out = Bun.spawnSync(["ss", "-Hltn", `sport = :${d.tcpPort}`]).stdout.toString().trim();
    const sendQ = Number(out.split(/\s+/)[2]);
    expect(sendQ).toBe(Math.min(77, somaxconn));
  } finally {
    expect(await d.stop()).toBe(0);
  }
});

test("a quiet start (-q) applies --backlog and the descriptor budget just after it is up, and serves meanwhile", async () => {
  const somaxconn = Number(await Bun.file("/proc/sys/net/core/somaxconn").text());
  // prlimit execs the daemon: same pid. 256 descriptors cannot hold --max-tcp 1024, so the budget clamps it.
  const d = await startDaemon(["--port", "0", "-q", "--backlog", "77", "--max-tcp", "1024"], { noWait: true, command: ["prlimit", "--nofile=256:256", ...LAUNCH] });
  try {
    const listener = () => Bun.spawnSync(["ss", "-Hltnp"]).stdout.toString().split("\n").find((l) => l.includes(`pid=${d.pid},`));
    const sendQ = () => Number(listener()?.trim().split(/\s+/)[2]);
    for (let i = 0; i < 250 && sendQ() !== Math.min(77, somaxconn); i++) await Bun.sleep(20);
    expect(sendQ()).toBe(Math.min(77, somaxconn));
    await d.waitForLog(/WARN .*--max-tcp 1024 does not fit the descriptor limit: serving at most \d+ clients/);
    // --port 0: the kernel picks TCP and UDP ports apart; "ADDR:PORT" is ss's fourth column.
    const portOf = (line: string | undefined) => Number(line!.trim().split(/\s+/)[3]!.replace(/^.*:/, ""));
    const c = await TcpClient.connect(portOf(listener()));
    c.send("q\n");
    expect((await c.read(2)).toString()).toBe("q\n");
    c.close();
    const udp = Bun.spawnSync(["ss", "-Hulnp"]).stdout.toString().split("\n").find((l) => l.includes(`pid=${d.pid},`));
    expect((await udpRequest(portOf(udp), "u")).toString()).toBe("u");
  } finally {
    expect(await d.stop()).toBe(0);
  }
});
