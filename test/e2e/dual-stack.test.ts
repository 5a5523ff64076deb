// Dual stack under net.ipv6.bindv6only=1 (a per-namespace setting, so it is
// set inside a private namespace). Bun clears IPV6_V6ONLY on its own "::"
// sockets (with or without SO_REUSEPORT), so one socket per protocol serves
// both families; src/server/bind.ts relies on it and does not check: these
// tests fail should a Bun release stop clearing it.
import { expect, test } from "bun:test";
import { startDaemon, LAUNCH } from "../support/daemon.ts";
import { createTestNetns, exchangeInNetns } from "../support/netns.ts";

for (const extra of [[], ["--reuse-port"]]) {
  test(`with net.ipv6.bindv6only=1${extra.length ? ` and ${extra.join(" ")}` : ""}, 127.0.0.1 and ::1 still reach both protocols on one port`, async () => {
    const ns = createTestNetns();
    if (typeof ns === "string") {
      console.log(`skipped: no network namespace (${ns})`);
      return;
    }
    try {
      const sysctl = Bun.spawnSync([...ns.exec, "sysctl", "-qw", "net.ipv6.bindv6only=1"]);
      expect(sysctl.exitCode).toBe(0);
      const d = await startDaemon(["--port", "0", ...extra], { command: [...ns.exec, ...LAUNCH] });
      try {
        for (const host of ["127.0.0.1", "::1"]) {
          expect(exchangeInNetns(ns, "tcp", host, d.tcpPort, "a\r\nb\n").toString()).toBe("a\r\nb\n");
          expect(exchangeInNetns(ns, "udp", host, d.udpPort, "dgram").toString()).toBe("dgram");
        }
      } finally {
        expect(await d.stop()).toBe(0);
      }
    } finally {
      ns.remove();
    }
  });
}
