// --tls-port on the compiled binary, talked to with node:tls from the test:
// the line protocol and commands, shared limits, handshake counters, and a
// SIGHUP certificate reload that new connections see while old ones go on.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runBinary, startDaemon, type Daemon } from "../support/daemon.ts";
import { TcpClient, bytes } from "../support/net.ts";
import { parseExposition, sample, scrape } from "../support/metrics.ts";
import { makeCert, type TestCert } from "../support/tls.ts";
import { encodeProxyHeader } from "../../src/core/proxy-header.ts";
import { PENDING_SLACK } from "../../src/server/tls-server.ts";

const dir = mkdtempSync(join(tmpdir(), "epoll-echo-tls-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const TOKEN = "tls-test-token";
const tokenFile = join(dir, "token");
writeFileSync(tokenFile, TOKEN);
chmodSync(tokenFile, 0o600);

let first: TestCert;
let second: TestCert;
beforeAll(() => {
  first = makeCert(dir, "first", 0x1111);
  second = makeCert(dir, "second", 0x2222);
});

/** --tls-cert/--tls-key pointing at files the test can swap for a reload. */
function liveFiles(cert: TestCert): { certFile: string; keyFile: string } {
  const certFile = join(dir, `live-${Math.random().toString(36).slice(2)}.crt`);
  const keyFile = certFile.replace(/\.crt$/, ".key");
  copyFileSync(cert.certFile, certFile);
  copyFileSync(cert.keyFile, keyFile);
  chmodSync(keyFile, 0o600);
  return { certFile, keyFile };
}

const tlsArgs = (files: { certFile: string; keyFile: string }) => ["--tls-port", "0", "--tls-cert", files.certFile, "--tls-key", files.keyFile];
const tlsPortOf = async (d: Daemon) => Number((await d.waitForLog(/listening \(.*\) tls_port=(\d+)/))[1]);
const handshakes = async (url: string, result: "ok" | "failed") => sample(parseExposition((await scrape(url)).body), "epoll_echo_tls_handshakes_total", { result });

describe("one TLS daemon", () => {
  let d: Daemon;
  let port: number;
  let metrics: string;
  beforeAll(async () => {
    d = await startDaemon(["--port", "0", "--instance", "tls-1", "--shutdown-token-file", tokenFile, "--metrics", "127.0.0.1:0", ...tlsArgs(liveFiles(first))]);
    port = await tlsPortOf(d);
    metrics = (await d.waitForLog(/metrics at (http:\S+)/))[1]!;
  });
  afterAll(async () => {
    await d.stop();
  });

  test.each(["127.0.0.1", "::1"])("over %s: lines echoed byte-exact, commands answered, the certificate verified", async (host) => {
    const c = await TcpClient.connectTls(port, { host, ca: first.cert });
    try {
      expect(c.peerCertificateSerial).toBe(first.serial);
      c.send(bytes("a\r\nb\n\x00\xff\n/instance\n/whoami\n/stats\n"));
      const who = `${host} ${c.socket.localPort}\n`;
      const head = "a\r\nb\n\x00\xff\ntls-1\n" + who;
      expect((await c.read(head.length)).toString("latin1")).toBe(head);
      const stats = (await c.until(() => c.data.includes(10), 2000, "/stats"), c.data.toString());
      expect(stats).toMatch(/^\d+ \d+ \d+\n$/);
    } finally {
      c.close();
    }
  });

  test("a failed handshake is counted and disturbs no one else", async () => {
    const okBefore = await handshakes(metrics, "ok");
    const failedBefore = await handshakes(metrics, "failed");
    const good = await TcpClient.connectTls(port, { ca: first.cert });
    // Plain text to the TLS port: the server answers with an alert and closes.
    const plain = await TcpClient.connect(port);
    plain.send("hello\n");
    await plain.readToEnd();
    // A client that does not trust the certificate gives up during the handshake.
    expect(TcpClient.connectTls(port, { ca: second.cert })).rejects.toThrow();
    await Bun.sleep(100);
    good.send("still fine\n");
    expect((await good.read(11)).toString()).toBe("still fine\n");
    good.close();
    expect(await handshakes(metrics, "ok")).toBe(okBefore + 1);
    expect(await handshakes(metrics, "failed")).toBe(failedBefore + 2);
  });

  test("a client that never starts its handshake is cut after 10 s, and was never a client", async () => {
    const silent = await TcpClient.connect(port);
    const t0 = performance.now();
    const asker = await TcpClient.connectTls(port, { ca: first.cert });
    asker.send("/stats\n");
    await asker.until(() => asker.data.includes(10), 2000, "/stats");
    expect(asker.data.toString().split(" ")[1]).toBe("1"); // the asker only: the silent socket is no client
    asker.close();
    await silent.readToEnd(15_000);
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThan(9_500);
    expect(waited).toBeLessThan(12_000);
  }, 20_000);

  test("a PROXY header before the handshake is not parsed from an unlisted peer (the handshake fails)", async () => {
    const header = encodeProxyHeader(1, { address: "192.0.2.1", port: 1 }, { address: "127.0.0.1", port });
    expect(TcpClient.connectTls(port, { ca: first.cert, before: header })).rejects.toThrow();
  });
});

test("TLS shares --max-tcp with plain TCP: the next client, TLS or not, gets 'server busy'", async () => {
  const d = await startDaemon(["--port", "0", "--max-tcp", "1", ...tlsArgs(liveFiles(first))]);
  const port = await tlsPortOf(d);
  try {
    const holder = await TcpClient.connect(d.tcpPort);
    holder.send("x\n");
    await holder.read(2);
    const rejected = await TcpClient.connectTls(port, { ca: first.cert });
    expect((await rejected.readToEnd()).toString()).toBe("server busy\n");
    holder.close();
    await Bun.sleep(50);
    const tlsHolder = await TcpClient.connectTls(port, { ca: first.cert });
    tlsHolder.send("y\n");
    await tlsHolder.read(2);
    const plain = await TcpClient.connect(d.tcpPort);
    expect((await plain.readToEnd()).toString()).toBe("server busy\n");
    tlsHolder.close();
  } finally {
    expect(await d.stop()).toBe(0);
  }
});

test(`handshakes in flight are capped at --max-tcp + ${PENDING_SLACK}: the next raw connection is cut at once and counted busy`, async () => {
  const d = await startDaemon(["--port", "0", "--max-tcp", "1", "--metrics", "127.0.0.1:0", ...tlsArgs(liveFiles(first))]);
  const port = await tlsPortOf(d);
  const metrics = (await d.waitForLog(/metrics at (http:\S+)/))[1]!;
  const silent: TcpClient[] = [];
  try {
    for (let i = 0; i < 1 + PENDING_SLACK; i++) silent.push(await TcpClient.connect(port));
    const t0 = performance.now();
    // Cut, long before the 10 s handshake deadline; the reset can even beat connect() itself (ECONNRESET).
    const extra = await TcpClient.connect(port).catch((err: NodeJS.ErrnoException) => (err.code === "ECONNRESET" ? null : Promise.reject(err)));
    if (extra) expect((await extra.readToEnd(3000)).length).toBe(0);
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(sample(parseExposition((await scrape(metrics)).body), "epoll_echo_tcp_rejected_busy_total")).toBe(1);
    for (const s of silent.splice(0)) s.close();
    // Once the silent ones are gone, a real TLS client gets in.
    const deadline = performance.now() + 3000;
    let echoed = "";
    while (echoed === "" && performance.now() < deadline) {
      const c = await TcpClient.connectTls(port, { ca: first.cert }).catch(() => null);
      if (c === null) continue;
      c.send("after\n");
      echoed = (await c.read(6).catch(() => Buffer.alloc(0))).toString();
      c.close();
    }
    expect(echoed).toBe("after\n");
  } finally {
    for (const s of silent) s.close();
    expect(await d.stop()).toBe(0);
  }
});

test("/shutdown over TLS from loopback stops the server", async () => {
  const d = await startDaemon(["--port", "0", "--shutdown-token-file", tokenFile, ...tlsArgs(liveFiles(first))]);
  const port = await tlsPortOf(d);
  const c = await TcpClient.connectTls(port, { ca: first.cert });
  c.send(`/shutdown ${TOKEN}\n`);
  expect((await c.readToEnd()).toString()).toBe("OK, shutting down\n");
  expect(await d.exited).toBe(0);
});

test("a PROXY header before the handshake, from a listed peer, names the client", async () => {
  const d = await startDaemon(["--port", "0", "--proxy-protocol-from", "127.0.0.0/8", ...tlsArgs(liveFiles(first))]);
  const port = await tlsPortOf(d);
  try {
    for (const version of [1, 2] as const) {
      const header = encodeProxyHeader(version, { address: "203.0.113.5", port: 4000 + version }, { address: "127.0.0.1", port });
      const c = await TcpClient.connectTls(port, { ca: first.cert, before: header });
      c.send("/whoami\nhi\n");
      const want = `203.0.113.5 ${4000 + version}\nhi\n`;
      expect((await c.read(want.length)).toString()).toBe(want);
      c.close();
    }
  } finally {
    expect(await d.stop()).toBe(0);
  }
});

test("SIGHUP: new connections get the new certificate, open ones go on; unusable files keep the old one", async () => {
  const files = liveFiles(first);
  const d = await startDaemon(["--port", "0", ...tlsArgs(files)]);
  const port = await tlsPortOf(d);
  try {
    const old = await TcpClient.connectTls(port, { ca: first.cert });
    expect(old.peerCertificateSerial).toBe(first.serial);

    copyFileSync(second.certFile, files.certFile);
    copyFileSync(second.keyFile, files.keyFile);
    d.proc.kill("SIGHUP");
    await d.waitForLog(/TLS certificate and key reloaded.*tls_serial=2222/);
    const fresh = await TcpClient.connectTls(port, { ca: second.cert });
    expect(fresh.peerCertificateSerial).toBe(second.serial);
    old.send("old still echoes\n");
    expect((await old.read(17)).toString()).toBe("old still echoes\n");

    // A key that does not match the certificate, then a key readable by others: refused, the second pair stays.
    copyFileSync(first.keyFile, files.keyFile);
    d.proc.kill("SIGHUP");
    await d.waitForLog(/ERROR.*reloading TLS certificate and key failed.*do not belong together/);
    copyFileSync(second.keyFile, files.keyFile);
    chmodSync(files.keyFile, 0o644);
    d.proc.kill("SIGHUP");
    await d.waitForLog(/ERROR.*reloading TLS certificate and key failed.*chmod 600/);
    const after = await TcpClient.connectTls(port, { ca: second.cert });
    expect(after.peerCertificateSerial).toBe(second.serial);
    for (const c of [old, fresh, after]) c.close();
  } finally {
    expect(await d.stop()).toBe(0);
  }
});

describe("startup", () => {
  test("a key file readable by others, a missing file or a mismatched pair: exit 1, one line", () => {
    const open = liveFiles(first);
    chmodSync(open.keyFile, 0o640);
    const mismatched = liveFiles(first);
    copyFileSync(second.keyFile, mismatched.keyFile);
    const cases: [string[], RegExp][] = [
      [tlsArgs(open), /--tls-key .*: readable or writable by group or others \(mode 640\); chmod 600 it/],
      [["--tls-port", "0", "--tls-cert", join(dir, "nope.crt"), "--tls-key", first.keyFile], /--tls-cert .*nope\.crt: no such file/],
      [tlsArgs(mismatched), /TLS certificate and key do not belong together/],
    ];
    for (const [args, message] of cases) {
      const r = runBinary(["--port", "0", ...args]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toContain("    at ");
    }
  });

  test("$CREDENTIALS_DIRECTORY/tls.crt and tls.key take precedence over the files named", async () => {
    const creds = mkdtempSync(join(dir, "creds-"));
    copyFileSync(second.certFile, join(creds, "tls.crt"));
    copyFileSync(second.keyFile, join(creds, "tls.key"));
    const d = await startDaemon(["--port", "0", ...tlsArgs(liveFiles(first))], { env: { CREDENTIALS_DIRECTORY: creds } });
    try {
      const c = await TcpClient.connectTls(await tlsPortOf(d), { ca: second.cert });
      expect(c.peerCertificateSerial).toBe(second.serial);
      c.close();
    } finally {
      expect(await d.stop()).toBe(0);
    }
  });
});
