// LoadCredential=shutdown.token:... as systemd delivers it: a file named
// shutdown.token in $CREDENTIALS_DIRECTORY. /shutdown over TCP from loopback
// with that token stops the daemon (exit 0); a wrong one is refused; the token
// never reaches the log, even at -vv.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDaemon, type Daemon } from "../support/daemon.ts";
import { TcpClient } from "../support/net.ts";

const TOKEN = "cred-7Qx9-token-from-systemd";
let dir: string;
let daemon: Daemon | null = null;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "epoll-echo-cred-"));
  chmodSync(dir, 0o700);
  // systemd writes credentials read-only (0400); a trailing newline as `echo` leaves one.
  writeFileSync(join(dir, "shutdown.token"), TOKEN + "\n", { mode: 0o400 });
});
afterEach(async () => {
  if (daemon) await daemon.stop();
  daemon = null;
  rmSync(dir, { recursive: true, force: true });
});

test("the credential's token stops the daemon; a wrong one is refused", async () => {
  daemon = await startDaemon(["--port", "0", "-vv"], { env: { CREDENTIALS_DIRECTORY: dir } });
  const d = daemon;
  expect(d.stderr()).toMatch(/shutdown_token="credential shutdown.token"/);

  const wrong = await TcpClient.connect(d.tcpPort, "127.0.0.1");
  wrong.send(`/shutdown ${TOKEN}x\n`);
  expect((await wrong.read(27)).toString()).toBe("ERR shutdown-token-invalid\n");
  // Still serving on the same connection.
  wrong.send("echo\n");
  expect((await wrong.read(5)).toString()).toBe("echo\n");
  wrong.close();

  const right = await TcpClient.connect(d.tcpPort, "127.0.0.1");
  right.send(`/shutdown ${TOKEN}\n`);
  expect((await right.read(18)).toString()).toBe("OK, shutting down\n");
  expect(await d.exited).toBe(0);
  const log = d.stderr();
  expect(log).toMatch(/shutdown refused reason=token-invalid/);
  expect(log).toMatch(/shutdown requested/);
  expect(log).not.toContain(TOKEN);
  expect(log).not.toContain(TOKEN.slice(5, 15));
}, 20_000);

test("the credential wins over --shutdown-token-file", async () => {
  const other = join(dir, "other.token");
  writeFileSync(other, "file-token\n", { mode: 0o600 });
  daemon = await startDaemon(["--port", "0", "--shutdown-token-file", other], { env: { CREDENTIALS_DIRECTORY: dir } });
  const d = daemon;
  const c = await TcpClient.connect(d.tcpPort, "127.0.0.1");
  c.send("/shutdown file-token\n");
  expect((await c.read(27)).toString()).toBe("ERR shutdown-token-invalid\n");
  c.send(`/shutdown ${TOKEN}\n`);
  expect((await c.read(18)).toString()).toBe("OK, shutting down\n");
  expect(await d.exited).toBe(0);
}, 20_000);
