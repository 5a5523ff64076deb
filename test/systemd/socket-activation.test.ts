// Socket activation through real tools: systemd-socket-activate for one TCP
// or one UDP socket, test/systemd/listen-fds.py for several descriptors at
// once (UDP first, plus a file and an AF_UNIX socket that must be closed).
// Needs the compiled ./epoll-echo (bun run build), systemd-socket-activate
// (Debian package systemd), python3 and ss.
import { afterEach, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LAUNCH, startDaemon, type Daemon } from "../support/daemon.ts";
import { TcpClient, udpRequest } from "../support/net.ts";
import { fdFlags, fdTargets, freePort, O_NONBLOCK, socketsOf, SYSTEMD_TEST_DIR, unixListenersOf } from "../support/systemd.ts";

const READY = /listening \(TCP port=(\d+), UDP port=(\d+)\)(.*)/;
/** Bytes a line echo must hand back untouched: CR, NUL, high bytes. */
const LINE = "caf\xe9 \x00\x01\x7f\xff end\r\n";

let daemon: Daemon | null = null;
let dir: string | null = null;
afterEach(async () => {
  if (daemon) expect(await daemon.stop()).toBe(0);
  daemon = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = null;
});

async function echoTcp(port: number, host: string): Promise<void> {
  const c = await TcpClient.connect(port, host);
  try {
    c.send(LINE);
    expect((await c.read(LINE.length)).toString("latin1")).toBe(LINE);
  } finally {
    c.close();
  }
}

test("TCP: systemd-socket-activate --listen=[::1]:P", async () => {
  const port = await freePort("tcp");
  daemon = await startDaemon(["--udp-port", "0", "--backlog", "7"], {
    command: ["systemd-socket-activate", `--listen=[::1]:${port}`, "--fdname=echo-tcp", ...LAUNCH],
    noWait: true,
  });
  const d = daemon;
  // Without --accept, systemd-socket-activate binds, waits for the first
  // connection, then execs the binary in its own process (same pid).
  await d.waitForLog(new RegExp(`Listening on \\[::1\\]:${port} as 3\\.`));
  const [before] = socketsOf(d.pid).filter((s) => s.proto === "tcp");
  expect(before?.local).toBe(`[::1]:${port}`);

  const first = await TcpClient.connect(port, "::1"); // queued until the daemon adopts the socket
  const ready = await d.waitForLog(READY);
  expect(Number(ready[1])).toBe(port);
  expect(ready[3]).toContain("tcp=adopted");
  expect(ready[3]).not.toContain("udp=adopted");
  expect(d.stderr()).toMatch(new RegExp(`adopting TCP listener fd=3 name=echo-tcp port=${port}`));
  first.send(LINE);
  expect((await first.read(LINE.length)).toString("latin1")).toBe(LINE);
  first.close();
  await echoTcp(port, "::1");

  const held = socketsOf(d.pid);
  const tcp = held.filter((s) => s.proto === "tcp");
  // Only the adopted listener: nothing bound of our own for TCP.
  expect(tcp).toEqual([{ proto: "tcp", state: "LISTEN", sendQ: before!.sendQ, local: `[::1]:${port}`, fd: 3 }]);
  // systemd's backlog survives adoption; --backlog is not forced onto it.
  expect(tcp[0]!.sendQ).not.toBe(7);
  // UDP was not passed, so the daemon bound its own (--udp-port 0).
  const udpPort = Number(ready[2]);
  expect(udpPort).toBeGreaterThan(0);
  expect(held.some((s) => s.proto === "udp" && s.local.endsWith(`:${udpPort}`))).toBe(true);
  expect((await udpRequest(udpPort, "dgram", "::1")).toString("latin1")).toBe("dgram");
  // Bun made the inherited descriptor non-blocking (an accept loop on a blocking one would hang).
  expect(fdFlags(d.pid, 3) & O_NONBLOCK).toBe(O_NONBLOCK);
}, 20_000);

