// When the local addresses cannot be listed (getifaddrs fails, e.g. in a
// sandbox without AF_NETLINK), UDP still works: the dual-stack wildcard bound
// at start answers alone, with one warning, and its datagrams ask for no
// rescans. Real sockets, the server's own UdpSockets with a failing address
// lister.
import { expect, test } from "bun:test";
import { RESCAN_GAP_MS, UdpSockets } from "../../src/server/udp-sockets.ts";
import type { Logger } from "../../src/sys/log.ts";
import { udpRequest } from "../support/net.ts";
import type { udp } from "bun";

test("getifaddrs failing: the dual-stack wildcard answers IPv4 and IPv6 alone, with a warning once", async () => {
  const warnings: string[] = [];
  const infos: string[] = [];
  let warned!: () => void;
  const fellBack = new Promise<void>((resolve) => (warned = resolve));
  const warn = (m: string) => {
    warnings.push(m);
    if (m.startsWith("UDP on the wildcard")) warned();
  };
  const log = { warn, info: (m: string) => infos.push(m), debug() {}, error() {}, trace() {}, debugOn: false, traceOn: false } as unknown as Logger;
  const handlers = {
    data: (s: udp.Socket<"uint8array">, data: Uint8Array, port: number, address: string) => void s.send(data, port, address),
  };
  let listed = 0;
  const sockets = new UdpSockets({ plan: { kind: "scan", ipv4Only: false }, handlers, log, reusePort: false, listAddresses: () => (listed++, -97) });
  await sockets.start(0);
  try {
    await fellBack; // the first scan, scheduled by start
    expect(listed).toBe(1);
    expect(sockets.sockets.length).toBe(1);
    expect(warnings).toEqual([
      "cannot read the local addresses (getifaddrs)",
      "UDP on the wildcard :: only: a reply to a secondary address may leave from another one",
    ]);
    expect(infos).toEqual([]);
    for (const host of ["127.0.0.1", "::1"]) expect((await udpRequest(sockets.port, "x", host)).toString()).toBe("x");
    // A rescan they asked for would have run within the gap: none did.
    await Bun.sleep(RESCAN_GAP_MS + 200);
    expect(listed).toBe(1);
    await sockets.rescan(); // SIGHUP tries again; the warning is not repeated
    expect(listed).toBe(2);
    expect(warnings.length).toBe(2);
  } finally {
    sockets.close();
  }
});
