import { describe, expect, test } from "bun:test";
import { parseCli } from "../../src/cli/server-command.ts";
import { serverUsage as usage } from "../../src/cli/help.ts";
import { DEFAULTS } from "../../src/core/config.ts";

function config(argv: string[]) {
  const r = parseCli(argv);
  if (r.kind !== "run") throw new Error(`expected a config, got ${JSON.stringify(r)}`);
  return r.config;
}
function error(argv: string[]) {
  const r = parseCli(argv);
  if (r.kind !== "error") throw new Error(`expected an error, got ${JSON.stringify(r)}`);
  return r.message;
}

describe("parseCli", () => {
  test("defaults", () => {
    expect(config([])).toEqual(DEFAULTS);
    expect(DEFAULTS).toMatchObject({ tcpPort: 12345, udpPort: 12345, maxTcp: 1024, backlog: 128, maxLine: 4096, maxDatagram: 65527, udpWindow: 60, idleTimeout: 0 });
  });

  test("--port sets both sides, --tcp-port/--udp-port override one", () => {
    expect(config(["--port", "7"])).toMatchObject({ tcpPort: 7, udpPort: 7 });
    expect(config(["--port=7", "--udp-port", "8"])).toMatchObject({ tcpPort: 7, udpPort: 8 });
    expect(config(["--tcp-port", "0"])).toMatchObject({ tcpPort: 0, udpPort: 12345 });
  });

  test("verbosity: -v, -vv, -v -v, --verbose, -q", () => {
    expect(config(["-v"]).verbosity).toBe(2);
    expect(config(["-vv"]).verbosity).toBe(3);
    expect(config(["-v", "-v"]).verbosity).toBe(3);
    expect(config(["--verbose"]).verbosity).toBe(2);
    expect(config(["-q"]).verbosity).toBe(0);
    expect(config([]).verbosity).toBe(1);
  });

  test("every numeric flag", () => {
    expect(
      config(["--max-tcp", "5", "--backlog", "9", "--max-line", "10", "--max-datagram", "11", "--udp-window", "12", "--idle-timeout", "13"]),
    ).toMatchObject({ maxTcp: 5, backlog: 9, maxLine: 10, maxDatagram: 11, udpWindow: 12, idleTimeout: 13 });
    expect(config(["--port", "0080", "--max-tcp", "1000000"])).toMatchObject({ tcpPort: 80, maxTcp: 1_000_000 });
  });

  test("other flags", () => {
    expect(config(["--log-format", "json"]).logFormat).toBe("json");
    expect(config(["--shutdown-token-file", "/x"]).shutdownTokenFile).toBe("/x");
    expect(config(["--udp-allow-low-ports"]).udpAllowLowPorts).toBe(true);
    expect(config([]).reusePort).toBe(false);
    expect(config(["--reuse-port"]).reusePort).toBe(true);
  });

  test("--listen: repeatable address literals, IPv6 with or without brackets; :: alone is the default", () => {
    expect(config([]).listen).toEqual([]);
    expect(config(["--listen", "127.0.0.1", "--listen=[::1]", "--listen", "fe80::1%eth0"]).listen).toEqual(["127.0.0.1", "::1", "fe80::1%eth0"]);
    expect(config(["--listen", "0.0.0.0"]).listen).toEqual(["0.0.0.0"]);
    expect(config(["--listen", "::"]).listen).toEqual([]);
    expect(config(["--listen", "[::]"]).listen).toEqual([]);
  });

  test("--instance: 1 to 64 printable ASCII characters, no spaces; none given = null (the hostname)", () => {
    expect(config([]).instance).toBeNull();
    expect(config(["--instance", "edge-1"]).instance).toBe("edge-1");
    expect(config(["--instance", "x".repeat(64)]).instance).toBe("x".repeat(64));
    expect(config(["--instance=a\"b/c:%"]).instance).toBe('a"b/c:%');
  });

  test("--proxy-protocol-from: a list of IPv4 and IPv6 prefixes", () => {
    expect(config([]).proxyProtocolFrom).toBeNull();
    const cidrs = config(["--proxy-protocol-from", "10.0.0.0/8, 2001:db8::/32,192.0.2.1"]).proxyProtocolFrom!;
    expect(cidrs.map((c) => c.bits)).toEqual([104, 32, 128]);
  });

  test("--tls-port, --tls-cert, --tls-key: all three or none", () => {
    expect(config([]).tls).toBeNull();
    expect(config(["--tls-port", "8443", "--tls-cert", "c.pem", "--tls-key", "k.pem"]).tls).toEqual({ port: 8443, certFile: "c.pem", keyFile: "k.pem" });
  });

  test("help and version", () => {
    expect(parseCli(["--help"]).kind).toBe("help");
    expect(parseCli(["-h"]).kind).toBe("help");
    expect(parseCli(["--version"]).kind).toBe("version");
  });

  test("bad input gives one line naming the flag", () => {
    const cases: [string[], string][] = [
      [["--bogus"], "unknown option --bogus"],
      [["-x"], "unknown option -x"],
      [["--port"], "--port: needs a value"],
      [["--port", "--max-tcp", "4"], "--port: needs a value"],
      [["--port", "abc"], '--port: expected a whole number from 0 to 65535, got "abc"'],
      [["--port", "65536"], "--port: 65536 is out of range (0 to 65535)"],
      [["--port", "99999999999999999999999"], "--port: 99999999999999999999999 is out of range (0 to 65535)"],
      [["--port="], '--port: expected a whole number from 0 to 65535, got ""'],
      [["--udp-port", "1.5"], '--udp-port: expected a whole number from 0 to 65535, got "1.5"'],
      [["--max-tcp", "0"], "--max-tcp: 0 is out of range (1 to 1000000)"],
      [["--max-tcp", "-3"], '--max-tcp: expected a whole number, got "-3"'],
      [["--backlog", "0"], "--backlog: 0 is out of range (1 to 65535)"],
      [["--max-line", "0"], "--max-line: 0 is out of range (1 to 1048576)"],
      [["--max-datagram", "70000"], "--max-datagram: 70000 is out of range (1 to 65527)"],
      [["--udp-window", "0"], "--udp-window: 0 is out of range (1 to 86400)"],
      [["--idle-timeout", "x"], '--idle-timeout: expected a whole number from 0 to 86400, got "x"'],
      [["--log-format", "xml"], '--log-format: expected "text" or "json", got "xml"'],
      [["--shutdown-token-file="], "--shutdown-token-file: needs a path"],
      [["--verbose=2"], "--verbose: takes no value"],
      [["--reuse-port=1"], "--reuse-port: takes no value"],
      [["--listen", "localhost"], '--listen: expected an IPv4 or IPv6 address, got "localhost"'],
      [["--listen", "10.0.0.1:80"], '--listen: expected an IPv4 or IPv6 address, got "10.0.0.1:80"'],
      [["--listen", "[10.0.0.1]"], '--listen: expected an IPv4 or IPv6 address, got "[10.0.0.1]"'],
      [["--listen", "::1", "--listen", "0:0::1"], "--listen: 0:0::1 is given twice"],
      [["--listen", "::", "--listen", "127.0.0.1"], "--listen: a wildcard address (0.0.0.0 or ::) already covers every other address; give it alone"],
      [Array.from({ length: 17 }, (_, i) => `--listen=127.0.0.${i + 1}`), "--listen: at most 16 addresses, got 17"],
      [["--instance="], '--instance: expected 1 to 64 printable ASCII characters without spaces, got ""'],
      [["--instance", "a b"], '--instance: expected 1 to 64 printable ASCII characters without spaces, got "a b"'],
      [["--instance", "x".repeat(65)], `--instance: expected 1 to 64 printable ASCII characters without spaces, got "${"x".repeat(65)}"`],
      [["--instance", "caf\u00e9"], '--instance: expected 1 to 64 printable ASCII characters without spaces, got "caf\u00e9"'],
      [["--instance", "a\tb"], '--instance: expected 1 to 64 printable ASCII characters without spaces, got "a\\tb"'],
      [["-q", "-v"], "--quiet and --verbose exclude each other"],
      [["--proxy-protocol-from", "10.0.0.0/33"], '--proxy-protocol-from: not an address prefix: "10.0.0.0/33"'],
      [["--proxy-protocol-from", "10.0.0.0/8,,::1"], '--proxy-protocol-from: not an address prefix: ""'],
      [["--tls-port", "8443"], "--tls-port, --tls-cert and --tls-key go together: give all three"],
      [["--tls-cert", "c", "--tls-key", "k"], "--tls-port, --tls-cert and --tls-key go together: give all three"],
      [["--tls-port", "70000", "--tls-cert", "c", "--tls-key", "k"], "--tls-port: 70000 is out of range (0 to 65535)"],
      [["--tls-port", "1", "--tls-cert=", "--tls-key", "k"], "--tls-cert: needs a path"],
      [["serve"], "unexpected argument serve (this command takes only options)"],
    ];
    for (const [argv, message] of cases) {
      expect(error(argv)).toBe(message);
      expect(message).not.toContain("\n");
    }
  });

  test("usage lists every flag with its default, without colour codes", async () => {
    const text = await usage();
    for (const flag of ["--listen", "--reuse-port", "--port", "--tcp-port", "--udp-port", "--max-tcp", "--backlog", "--max-line", "--max-datagram", "--udp-window", "--idle-timeout", "--instance", "--proxy-protocol-from", "--tls-port", "--tls-cert", "--tls-key", "--shutdown-token-file", "--log-format", "--verbose", "--quiet", "--help", "--version"]) {
      expect(text).toContain(flag);
    }
    expect(text).toContain("(Default: 12345)");
    expect(text).toContain("(Default: 1024)");
    expect(text).not.toContain("\x1b[");
  });
});
