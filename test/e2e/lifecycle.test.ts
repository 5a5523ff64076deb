// Startup, shutdown and the command line of the compiled binary.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, runBinary, LAUNCH } from "../support/daemon.ts";
import { TcpClient, udpRequest } from "../support/net.ts";
import { createTestNetns, exchangeInNetns, NETNS_ADDRESS } from "../support/netns.ts";
import pkg from "../../package.json" with { type: "json" };

const dir = mkdtempSync(join(tmpdir(), "epoll-echo-e2e-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const TOKEN = "correct horse battery staple";

function tokenFile(content = TOKEN + "\n", mode = 0o600): string {
  const path = join(dir, `token-${Math.random().toString(36).slice(2)}`);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}

describe("command line", () => {
  test("--version prints the package version", () => {
    const r = runBinary(["--version"]);
    expect(r).toMatchObject({ code: 0, stdout: `epoll-echo ${pkg.version}\n` });
  });

  test("--help lists every flag with its default and exits 0", () => {
    const r = runBinary(["--help"]);
    expect(r.code).toBe(0);
    for (const flag of ["--port", "--tcp-port", "--udp-port", "--max-tcp", "--backlog", "--max-line", "--max-datagram", "--udp-window", "--idle-timeout", "--shutdown-token-file", "--log-format", "--verbose", "--quiet"]) {
      expect(r.stdout).toContain(flag);
    }
    expect(r.stdout).toContain("(Default: 4096)");
  });

  test("bad flags exit 2 at once with one line naming the flag, before binding anything", () => {
    const cases: [string[], string][] = [
      [["--bogus"], "unknown option --bogus"],
      [["--port"], "--port: needs a value"],
      [["--port", "x"], "--port"],
      [["--port", "99999"], "--port: 99999 is out of range"],
      [["--max-tcp", "0"], "--max-tcp: 0 is out of range"],
      [["--max-tcp", "-5"], "--max-tcp: expected a whole number"],
      [["--log-format", "xml"], "--log-format"],
    ];
    for (const [args, message] of cases) {
      const r = runBinary(args);
      expect(r.code).toBe(2);
      const [first, ...rest] = r.stderr.trimEnd().split("\n");
      expect(first).toStartWith(`epoll-echo: ${message}`);
      expect(rest).toEqual(["Try 'epoll-echo --help' for the list of options."]);
      expect(r.stderr).not.toContain("    at "); // no stack trace
    }
  });

  test("a port in use: exit 1 with the port and the reason", async () => {
    const first = await startDaemon(["--port", "0"]);
    try {
      const r = runBinary(["--tcp-port", String(first.tcpPort), "--udp-port", "0"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`cannot listen on TCP port ${first.tcpPort}: address already in use (EADDRINUSE)`);
      expect(r.stderr).not.toContain("    at ");
    } finally {
      await first.stop();
    }
  });

  test("a token file readable by others stops startup; a missing one too", () => {
    const loose = runBinary(["--port", "0", "--shutdown-token-file", tokenFile(TOKEN, 0o644)]);
    expect(loose.code).toBe(1);
    expect(loose.stderr).toContain("readable or writable by group or others");
    expect(loose.stderr).not.toContain(TOKEN);
    const missing = runBinary(["--port", "0", "--shutdown-token-file", join(dir, "absent")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no such file");
  });

  test("--log-format json writes one JSON object per line", async () => {
    const d = await startDaemon(["--port", "0", "--log-format", "json"]);
    await d.stop();
    const lines = d.stderr().trimEnd().split("\n");
    const objects = lines.map((l) => JSON.parse(l));
    expect(objects.some((o) => /^listening \(TCP port=\d+, UDP port=\d+\)$/.test(o.msg) && o.level === "info")).toBe(true);
  });

  test("the readiness line comes exactly once; -vv traces connections; -q hides info", async () => {
    const verbose = await startDaemon(["--port", "0", "-vv"]);
    const c = await TcpClient.connect(verbose.tcpPort);
    c.send("x\n");
    await c.read(2);
    c.close();
    await verbose.waitForLog(/TRACE closed conn=1/);
    await verbose.stop();
    expect(verbose.stderr().match(/listening \(TCP port=/g)?.length).toBe(1);
    expect(verbose.stderr()).toMatch(/TRACE accepted conn=1 peer=127\.0\.0\.1:\d+/);

    // -q hides the readiness line too: wait for the process to own a listening socket instead
    const quiet = await startDaemon(["--port", "0", "-q"], { noWait: true });
    const listening = () => Bun.spawnSync(["ss", "-Hltnp"]).stdout.toString().includes(`pid=${quiet.pid},`);
    for (let i = 0; i < 250 && !listening(); i++) await Bun.sleep(20);
    expect(listening()).toBe(true);
    expect(await quiet.stop()).toBe(0);
    expect(quiet.stderr()).toBe("");
  });
});

describe("signals and /shutdown", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    test(`${signal}: replies owed are delivered and the exit status is 0`, async () => {
      const d = await startDaemon(["--port", "0"]);
      const c = await TcpClient.connect(d.tcpPort);
      c.send("before\n");
      expect((await c.read(7)).toString()).toBe("before\n");
      d.proc.kill(signal);
      await c.readToEnd();
      expect(await d.exited).toBe(0);
      expect(d.stderr()).toContain(`stopping reason=${signal}`);
    });
  }

  test("/shutdown with the token from loopback: OK, then a graceful exit 0", async () => {
    const d = await startDaemon(["--port", "0", "--shutdown-token-file", tokenFile()]);
    const other = await TcpClient.connect(d.tcpPort, "::1");
    const c = await TcpClient.connect(d.tcpPort);
    c.send(`/shutdown ${TOKEN}\n`);
    expect((await c.readToEnd()).toString()).toBe("OK, shutting down\n");
    expect((await other.readToEnd()).toString()).toBe("");
    expect(await d.exited).toBe(0);
    expect(d.stderr()).toContain("shutdown requested");
    expect(d.stderr()).not.toContain(TOKEN);
  });

  test("wrong, missing or spaced tokens are refused and the server stays up", async () => {
    const d = await startDaemon(["--port", "0", "--shutdown-token-file", tokenFile()]);
    try {
      const c = await TcpClient.connect(d.tcpPort, "::1");
      c.send(`/shutdown\n/shutdown ${TOKEN}x\n/shutdown ${TOKEN.slice(1)}\n`);
      const expected = "ERR shutdown-token-required\nERR shutdown-token-invalid\nERR shutdown-token-invalid\n";
      expect((await c.read(expected.length)).toString()).toBe(expected);
      c.send(`/shutdown \t${TOKEN}  \n`);
      expect((await c.readToEnd()).toString()).toBe("OK, shutting down\n");
      expect(await d.exited).toBe(0);
      expect(d.stderr()).not.toContain(TOKEN);
      expect(d.stderr()).toMatch(/WARN\s+shutdown refused reason=token-invalid/);
    } finally {
      await d.stop();
    }
  });

  test("without a configured token /shutdown is refused with token-missing", async () => {
    const d = await startDaemon(["--port", "0"]);
    try {
      const c = await TcpClient.connect(d.tcpPort);
      c.send("/shutdown anything\n");
      expect((await c.read(27)).toString()).toBe("ERR shutdown-token-missing\n");
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });

  test("from a non-loopback peer /shutdown gets shutdown-loopback-required", async () => {
    const ns = createTestNetns();
    if (typeof ns === "string") {
      console.log(`skipped: no network namespace (${ns})`);
      return;
    }
    try {
      const d = await startDaemon(["--port", "0", "--shutdown-token-file", tokenFile()], { command: [...ns.exec, ...LAUNCH] });
      try {
        const reply = exchangeInNetns(ns, "tcp", NETNS_ADDRESS, d.tcpPort, `/shutdown ${TOKEN}\nhello\n`);
        expect(reply.toString()).toBe("ERR shutdown-loopback-required\nhello\n");
        await d.waitForLog(/shutdown refused reason=loopback-required proto=tcp conn=1 peer=198\.18\.0\.1:\d+/);
      } finally {
        expect(await d.stop()).toBe(0);
      }
    } finally {
      ns.remove();
    }
  });

  test("a second signal exits at once", async () => {
    const d = await startDaemon(["--port", "0"]);
    const c = await TcpClient.connect(d.tcpPort);
    c.send("accepted?\n");
    await c.read(10);
    // a client that never goes quiet keeps the graceful stop waiting for its deadline
    const chatter = setInterval(() => c.send("x\n"), 10);
    try {
      d.proc.kill("SIGTERM");
      await d.waitForLog(/stopping reason=SIGTERM/);
      d.proc.kill("SIGTERM");
      expect(await d.exited).toBe(143);
      expect(d.stderr()).toContain("SIGTERM again: exiting at once");
    } finally {
      clearInterval(chatter);
      c.close();
    }
  });
});

test("UDP keeps answering until the stop begins", async () => {
  const d = await startDaemon(["--port", "0"]);
  expect((await udpRequest(d.udpPort, "u")).toString()).toBe("u");
  expect(await d.stop()).toBe(0);
});
