// Slowloris clients: each opens a connection, sends the start of a line
// (`prefix` bytes, no LF), then trickles one more byte every ~trickleMs and
// never finishes the line. Records when the server closes each connection.
//   args: { host, port, count, prefix, trickleMs, seed }
// Emits "connected", starts trickling at once, reports {cmd:"report"} -> "report",
// and on {cmd:"stop"} closes what is left and emits "result".
import type { Socket } from "bun";
import { args, emit, fatal, nextCommand, nowUs, onCommand, pool, Rng } from "./lib.ts";

const rng = new Rng(args.seed ?? 3);
interface Conn {
  socket: Socket<Conn>;
  openedUs: number;
  closedUs: number;
  trickled: number;
  received: number;
  timer: ReturnType<typeof setTimeout> | null;
}
const conns: Conn[] = [];
const prefix = new Uint8Array(args.prefix ?? 16).fill(0x61); // "aaaa..." never a command, never a LF
const one = new Uint8Array([0x62]);

function trickle(c: Conn): void {
  c.timer = setTimeout(
    () => {
      if (c.closedUs !== 0) return;
      if (c.socket.write(one) === 1) c.trickled++;
      trickle(c);
    },
    (args.trickleMs ?? 2000) * (0.75 + rng.next() / 2),
  );
}

let failed = 0;
await pool(Array.from({ length: args.count }), 100, async () => {
  const state = { openedUs: 0, closedUs: 0, trickled: 0, received: 0, timer: null } as unknown as Conn;
  try {
    const socket = await Bun.connect<Conn>({
      hostname: args.host ?? "127.0.0.1",
      port: args.port,
      data: state,
      allowHalfOpen: true,
      socket: {
        data: (s, d) => void (s.data.received += d.length),
        end: (s) => {
          if (s.data.closedUs === 0) s.data.closedUs = nowUs();
          s.end();
        },
        close: (s) => {
          if (s.data.closedUs === 0) s.data.closedUs = nowUs();
          if (s.data.timer) clearTimeout(s.data.timer);
        },
        error: () => {},
      },
    });
    state.socket = socket;
    state.openedUs = nowUs();
    socket.write(prefix);
    conns.push(state);
    trickle(state);
  } catch {
    failed++;
  }
});
if (failed > 0) fatal(`${failed} connections failed`);
emit("connected", { count: conns.length, firstOpenedUs: Math.min(...conns.map((c) => c.openedUs)) });

function summary() {
  const closed = conns.filter((c) => c.closedUs !== 0);
  const after = closed.map((c) => (c.closedUs - c.openedUs) / 1e6).sort((a, b) => a - b);
  return {
    open: conns.length - closed.length,
    closed: closed.length,
    minCloseAfterS: after[0] ?? -1,
    medianCloseAfterS: after[Math.floor(after.length / 2)] ?? -1,
    maxCloseAfterS: after[after.length - 1] ?? -1,
    bytesTrickled: conns.reduce((n, c) => n + c.trickled, 0),
    bytesReceived: conns.reduce((n, c) => n + c.received, 0),
  };
}
onCommand((m) => {
  if (m.cmd === "report") emit("report", summary());
});
await nextCommand("stop");
const result = summary();
for (const c of conns) {
  if (c.timer) clearTimeout(c.timer);
  if (c.closedUs === 0) c.socket.terminate();
}
emit("result", result);
process.exit(0);
