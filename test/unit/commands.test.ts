import { describe, expect, test } from "bun:test";
import { formatTime, runCommand, tokensEqual, type CommandContext } from "../../src/core/commands.ts";

const b = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
const text = (u: Uint8Array) => Buffer.from(u).toString("latin1");

const ctx = (over: Partial<CommandContext> = {}): CommandContext => ({
  transport: "tcp",
  peerIsLoopback: true,
  clientAddress: "::ffff:192.0.2.7",
  clientPort: 40123,
  instance: () => "edge-1",
  token: b("s3cret"),
  now: () => new Date(Date.UTC(2026, 0, 2, 3, 4, 5)),
  stats: () => [7, 2, 3],
  ...over,
});

function run(line: string, over: Partial<CommandContext> = {}) {
  const buf = b(line);
  return runCommand(buf, 0, buf.length, ctx(over));
}

describe("commands", () => {
  test("/time is UTC YYYY-MM-DD HH:MM:SS", () => {
    expect(text(run("/time").reply)).toBe("2026-01-02 03:04:05\n");
    expect(formatTime(new Date(Date.UTC(2026, 11, 31, 23, 59, 59)))).toBe("2026-12-31 23:59:59");
  });

  test("/stats lists total_clients tcp_connected_now udp_active", () => {
    expect(text(run("/stats").reply)).toBe("7 2 3\n");
  });

  test("/whoami is ADDRESS PORT: IPv4 as a dotted quad even when v4-mapped, IPv6 without brackets", () => {
    expect(text(run("/whoami").reply)).toBe("192.0.2.7 40123\n");
    expect(text(run("/whoami", { clientAddress: "10.0.0.1", clientPort: 1 }).reply)).toBe("10.0.0.1 1\n");
    expect(text(run("/whoami", { clientAddress: "2001:db8::1", clientPort: 65535 }).reply)).toBe("2001:db8::1 65535\n");
    expect(text(run("/whoami", { clientAddress: "::1", clientPort: 5, transport: "udp" }).reply)).toBe("::1 5\n");
    expect(run("/whoami").name).toBe("whoami");
  });

  test("/instance is the name and a bare LF; arguments are ignored like /time's", () => {
    const out = run("/instance");
    expect(text(out.reply)).toBe("edge-1\n");
    expect(out.name).toBe("instance");
    expect(text(run("/instance x", { instance: () => "a\"b" }).reply)).toBe('a"b\n');
  });

  test("unknown words, a bare slash and near misses are unknown-command", () => {
    for (const line of ["/", "/TIME", "/times", "/shutdownx", "/whoamI", "/instances", "/\x00", "/" + "x".repeat(5000)]) {
      const out = run(line);
      expect(text(out.reply)).toBe("ERR unknown-command\n");
      expect(out.name).toBe("unknown");
    }
  });

  test("/shutdown with the right token from loopback over TCP", () => {
    const out = run("/shutdown s3cret");
    expect(text(out.reply)).toBe("OK, shutting down\n");
    expect(out.shutdown).toBe(true);
  });

  test("spaces and tabs around the token are ignored", () => {
    expect(run("/shutdown \t s3cret\t ").shutdown).toBe(true);
    expect(run("/shutdown\ts3cret").shutdown).toBe(true);
  });

  test("refusals come in the documented order", () => {
    const refuse = (line: string, over: Partial<CommandContext>) => text(run(line, over).reply);
    // no argument beats everything else
    expect(refuse("/shutdown", { peerIsLoopback: false, token: null })).toBe("ERR shutdown-token-required\n");
    expect(refuse("/shutdown  \t", {})).toBe("ERR shutdown-token-required\n");
    expect(refuse("/shutdown x", { peerIsLoopback: false, token: null })).toBe("ERR shutdown-loopback-required\n");
    expect(refuse("/shutdown x", { token: null })).toBe("ERR shutdown-token-missing\n");
    expect(refuse("/shutdown s3cre", {})).toBe("ERR shutdown-token-invalid\n");
    expect(refuse("/shutdown s3cret!", {})).toBe("ERR shutdown-token-invalid\n");
    expect(refuse("/shutdown S3cret", {})).toBe("ERR shutdown-token-invalid\n");
    expect(refuse("/shutdown s3cret x", {})).toBe("ERR shutdown-token-invalid\n");
  });

  test("refusals are labelled for counters", () => {
    expect(run("/shutdown").rejected).toBe("token-required");
    expect(run("/shutdown x", { peerIsLoopback: false }).rejected).toBe("loopback-required");
    expect(run("/shutdown x", { token: null }).rejected).toBe("token-missing");
    expect(run("/shutdown x").rejected).toBe("token-invalid");
  });

  test("over UDP /shutdown is always refused, whatever follows", () => {
    for (const line of ["/shutdown", "/shutdown s3cret", "/shutdown   "]) {
      const out = run(line, { transport: "udp" });
      expect(text(out.reply)).toBe("ERR shutdown-not-allowed\n");
      expect(out.shutdown).toBeUndefined();
    }
  });

  test("token comparison handles different lengths", () => {
    expect(tokensEqual(b("abc"), b("abc"))).toBe(true);
    expect(tokensEqual(b("abc"), b("abcd"))).toBe(false);
    expect(tokensEqual(b(""), b("a"))).toBe(false);
  });
});
