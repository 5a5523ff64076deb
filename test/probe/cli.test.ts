import { describe, expect, test } from "bun:test";
import { UsageError } from "../../src/cli/argv.ts";
import { parseHostPort } from "../../src/cli/values.ts";
import { parseProbeCli, type ProbeOptions } from "../../src/cli/probe-command.ts";
import { probeUsage } from "../../src/cli/help.ts";

function options(argv: string[]): ProbeOptions {
  const r = parseProbeCli(argv);
  if (r.kind !== "run") throw new Error(`expected options, got ${JSON.stringify(r)}`);
  return r.options;
}
function error(argv: string[]): string {
  const r = parseProbeCli(argv);
  if (r.kind !== "error") throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  return r.message;
}

describe("parseHostPort", () => {
  const target = (raw: string) => parseHostPort("target", raw, { defaultPort: 12345, minPort: 1 });
  const listen = (raw: string) => parseHostPort("--metrics", raw, { defaultPort: null, minPort: 0 });

  test("host names, IPv4, bracketed and bare IPv6", () => {
    expect(target("localhost")).toEqual({ host: "localhost", port: 12345 });
    expect(target("echo.example.org:7")).toEqual({ host: "echo.example.org", port: 7 });
    expect(target("127.0.0.1:12346")).toEqual({ host: "127.0.0.1", port: 12346 });
    expect(target("[::1]:12345")).toEqual({ host: "::1", port: 12345 });
    expect(target("[::1]")).toEqual({ host: "::1", port: 12345 });
    expect(target("::1")).toEqual({ host: "::1", port: 12345 });
    expect(listen("[::]:0")).toEqual({ host: "::", port: 0 });
    expect(listen("0.0.0.0:9712")).toEqual({ host: "0.0.0.0", port: 9712 });
  });

  test("one-line errors naming the flag", () => {
    const cases: [() => unknown, string][] = [
      [() => listen("127.0.0.1"), '--metrics: expected ADDR:PORT (the port is missing), got "127.0.0.1"'],
      [() => listen("[::1]"), '--metrics: expected ADDR:PORT (the port is missing), got "[::1]"'],
      [() => listen("::1"), '--metrics: expected ADDR:PORT (IPv6 in brackets: [::1]:PORT), got "::1"'],
      [() => listen("::1:9712x"), '--metrics: expected ADDR:PORT (IPv6 in brackets, e.g. [::1]:12345), got "::1:9712x"'],
      [() => listen("[nope]:1"), '--metrics: expected an IPv6 address inside the brackets, got "[nope]:1"'],
      [() => listen(":9712"), '--metrics: expected ADDR:PORT with a host name or address, got ":9712"'],
      [() => listen("a b:1"), '--metrics: expected ADDR:PORT with a host name or address, got "a b:1"'],
      [() => listen("127.0.0.1:65536"), "--metrics port: 65536 is out of range (0 to 65535)"],
      [() => listen("127.0.0.1:x"), '--metrics port: expected a whole number from 0 to 65535, got "x"'],
      [() => listen("127.0.0.1:"), '--metrics port: expected a whole number from 0 to 65535, got ""'],
      [() => target("host:0"), "target port: 0 is out of range (1 to 65535)"],
      [() => target("-x"), 'target: expected HOST[:PORT] with a host name or address, got "-x"'],
    ];
    for (const [f, message] of cases) {
      let thrown: unknown = null;
      try {
        f();
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(UsageError);
      expect((thrown as Error).message).toBe(message);
      expect(message).not.toContain("\n");
    }
  });
});

describe("parseProbeCli", () => {
  test("defaults: ping mode, TCP, port 12345", () => {
    expect(options(["localhost"])).toEqual({
      host: "localhost",
      port: 12345,
      udp: false,
      tls: null,
      proxy: null,
      json: false,
      size: 64,
      timeoutMs: 2000,
      mode: { kind: "ping", count: 5, intervalMs: 1000 },
    });
  });

  test("every flag", () => {
    expect(options(["[::1]:7", "--udp", "--count", "3", "--interval", "0", "--size", "11", "--timeout", "50", "--json"])).toEqual({
      host: "::1",
      port: 7,
      udp: true,
      tls: null,
      proxy: null,
      json: true,
      size: 11,
      timeoutMs: 50,
      mode: { kind: "ping", count: 3, intervalMs: 0 },
    });
    expect(options(["h", "--load", "--connections", "8", "--pipeline", "32", "--duration", "0.5", "--size", "128"]).mode).toEqual({
      kind: "load",
      connections: 8,
      pipeline: 32,
      durationMs: 500,
    });
    expect(options(["h", "--load"]).mode).toEqual({ kind: "load", connections: 4, pipeline: 16, durationMs: 10_000 });
    expect(options(["h", "--command", "/stats", "--udp"]).mode).toEqual({ kind: "command", command: "/stats" });
    expect(options(["h", "--command=/shutdown now"]).mode).toEqual({ kind: "command", command: "/shutdown now" });
    expect(options(["h", "--tls", "--ca", "ca.pem", "--proxy", "v2"])).toMatchObject({ tls: { caFile: "ca.pem" }, proxy: 2 });
    expect(options(["h", "--tls", "--insecure", "--load"])).toMatchObject({ tls: { caFile: null }, proxy: null });
    expect(options(["h", "--proxy", "v1", "--command", "/whoami"])).toMatchObject({ tls: null, proxy: 1, mode: { kind: "command", command: "/whoami" } });
  });

  test("help", () => {
    expect(parseProbeCli(["--help"]).kind).toBe("help");
    expect(parseProbeCli(["host", "-h"]).kind).toBe("help");
  });

  test("bad input gives one line naming the flag", () => {
    const cases: [string[], string][] = [
      [[], "missing HOST[:PORT] (the server to probe)"],
      [["a", "b"], "unexpected argument b (one HOST[:PORT] only)"],
      [["h", "--bogus"], "unknown option --bogus"],
      [["h", "--count"], "--count: needs a value"],
      [["h", "--count", "0"], "--count: 0 is out of range (1 to 1000000)"],
      [["h", "--count", "-1"], '--count: expected a whole number, got "-1"'],
      [["h", "--interval", "x"], '--interval: expected a whole number from 0 to 3600000, got "x"'],
      [["h", "--size", "10"], "--size: 10 is out of range (11 to 1048577)"],
      [["h", "--udp", "--size", "65528"], "--size: 65528 is out of range (11 to 65527)"],
      [["h", "--timeout", "0"], "--timeout: 0 is out of range (1 to 3600000)"],
      [["h", "--udp=yes"], "--udp: takes no value"],
      [["h", "--connections", "2"], "--connections: only with --load"],
      [["h", "--duration", "1"], "--duration: only with --load"],
      [["h", "--load", "--count", "2"], "--count: not used with --load"],
      [["h", "--load", "--duration", "0"], "--duration: 0 is out of range (more than 0, at most 86400)"],
      [["h", "--load", "--duration", "1s"], '--duration: expected seconds (e.g. 10 or 0.5), got "1s"'],
      [["h", "--load", "--pipeline", "0"], "--pipeline: 0 is out of range (1 to 65536)"],
      [["h", "--command", "stats"], '--command: expected a command such as /stats or /time, got "stats"'],
      [["h", "--command", "/"], '--command: expected a command such as /stats or /time, got "/"'],
      [["h", "--command", "/a\nb"], "--command: must be one line"],
      [["h", "--command", "/stats", "--load"], "--load: not used with --command"],
      [["h:99999"], "target port: 99999 is out of range (1 to 65535)"],
      [["h", "--tls"], "--tls: give --ca FILE to verify the server, or --insecure"],
      [["h", "--tls", "--ca", "x", "--insecure"], "--ca and --insecure exclude each other"],
      [["h", "--tls", "--ca="], "--ca: needs a path"],
      [["h", "--ca", "x"], "--ca: only with --tls"],
      [["h", "--insecure"], "--insecure: only with --tls"],
      [["h", "--tls", "--insecure", "--udp"], "--tls: not with --udp"],
      [["h", "--proxy", "v3"], '--proxy: expected "v1" or "v2", got "v3"'],
      [["h", "--proxy", "v1", "--udp"], "--proxy: not with --udp (PROXY headers are for TCP)"],
    ];
    for (const [argv, message] of cases) {
      expect(error(argv)).toBe(message);
      expect(message).not.toContain("\n");
    }
  });

  test("usage lists every flag with its default, and examples", async () => {
    const text = await probeUsage();
    for (const flag of ["--udp", "--count", "--interval", "--size", "--timeout", "--json", "--load", "--connections", "--pipeline", "--duration", "--command", "--help"]) {
      expect(text).toContain(flag);
    }
    expect(text).toContain("USAGE epoll-echo probe [OPTIONS] <TARGET>");
    expect(text).toContain("(Default: 5)");
    expect(text).toContain("EXAMPLES");
    expect(text).not.toContain("\x1b[");
  });
});