test("UDP: systemd-socket-activate --datagram --listen=[::1]:P answers the datagram that started it", async () => {
  const port = await freePort("udp");
  daemon = await startDaemon(["--tcp-port", "0"], {
    command: ["systemd-socket-activate", "--datagram", `--listen=[::1]:${port}`, ...LAUNCH],
    noWait: true,
  });
  const d = daemon;
  await d.waitForLog(new RegExp(`Listening on \\[::1\\]:${port} as 3\\.`));
  // This datagram wakes systemd-socket-activate and waits in the socket for the daemon.
  const payload = "first\x00\xff datagram";
  expect((await udpRequest(port, payload, "::1", 10_000)).toString("latin1")).toBe(payload);
  const ready = await d.waitForLog(READY);
  expect(Number(ready[2])).toBe(port);
  expect(ready[3]).toContain("udp=adopted");
  expect(ready[3]).not.toContain("tcp=adopted");
  expect((await udpRequest(port, "second", "::1")).toString("latin1")).toBe("second");

  const held = socketsOf(d.pid);
  expect(held.filter((s) => s.proto === "udp")).toEqual([
    { proto: "udp", state: "UNCONN", sendQ: 0, local: `[::1]:${port}`, fd: 3 },
  ]);
  const tcpPort = Number(ready[1]);
  expect(held.some((s) => s.proto === "tcp" && s.state === "LISTEN" && s.local.endsWith(`:${tcpPort}`))).toBe(true);
  await echoTcp(tcpPort, "127.0.0.1");
  expect(fdFlags(d.pid, 3) & O_NONBLOCK).toBe(O_NONBLOCK);
}, 20_000);

test("both at once: sorted by socket type, names only as labels, other descriptors closed", async () => {
  dir = mkdtempSync(join(tmpdir(), "epoll-echo-fds-"));
  const junk = join(dir, "not-a-socket");
  const unixPath = join(dir, "unix.sock");
  writeFileSync(junk, "x");
  daemon = await startDaemon(["--port", "0", "--backlog", "7"], {
    command: ["python3", join(SYSTEMD_TEST_DIR, "listen-fds.py"), "--file", junk, "--unix", unixPath, "--", ...LAUNCH],
  });
  const d = daemon;
  const given = /listen-fds: udp=(\d+) tcp=(\d+)/.exec(d.stderr())!;
  const [udpPort, tcpPort] = [Number(given[1]), Number(given[2])];
  expect([d.tcpPort, d.udpPort]).toEqual([tcpPort, udpPort]);
  const log = d.stderr();
  expect(log).toMatch(new RegExp(`adopting UDP socket fd=3 name=dns port=${udpPort}`));
  expect(log).toMatch(new RegExp(`adopting TCP listener fd=4 name=web port=${tcpPort} backlog=16`));
  expect(log).toMatch(/closing passed descriptor: not a socket fd=5 name=junk/);
  expect(log).toMatch(/closing passed descriptor: AF_UNIX stream socket, not TCP or UDP fd=6 name=local/);
  expect(log).toMatch(/listening \(TCP port=\d+, UDP port=\d+\) tcp=adopted udp=adopted/);

  await echoTcp(tcpPort, "::1");
  expect((await udpRequest(udpPort, LINE, "::1")).toString("latin1")).toBe(LINE);

  // Exactly the two passed sockets, nothing of our own; the listener keeps backlog 16 despite --backlog 7.
  const held = socketsOf(d.pid).sort((a, b) => a.fd - b.fd);
  expect(held).toEqual([
    { proto: "udp", state: "UNCONN", sendQ: 0, local: `[::1]:${udpPort}`, fd: 3 },
    { proto: "tcp", state: "LISTEN", sendQ: 16, local: `[::1]:${tcpPort}`, fd: 4 },
  ]);
  // The file and the unix socket are gone from the process.
  expect([...fdTargets(d.pid).values()]).not.toContain(junk);
  expect(unixListenersOf(d.pid)).toEqual([]);
  // Python left them blocking; after adoption they are not.
  expect(fdFlags(d.pid, 3) & O_NONBLOCK).toBe(O_NONBLOCK);
  expect(fdFlags(d.pid, 4) & O_NONBLOCK).toBe(O_NONBLOCK);
}, 20_000);

test("LISTEN_PID of another process: nothing adopted, both protocols bound as configured", async () => {
  daemon = await startDaemon(["--port", "0"], { env: { LISTEN_PID: "1", LISTEN_FDS: "2", LISTEN_FDNAMES: "a:b" } });
  const d = daemon;
  expect(d.stderr()).toMatch(/WARN +socket activation: LISTEN_PID=1 is another process/);
  expect(d.stderr()).not.toMatch(/adopted/);
  expect(d.tcpPort).toBeGreaterThan(0);
  await echoTcp(d.tcpPort, "127.0.0.1");
}, 20_000);
