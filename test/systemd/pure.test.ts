// Unit tests of the pure parts of src/systemd/: LISTEN_* parsing, descriptor
// classification, TCP_INFO backlog decoding, NOTIFY_SOCKET address encoding,
// the watchdog interval and the status line. No sockets, no processes.
import { describe, expect, test } from "bun:test";
import { backlogFromTcpInfo, classify, parseListenFds, takeListenFds } from "../../src/systemd/socket-activation.ts";
import { encodeNotifyAddress, NotifyAddressError, statusLine, watchdogPlan } from "../../src/systemd/notify.ts";
import { createLogger } from "../../src/sys/log.ts";

const PID = 4242;

describe("parseListenFds", () => {
  test("nothing set: nothing passed, nothing to say", () => {
    expect(parseListenFds({}, PID)).toEqual({ fds: [] });
  });
  test("our pid: descriptors from 3, names from LISTEN_FDNAMES", () => {
    expect(parseListenFds({ LISTEN_PID: "4242", LISTEN_FDS: "3", LISTEN_FDNAMES: "web:dns:" }, PID)).toEqual({
      fds: [
        { fd: 3, name: "web" },
        { fd: 4, name: "dns" },
        { fd: 5, name: "unknown" },
      ],
    });
  });
  test("no LISTEN_FDNAMES: every name is 'unknown'", () => {
    expect(parseListenFds({ LISTEN_PID: "4242", LISTEN_FDS: "1" }, PID).fds).toEqual([{ fd: 3, name: "unknown" }]);
  });
  test("a name count that does not match is ignored, with a note", () => {
    const r = parseListenFds({ LISTEN_PID: "4242", LISTEN_FDS: "2", LISTEN_FDNAMES: "only-one" }, PID);
    expect(r.fds.map((f) => f.name)).toEqual(["unknown", "unknown"]);
    expect(r.note).toBe("LISTEN_FDNAMES has 1 names for 2 descriptors: ignored");
  });
  test("LISTEN_FDS=0 passes nothing", () => {
    expect(parseListenFds({ LISTEN_PID: "4242", LISTEN_FDS: "0" }, PID)).toEqual({ fds: [] });
  });
  test("another process's variables are not ours", () => {
    const r = parseListenFds({ LISTEN_PID: "1", LISTEN_FDS: "2" }, PID);
    expect(r.fds).toEqual([]);
    expect(r.note).toBe("LISTEN_PID=1 is another process (we are 4242)");
  });
  test.each([
    [{ LISTEN_FDS: "2" }, 'LISTEN_PID="" is not a process id'],
    [{ LISTEN_PID: "42x", LISTEN_FDS: "2" }, 'LISTEN_PID="42x" is not a process id'],
    [{ LISTEN_PID: "4242" }, 'LISTEN_FDS="" is not a descriptor count'],
    [{ LISTEN_PID: "4242", LISTEN_FDS: "-1" }, 'LISTEN_FDS="-1" is not a descriptor count'],
    [{ LISTEN_PID: "4242", LISTEN_FDS: "99999" }, 'LISTEN_FDS="99999" is not a descriptor count'],
  ])("garbage %o is refused", (env, note) => {
    expect(parseListenFds(env, PID)).toEqual({ fds: [], note });
  });
});

describe("takeListenFds", () => {
  test("removes LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, whoever they were for", () => {
    const lines: string[] = [];
    const log = createLogger({ output: "text", verbosity: 1, write: (l) => lines.push(l) });
    const env: Record<string, string | undefined> = { LISTEN_PID: "1", LISTEN_FDS: "1", LISTEN_FDNAMES: "x", KEEP: "y" };
    expect(takeListenFds(env, PID, log)).toBeUndefined();
    expect(env).toEqual({ KEEP: "y" });
    expect(lines.join("")).toContain("LISTEN_PID=1 is another process");
  });
});

