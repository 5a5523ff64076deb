// Startup time to the first accepted connection: spawn the daemon on a free
// port, then connect to it in a tight loop; the time from spawn() until a
// line sent on the first successful connection comes back. Prints each run
// and the median.
//
//   bun scripts/deb/startup-time.ts [BINARY] [RUNS]     (defaults: ./epoll-echo 10)
//   EPOLL_ECHO_LAUNCHER="qemu-aarch64 -L /usr/aarch64-linux-gnu" runs the binary
//   through that command (as the e2e harness does), e.g. an arm64 build emulated.
import { createServer, connect } from "node:net";

const binary = process.argv[2] ?? "./epoll-echo";
const runs = Number(process.argv[3] ?? 10);
const launcher = (process.env.EPOLL_ECHO_LAUNCHER ?? "").split(" ").filter((w) => w !== "");

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves true once "ping\n" came back, false if the connection was refused. */
function tryEcho(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: "127.0.0.1" });
    let got = "";
    sock.once("error", () => resolve(false));
    sock.once("connect", () => sock.write("ping\n"));
    sock.on("data", (d) => {
      got += d.toString();
      if (got === "ping\n") {
        sock.destroy();
        resolve(true);
      }
    });
  });
}

async function once(): Promise<number> {
  const port = await freePort();
  const t0 = performance.now();
  const proc = Bun.spawn([...launcher, binary, "--port", String(port), "-q"], { stdin: "ignore", stdout: "ignore", stderr: "inherit" });
  try {
    for (;;) {
      if (await tryEcho(port)) return performance.now() - t0;
      if (performance.now() - t0 > 10_000) throw new Error("no echo within 10 s");
      await Bun.sleep(1);
    }
  } finally {
    proc.kill("SIGTERM");
    await proc.exited;
  }
}

await once(); // warm the page cache: the figures are for a warm start
const times: number[] = [];
for (let i = 0; i < runs; i++) {
  const ms = await once();
  times.push(ms);
  console.log(`run ${i + 1}: ${ms.toFixed(1)} ms`);
}
times.sort((a, b) => a - b);
const mid = times.length >> 1;
const median = times.length % 2 ? times[mid]! : (times[mid - 1]! + times[mid]!) / 2;
console.log(
  `startup to first echoed line (${[...launcher, binary].join(" ")}, ${runs} runs): median ${median.toFixed(1)} ms, min ${times[0]!.toFixed(1)} ms, max ${times[times.length - 1]!.toFixed(1)} ms`,
);
