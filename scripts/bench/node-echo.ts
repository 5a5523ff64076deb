// What a TypeScript user would write without epoll-echo: node:net + node:dgram,
// line-aware (complete lines echoed per read, partial line carried), pausing
// on write backpressure. Run compiled, like the others (scripts/build.sh --entry).
//
// usage: node-echo --port N   prints "listening (TCP port=P, UDP port=Q)" on stderr.
import net from "node:net";
import dgram from "node:dgram";

const i = process.argv.indexOf("--port");
const port = i > 0 ? Number(process.argv[i + 1]) : 0;
const MAX_CARRY = 64 * 1024;

const server = net.createServer((socket) => {
  socket.setNoDelay(true);
  let pending: Buffer | null = null;
  socket.on("data", (chunk: Buffer) => {
    const buf = pending ? Buffer.concat([pending, chunk]) : chunk;
    pending = null;
    const end = buf.lastIndexOf(10) + 1;
    if (end < buf.length) {
      if (buf.length - end > MAX_CARRY) return void socket.destroy();
      pending = Buffer.from(buf.subarray(end));
    }
    if (end > 0 && !socket.write(buf.subarray(0, end))) socket.pause();
  });
  socket.on("drain", () => socket.resume());
  socket.on("error", () => {});
});

const udp = dgram.createSocket({ type: "udp6", ipv6Only: false });
udp.on("message", (msg, rinfo) => udp.send(msg, rinfo.port, rinfo.address));
udp.on("error", () => {});

server.listen({ host: "::", port }, () => {
  const tcpPort = (server.address() as net.AddressInfo).port;
  udp.bind(port === 0 ? 0 : port, "::", () => {
    console.error(`node-echo: listening (TCP port=${tcpPort}, UDP port=${udp.address().port})`);
  });
});
