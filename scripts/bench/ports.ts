// Pick a port for a server under test. Ports in the ephemeral range can carry
// TIME_WAIT leftovers of earlier client connections, which make some listeners
// (Bun's node:net) fail with EADDRINUSE, so servers get ports below it that no
// socket of any state uses (per /proc/net/{tcp,tcp6,udp,udp6}).
import { sockets } from "../../src/sys/procfs.ts";

function portsInUse(): Set<number> {
  return new Set([...sockets("tcp"), ...sockets("udp")].map((r) => r.port));
}

let next = 0;

/** A port in 20000–32767 unused by TCP and UDP, different on every call. */
export async function freePort(): Promise<number> {
  if (next === 0) next = 20000 + Math.floor(Math.random() * 12000);
  const used = portsInUse();
  for (let i = 0; i < 12768; i++) {
    const port = next;
    next = next >= 32767 ? 20000 : next + 1;
    if (used.has(port)) continue;
    try {
      const l = Bun.listen({ hostname: "::", port, socket: { data() {} } });
      l.stop(true);
      const u = await Bun.udpSocket({ hostname: "::", port });
      u.close();
      return port;
    } catch {}
  }
  throw new Error("no free port in 20000-32767");
}
