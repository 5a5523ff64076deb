// When the local addresses cannot be listed (getifaddrs fails, e.g. in a
// sandbox without AF_NETLINK), UDP still starts: one wildcard socket, dual
// stack, with a warning, and no re-scans. Real sockets, the server's own
// UdpSockets with a failing address lister.
import { expect, test } from "bun:test";
import { UdpSockets } from "../../src/server/udp-sockets.ts";
import type { Logger } from "../../src/sys/log.ts";
import { udpRequest } from "../support/net.ts";
import type { udp } from "bun";

test("getifaddrs failing: one dual-stack wildcard socket answers IPv4 and IPv6, with a warning", async () => {
  const warnings: string[] = [];
  const infos: string[] = [];
  const log = { warn: (m: string) => warnings.push(m), info: (m: string) => infos.push(m), debug() {}, error() {}, trace() {}, debugOn: false, traceOn: false } as unknown as Logger;
  const handlers = {
    data: (s: udp.Socket<"uint8array">, data: Uint8Array, port: number, address: string) => void s.send(data, port, address),
  };
  const sockets = new UdpSockets({ plan: { kind: "scan", ipv4Only: false }, handlers, log, reusePort: false, listAddresses: () => -97 });
  await sockets.start(0);
  try {
    expect(sockets.sockets.length).toBe(1);
    expect(warnings).toEqual([
      "cannot read the local addresses (getifaddrs)",
      "UDP on the wildcard :: only: a reply to a secondary address may leave from another one",
    ]);
    expect(infos).toEqual(["UDP addresses: ::"]);
    for (const host of ["127.0.0.1", "::1"]) expect((await udpRequest(sockets.port, "x", host)).toString()).toBe("x");
    await sockets.rescan();
    expect(warnings.length).toBe(2);
  } finally {
    sockets.close();
  }
});
