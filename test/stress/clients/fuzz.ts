// Seeded, time-bounded fuzzing of both transports against a model of the
// protocol built from the server's own pure modules: the LineFramer
// (src/core/framing.ts) fed the whole byte stream at once, runCommand
// (src/core/commands.ts) for command replies, plus the connection rules around
// them (close after a second overlong line in a row or after the 5th refused
// /shutdown; at EOF an unterminated last line is answered). The server gets
// the same bytes cut into random segments with random pauses, so its reads
// split lines anywhere; its replies must equal the model's byte for byte.
//   args: { port, udpPort, seed, durationMs, workers, maxLine, maxDatagram, token }
// Emits "result".
import { args, emit, Rng } from "./lib.ts";
import { concat, firstDifference, hexAround, runTcp } from "./tcp-exchange.ts";
import * as raw from "../../support/rawsock.ts";
import { LineFramer } from "../../../src/core/framing.ts";
import { fixedReply, runCommand, type CommandContext } from "../../../src/core/commands.ts";

const MAX_REFUSALS = 5;
const maxLine: number = args.maxLine;
const maxDatagram: number = args.maxDatagram;
const enc = new TextEncoder();
const token = enc.encode(args.token);

class Deterministic extends Error {}

function ctx(transport: "tcp" | "udp"): CommandContext {
  return {
    transport,
    peerIsLoopback: true,
    get clientAddress(): string {
      throw new Deterministic("/whoami");
    },
    clientPort: 0,
    instance: () => {
      throw new Deterministic("/instance");
    },
    token,
    now: () => {
      throw new Deterministic("/time");
    },
    stats: () => {
      throw new Deterministic("/stats");
    },
  };
}

/** The model: what the server must send back for this whole TCP stream, and whether it closes early. */
function modelTcp(stream: Uint8Array): { reply: Uint8Array; closesEarly: boolean } {
  const out: Uint8Array[] = [];
  let refusals = 0;
  let stopped = false;
  const framer = new LineFramer(maxLine);
  const sink = {
    echo(b: Uint8Array, s: number, e: number) {
      if (!stopped) out.push(b.slice(s, e));
    },
    command(b: Uint8Array, s: number, e: number) {
      if (stopped) return;
      const o = runCommand(b, s, e, ctx("tcp"));
      if (o.shutdown) throw new Deterministic("the right token");
      out.push(o.reply);
      if (o.rejected && ++refusals >= MAX_REFUSALS) stopped = true;
    },
    overflow() {
      if (!stopped) out.push(fixedReply("tooLong"));
    },
  };
  framer.push(stream, sink);
  if (!framer.closed && !stopped) framer.finish(sink);
  return { reply: concat(out), closesEarly: framer.closed || stopped };
}

function modelUdp(d: Uint8Array): Uint8Array {
  if (d.length > maxDatagram) return fixedReply("truncated");
  if (d[0] !== 0x2f) return d;
  let end = d.length;
  if (end > 0 && d[end - 1] === 0x0a) end--;
  if (end > 0 && d[end - 1] === 0x0d) end--;
  const o = runCommand(d, 0, end, ctx("udp"));
  return o.reply;
}

const SPECIAL = [0x0a, 0x0d, 0x2f, 0x00, 0x20, 0x09, 0xff, 0x80, 0x0b, 0x0c];
function randomBytes(r: Rng, n: number): number[] {
  const b: number[] = [];
  for (let i = 0; i < n; i++) b.push(r.next() < 0.3 ? r.pick(SPECIAL) : r.int(0, 255));
  return b;
}
const printable = (r: Rng, n: number) => Array.from({ length: n }, () => r.int(0x21, 0x7e));
const bytesOf = (s: string) => Array.from(enc.encode(s));

/** One atom of a case: a piece of hostile input. */
function atom(r: Rng): number[] {
  const wrong = args.token.slice(0, r.int(0, args.token.length)) + String.fromCharCode(r.int(0x21, 0x7e));
  switch (r.int(0, 21)) {
    case 0:
    case 1:
    case 2:
      return randomBytes(r, r.int(0, 200));
    case 3:
      return [0x00, 0x0a]; // NUL line
    case 4:
      return [0x0d]; // lone CR
    case 5:
      return [...printable(r, r.int(0, 10)), 0x0d, 0x0d, 0x0a]; // CR CR LF
    case 6:
      return [...printable(r, maxLine), 0x0a]; // exactly max-line
    case 7:
      return [...printable(r, maxLine + 1), 0x0a]; // max-line + 1
    case 8:
      return [...printable(r, maxLine - 1), 0x0d, 0x0a]; // max-line with its CR
    case 9:
      return [...printable(r, maxLine), 0x0d, 0x0a]; // one over, counting the CR
    case 10:
      return bytesOf("/\n"); // "/" alone
    case 11:
      return bytesOf(`/shutdown${r.pick([" ", "\t", " \t ", "\t\t"])}${wrong}${r.pick(["", " ", "\t", " \t"])}${r.pick(["\n", "\r\n"])}`);
    case 12:
      return bytesOf(r.pick(["/shutdown\n", "/shutdown \t \n", "/shutdown\r\n"]));
    case 13:
      return [...bytesOf("/shutdown "), ...printable(r, r.int(maxLine - 20, maxLine + 20)), 0x0a]; // very long argument
    case 14:
      return [0x2f, ...printable(r, r.int(1, 30)), 0x0a]; // unknown command
    case 15:
      return [0x2f, ...printable(r, 5), 0x20, ...randomBytes(r, r.int(0, maxLine))];
    case 16:
      return [...printable(r, maxLine * 3), 0x0a]; // far too long
    case 17:
      return [...printable(r, maxLine + 5), 0x0a, ...printable(r, maxLine + 5), 0x0a]; // two overlong in a row
    case 18:
      return bytesOf(r.pick([" /shutdown x\n", "x/shutdown\n", "/SHUTDOWN x\n", "/shutdownx\n", "/ shutdown\n"]));
    default:
      return [...printable(r, r.int(0, 80)), r.pick([0x0a, 0x0a, 0x0a, 0x0d])];
  }
}

