// A one-shot TCP exchange as a separate program, for clients that must run
// somewhere the test process is not (inside a network namespace):
//   bun tcp-exchange.ts HOST PORT PAYLOAD_HEX [TIMEOUT_MS]
// Sends the payload, half-closes, prints everything received (hex) on stdout
// once the server closes, or exits 3 on timeout.
import * as net from "node:net";

const [host, port, hex, timeout] = process.argv.slice(2);
const chunks: Buffer[] = [];
const sock = net.connect({ host: host!, port: Number(port), allowHalfOpen: true }, () => {
  sock.end(Buffer.from(hex ?? "", "hex"));
});
sock.on("data", (d: Buffer) => chunks.push(d));
sock.on("close", () => {
  process.stdout.write(Buffer.concat(chunks).toString("hex") + "\n");
  process.exit(0);
});
sock.on("error", (e) => {
  process.stderr.write(`tcp-exchange: ${e.message}\n`);
  process.exit(2);
});
setTimeout(() => process.exit(3), Number(timeout ?? 5000)).unref();
