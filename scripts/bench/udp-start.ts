// What the UDP sockets cost (issues 13 and 15): UdpSockets.start(), which
// binds the one wildcard socket before the server is ready, and the first
// rescan(), which lists the local addresses and binds a socket for each just
// after the server is serving; each cold (first ffi calls included) and again
// warm, over every local address of this machine. Compile it like the
// daemon, so the figures are those of the real binary's first start:
//   bun build --compile --bytecode --format=esm scripts/bench/udp-start.ts --outfile /tmp/udp-start
//   for i in $(seq 10); do /tmp/udp-start; done
import { UdpSockets } from "../../src/server/udp-sockets.ts";
import { createLogger } from "../../src/sys/log.ts";

const log = createLogger({ output: "text", verbosity: 0, colour: false });
const handlers = { data() {} };
const time = async () => {
  const sockets = new UdpSockets({ plan: { kind: "scan", ipv4Only: false }, handlers, log, reusePort: false });
  const t0 = performance.now();
  await sockets.start(0);
  const t1 = performance.now();
  await sockets.rescan();
  const t2 = performance.now();
  const n = sockets.sockets.length;
  sockets.close();
  return { start: t1 - t0, scan: t2 - t1, n };
};
const cold = await time();
const warm = await time();
const ms = (x: number) => `${x.toFixed(2)} ms`;
console.log(`${cold.n} sockets: start (wildcard) cold ${ms(cold.start)}, warm ${ms(warm.start)}; first rescan (per address) cold ${ms(cold.scan)}, warm ${ms(warm.scan)}`);