/** A TCP case: a few atoms; null when the model cannot predict it (/time, /stats). */
function tcpCase(r: Rng): { stream: Uint8Array; reply: Uint8Array; closesEarly: boolean } | null {
  const parts: number[] = [];
  for (let n = r.int(1, 12); n > 0; n--) parts.push(...atom(r));
  const stream = Uint8Array.from(parts);
  try {
    return { stream, ...modelTcp(stream) };
  } catch (e) {
    if (e instanceof Deterministic) return null;
    throw e;
  }
}

let tcpCases = 0;
let tcpSkipped = 0;
let tcpBytesSent = 0;
let tcpBytesChecked = 0;
let tcpEarlyCloses = 0;
let tcpResets = 0;
let mismatches = 0;
let firstMismatch = "";
let udpDatagrams = 0;
let udpBytesChecked = 0;
let udpLost = 0;
const deadline = performance.now() + (args.durationMs ?? 10_000);

async function tcpWorker(w: number): Promise<void> {
  for (let i = 0; performance.now() < deadline; i++) {
    const caseSeed = (args.seed * 1_000_003 + w * 100_003 + i) >>> 0;
    const r = new Rng(caseSeed);
    const c = tcpCase(r);
    if (c === null) {
      tcpSkipped++;
      continue;
    }
    const o = await runTcp(r, args.port, c.stream);
    tcpCases++;
    tcpBytesSent += c.stream.length;
    if (c.closesEarly) tcpEarlyCloses++;
    if (o.reset) tcpResets++;
    const at = firstDifference(o.got, c.reply);
    if (at >= 0) {
      mismatches++;
      firstMismatch ||= `tcp case seed ${caseSeed}: ${c.stream.length} bytes in, reply differs at byte ${at} (got ${o.got.length}, want ${c.reply.length}); got [${hexAround(o.got, at)}] want [${hexAround(c.reply, at)}]`;
    } else tcpBytesChecked += c.reply.length;
  }
}

async function udpWorker(w: number): Promise<void> {
  const fd = raw.socket(raw.AF_INET, raw.SOCK_DGRAM);
  raw.bind(fd, "127.0.0.1", 0);
  for (let i = 0; performance.now() < deadline; i++) {
    const caseSeed = (args.seed * 7_000_003 + w * 100_003 + i) >>> 0;
    const r = new Rng(caseSeed);
    const len = r.pick([0, 1, 2, r.int(0, 64), r.int(0, maxDatagram), maxDatagram, maxDatagram + 1, r.int(maxDatagram, maxDatagram * 3)]);
    let d: Uint8Array;
    if (r.next() < 0.35) {
      const cmd = bytesOf(r.pick(["/shutdown", `/shutdown ${args.token}`, "/", "/x", "/shutdown\t", "/nope arg"]));
      d = Uint8Array.from([...cmd, ...randomBytes(r, Math.max(0, len - cmd.length)).filter((b) => b !== 0x0a), ...(r.next() < 0.5 ? r.pick([[0x0a], [0x0d, 0x0a], [0x0d, 0x0d, 0x0a]]) : [])]);
    } else {
      d = Uint8Array.from(randomBytes(r, len));
    }
    let want: Uint8Array;
    try {
      want = modelUdp(d);
    } catch (e) {
      if (e instanceof Deterministic) continue;
      throw e;
    }
    raw.sendto(fd, d, "127.0.0.1", args.udpPort);
    udpDatagrams++;
    let got: raw.Datagram | number = -raw.EAGAIN;
    const until = performance.now() + 2000;
    while (typeof got === "number" && performance.now() < until) {
      got = raw.recvfrom(fd, 70_000, raw.MSG_DONTWAIT);
      if (typeof got === "number") await Bun.sleep(1);
    }
    if (typeof got === "number") {
      udpLost++;
      continue;
    }
    const g = got.data;
    if (g.length !== want.length || g.some((b, k) => b !== want[k])) {
      mismatches++;
      firstMismatch ||= `udp case seed ${caseSeed}: ${d.length} bytes in, got ${g.length} bytes [${hexAround(g, 0)}], want ${want.length} [${hexAround(want, 0)}]`;
    } else udpBytesChecked += g.length;
  }
  raw.close(fd);
}

const workers: Promise<void>[] = [];
for (let w = 0; w < (args.workers ?? 4); w++) workers.push(tcpWorker(w));
workers.push(udpWorker(0), udpWorker(1));
await Promise.all(workers);
emit("result", {
  tcpCases,
  tcpSkipped,
  tcpBytesSent,
  tcpBytesChecked,
  tcpEarlyCloses,
  tcpResets,
  udpDatagrams,
  udpBytesChecked,
  udpLost,
  mismatches,
  firstMismatch,
});
process.exit(0);
