// --proxy-protocol-from on the compiled binary: a listed peer must start with
// a PROXY header (v1 or v2), which is consumed and names the client for
// /whoami; anything else from it closes the connection; other peers are not
// parsed at all.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BINARY, startDaemon, type Daemon } from "../support/daemon.ts";
import { createTestNetns, exchangeInNetns, NETNS_ADDRESS } from "../support/netns.ts";
import { TcpClient, bytes } from "../support/net.ts";
import { parseExposition, sample, scrape } from "../support/metrics.ts";
import { encodeProxyHeader, V2_SIGNATURE } from "../../src/core/proxy-header.ts";

const TOKEN = "proxy-test-token";
const dir = mkdtempSync(join(tmpdir(), "epoll-echo-proxy-"));
const tokenFile = join(dir, "token");
writeFileSync(tokenFile, TOKEN);
chmodSync(tokenFile, 0o600);

let d: Daemon;
let metricsUrl: string;
beforeAll(async () => {
  d = await startDaemon(["--port", "0", "--proxy-protocol-from", "10.9.0.0/16,127.0.0.0/8", "--shutdown-token-file", tokenFile, "--metrics", "127.0.0.1:0"]);
  metricsUrl = (await d.waitForLog(/metrics at (http:\S+)/))[1]!;
});
afterAll(async () => {
  await d.stop();
  rmSync(dir, { recursive: true, force: true });
});

const v1 = (src: string, port: number) => bytes(`PROXY TCP4 ${src} 127.0.0.1 ${port} 12345\r\n`);
const headerErrors = async () => sample(parseExposition((await scrape(metricsUrl)).body), "epoll_echo_proxy_header_errors_total");

describe("from a listed peer", () => {
  test("v1 and v2 headers are consumed, never echoed; /whoami answers the address they carry", async () => {
    const cases: [Uint8Array, string][] = [
      [v1("203.0.113.7", 5555), "203.0.113.7 5555\n"],
      [encodeProxyHeader(2, { address: "203.0.113.8", port: 6666 }, { address: "127.0.0.1", port: 1 }), "203.0.113.8 6666\n"],
      [encodeProxyHeader(2, { address: "2001:db8::7", port: 443 }, { address: "::1", port: 1 }), "2001:db8::7 443\n"],
      [bytes("PROXY TCP6 2001:db8:0:0:0:0:0:9 ::1 80 1\r\n"), "2001:db8::9 80\n"],
    ];
    for (const [header, who] of cases) {
      const c = await TcpClient.connect(d.tcpPort);
      c.send(Buffer.concat([header, bytes("/whoami\nPROXY UNKNOWN\r\nhello\n")]));
      const want = who + "PROXY UNKNOWN\r\nhello\n";
      expect((await c.read(want.length)).toString("latin1")).toBe(want);
      c.close();
    }
  });

  test("a header split at every byte still works (the server waits for the rest)", async () => {
    const header = encodeProxyHeader(2, { address: "198.51.100.1", port: 1000 }, { address: "127.0.0.1", port: 1 });
    const c = await TcpClient.connect(d.tcpPort);
    for (const b of header) {
      c.send(Uint8Array.of(b));
      await Bun.sleep(2);
    }
    c.send("/whoami\n");
    expect((await c.read(18)).toString()).toBe("198.51.100.1 1000\n");
    c.close();
  });

  test("v2 LOCAL and v1 UNKNOWN keep the real peer", async () => {
    const local = Buffer.concat([V2_SIGNATURE, Uint8Array.of(0x20, 0x00, 0, 0)]);
    for (const header of [local, bytes("PROXY UNKNOWN\r\n")]) {
      const c = await TcpClient.connect(d.tcpPort);
      c.send(Buffer.concat([header, bytes("/whoami\n")]));
      const want = `127.0.0.1 ${c.socket.localPort}\n`;
      expect((await c.read(want.length)).toString()).toBe(want);
      c.close();
    }
  });

  test("/shutdown's loopback rule looks at the real peer, not the header", async () => {
    // Real peer 127.0.0.1 (loopback), header says 203.0.113.7: the token is still checked, not refused as remote.
    const c = await TcpClient.connect(d.tcpPort);
    c.send(Buffer.concat([v1("203.0.113.7", 1), bytes("/shutdown wrong\n")]));
    expect((await c.read(27)).toString()).toBe("ERR shutdown-token-invalid\n");
    c.close();
  });

  test("a header naming a loopback client does not make a remote peer loopback for /shutdown", async () => {
    const ns = createTestNetns();
    if (typeof ns === "string") {
      console.log(`skipped: no network namespace (${ns})`);
      return;
    }
    try {
      const remote = await startDaemon(["--port", "0", "--proxy-protocol-from", `${NETNS_ADDRESS}/32`, "--shutdown-token-file", tokenFile], {
        command: [...ns.exec, BINARY],
      });
      try {
        const reply = exchangeInNetns(ns, "tcp", NETNS_ADDRESS, remote.tcpPort, `PROXY TCP4 127.0.0.1 127.0.0.1 4242 1\r\n/shutdown ${TOKEN}\n/whoami\n`);
        expect(reply.toString()).toBe("ERR shutdown-loopback-required\n127.0.0.1 4242\n");
      } finally {
        expect(await remote.stop()).toBe(0);
      }
    } finally {
      ns.remove();
    }
  });

  test("a missing, malformed, overlong or incomplete header closes the connection, counted and logged at most once per 10 s", async () => {
    const before = await headerErrors();
    const bad = [
      bytes("hello\n"),
      bytes("PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\nhello\n"),
      bytes("PROXY " + "x".repeat(120)),
      Buffer.concat([V2_SIGNATURE, Uint8Array.of(0x21, 0x51, 0, 0)]),
    ];
    for (const payload of bad) {
      const c = await TcpClient.connect(d.tcpPort);
      c.send(payload);
      expect((await c.readToEnd()).length).toBe(0);
      c.close();
    }
    // Incomplete: nothing more after a valid beginning; closed after 3 s.
    const slow = await TcpClient.connect(d.tcpPort);
    const t0 = performance.now();
    slow.send("PROXY TCP4 1.2.3.4 ");
    expect((await slow.readToEnd(6000)).length).toBe(0);
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThan(2900);
    expect(waited).toBeLessThan(4500);
    expect(await headerErrors()).toBe(before + 5);
    expect(d.stderr().match(/missing or invalid PROXY header/g)?.length).toBe(1);
    // The server is unaffected.
    const ok = await TcpClient.connect(d.tcpPort);
    ok.send(Buffer.concat([v1("192.0.2.1", 9), bytes("still here\n")]));
    expect((await ok.read(11)).toString()).toBe("still here\n");
    ok.close();
  });
});

describe("from a peer not listed", () => {
  let plain: Daemon;
  beforeAll(async () => {
    plain = await startDaemon(["--port", "0", "--proxy-protocol-from", "10.0.0.0/8,2001:db8::/32"]);
  });
  afterAll(async () => {
    await plain.stop();
  });

  test.each(["127.0.0.1", "::1"])("nothing is parsed over %s: a PROXY line is an ordinary line", async (host) => {
    const c = await TcpClient.connect(plain.tcpPort, host);
    const line = "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n";
    c.send(line + "/whoami\n");
    const want = `${line}${host} ${c.socket.localPort}\n`;
    expect((await c.read(want.length)).toString()).toBe(want);
    c.close();
  });
});