describe("classify", () => {
  const AF_UNIX = 1;
  const AF_INET = 2;
  const AF_INET6 = 10;
  test("listening TCP on either family -> tcp; UDP -> udp", () => {
    expect(classify({ type: 1, family: AF_INET6, listening: true })).toEqual({ use: "tcp" });
    expect(classify({ type: 1, family: AF_INET, listening: true })).toEqual({ use: "tcp" });
    expect(classify({ type: 2, family: AF_INET6, listening: false })).toEqual({ use: "udp" });
    expect(classify({ type: 2, family: AF_INET, listening: false })).toEqual({ use: "udp" });
  });
  test("everything else is closed, with a reason", () => {
    expect(classify({ type: -88, family: -1, listening: false })).toEqual({ use: "close", why: "not a socket" });
    expect(classify({ type: 1, family: AF_UNIX, listening: true })).toEqual({ use: "close", why: "AF_UNIX stream socket, not TCP or UDP" });
    expect(classify({ type: 2, family: AF_UNIX, listening: false })).toEqual({ use: "close", why: "AF_UNIX datagram socket, not TCP or UDP" });
    expect(classify({ type: 5, family: AF_INET6, listening: true })).toEqual({ use: "close", why: "seqpacket socket, not TCP or UDP" });
    expect(classify({ type: 1, family: AF_INET6, listening: false })).toEqual({
      use: "close",
      why: "connected stream socket (Accept=yes is not supported)",
    });
  });
  test("a descriptor that is not open is left alone", () => {
    expect(classify({ type: -9, family: -1, listening: false })).toEqual({ use: "skip", why: "not an open descriptor" });
  });
});

test("backlogFromTcpInfo reads tcpi_sacked (the listener's max backlog)", () => {
  const info = new Uint8Array(104);
  new DataView(info.buffer).setUint32(28, 4096, true);
  expect(backlogFromTcpInfo(info)).toBe(4096);
  expect(backlogFromTcpInfo(info.subarray(0, 31))).toBeNull();
});

describe("encodeNotifyAddress", () => {
  const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");
  test("a path: family, path, one trailing NUL", () => {
    const a = encodeNotifyAddress("/run/systemd/notify");
    expect([...a.subarray(0, 2)]).toEqual([1, 0]); // AF_UNIX, little-endian host
    expect(text(a.subarray(2))).toBe("/run/systemd/notify\0");
    expect(a.length).toBe(2 + 19 + 1);
  });
  test("@name: family, leading NUL, the name, no trailing NUL", () => {
    const a = encodeNotifyAddress("@sd-notify/42");
    expect(text(a.subarray(2))).toBe("\0sd-notify/42");
    expect(a.length).toBe(2 + 1 + 12);
  });
  test("non-ASCII names are UTF-8", () => {
    expect([...encodeNotifyAddress("@é").subarray(2)]).toEqual([0, 0xc3, 0xa9]);
  });
  test("sun_path holds 108 bytes: 107 + NUL, or NUL + 107", () => {
    expect(encodeNotifyAddress("/" + "a".repeat(106)).length).toBe(110);
    expect(encodeNotifyAddress("@" + "a".repeat(107)).length).toBe(110);
    expect(() => encodeNotifyAddress("/" + "a".repeat(107))).toThrow(NotifyAddressError);
    expect(() => encodeNotifyAddress("@" + "a".repeat(108))).toThrow(/too long/);
  });
  test("relative paths and an empty @ are refused", () => {
    expect(() => encodeNotifyAddress("run/notify")).toThrow(/neither an absolute path nor an @abstract name/);
    expect(() => encodeNotifyAddress("@")).toThrow(/empty name/);
    expect(() => encodeNotifyAddress("vsock:2:1234")).toThrow(NotifyAddressError);
  });
});

describe("watchdogPlan", () => {
  test("off without WATCHDOG_USEC", () => {
    expect(watchdogPlan({}, PID)).toEqual({ kind: "off" });
  });
  test("half the timeout, in ms", () => {
    expect(watchdogPlan({ WATCHDOG_USEC: "30000000" }, PID)).toEqual({ kind: "on", intervalMs: 15000 });
    expect(watchdogPlan({ WATCHDOG_USEC: "200000", WATCHDOG_PID: "4242" }, PID)).toEqual({ kind: "on", intervalMs: 100 });
    expect(watchdogPlan({ WATCHDOG_USEC: "1500" }, PID)).toEqual({ kind: "on", intervalMs: 1 }); // never 0
  });
  test("another process's watchdog is not ours", () => {
    expect(watchdogPlan({ WATCHDOG_USEC: "200000", WATCHDOG_PID: "1" }, PID)).toEqual({
      kind: "off",
      why: "WATCHDOG_PID=1 is another process",
    });
  });
  test.each(["0", "abc", "-5", ""])("WATCHDOG_USEC=%p is invalid", (v) => {
    expect(watchdogPlan({ WATCHDOG_USEC: v }, PID).kind).toBe("invalid");
  });
});

test("statusLine is one line with the instance, clients, peers, lines and datagrams", () => {
  expect(statusLine({ instance: "edge-1", tcpClients: 3, udpPeers: 2, lines: 10, datagrams: 7 })).toBe(
    "edge-1: 3 TCP clients, 2 UDP peers, 10 lines and 7 datagrams echoed",
  );
});
