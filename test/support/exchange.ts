// A one-shot exchange as a separate program, for clients that must run
// somewhere the test process is not (inside a network namespace):
//   bun exchange.ts tcp|udp|udp-connected HOST PORT PAYLOAD_HEX [TIMEOUT_MS [RETRY_MS]]
// TCP: sends the payload, half-closes, prints everything received (hex) once
// the server closes. UDP: sends one datagram, prints the reply (hex).
// udp-connected: the same from a connected socket, which the kernel gives
// only replies from HOST:PORT itself (as nc -u and most UDP clients do); with
// RETRY_MS it sends the datagram again every RETRY_MS until a reply comes.
// Exits 2 on a socket error, 3 on timeout.
import * as net from "node:net";
import * as dgram from "node:dgram";

const [proto, host, port, hex, timeout, retry] = process.argv.slice(2);
const payload = Buffer.from(hex ?? "", "hex");
const done = (data: Buffer) => {
  process.stdout.write(data.toString("hex") + "\n");
  process.exit(0);
};
const fail = (e: Error) => {
  process.stderr.write(`exchange: ${e.message}\n`);
  process.exit(2);
};
setTimeout(() => process.exit(3), Number(timeout ?? 5000)).unref();

if (proto === "udp-connected") {
  const sock = await Bun.udpSocket({
    hostname: host!.includes(":") ? "::" : "0.0.0.0",
    connect: { hostname: host!, port: Number(port) },
    // Bun calls error(err), unlike its typings (field notes).
    socket: { data: (_s, data) => done(Buffer.from(data)), error: (e) => fail(e as unknown as Error) },
  });
  sock.send(payload);
  if (retry) setInterval(() => sock.send(payload), Number(retry));
} else if (proto === "udp") {
  const sock = dgram.createSocket(host!.includes(":") ? "udp6" : "udp4");
  sock.on("message", done);
  sock.on("error", fail);
  sock.send(payload, Number(port), host!);
} else {
  const chunks: Buffer[] = [];
  const sock = net.connect({ host: host!, port: Number(port), allowHalfOpen: true }, () => sock.end(payload));
  sock.on("data", (d: Buffer) => chunks.push(d));
  sock.on("close", () => done(Buffer.concat(chunks)));
  sock.on("error", fail);
}
