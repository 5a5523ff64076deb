// What the per-address UDP sockets cost at startup (issue 13): time
// UdpSockets.start() cold (first ffi calls included) and again warm, over
// every local address of this machine. Compile it like the daemon, so the
// figures are those of the real binary's first start:
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
  const ms = performance.now() - t0;
  const n = sockets.sockets.length;
  sockets.close();
  return { ms, n };
};
const cold = await time();
const warm = await time();
console.log(`${cold.n} sockets: cold ${cold.ms.toFixed(2)} ms, warm ${warm.ms.toFixed(2)} ms`);
