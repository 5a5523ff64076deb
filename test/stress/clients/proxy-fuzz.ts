// Seeded, time-bounded fuzzing of the PROXY protocol header path against a
// model. Each case is a header (v1 TCP4/TCP6/UNKNOWN, v2 PROXY/LOCAL over
// every family, with TLVs), often mutated (a byte changed, inserted or
// dropped, the stream cut short, garbage instead), then "/whoami" and a few
// lines, sent in random segments to a server that expects a header from
// 127.0.0.1. The model judges the header with its own reading of HAProxy's
// specification (node:net and the URL parser for addresses, not the server's
// src/core/proxy-header.ts or ip-literal.ts): a valid header is consumed and
// /whoami answers the client it names; anything else is closed unanswered.
// The line protocol after the header is modelled with the server's framer and
// command modules, as in fuzz.ts.
//   args: { port, seed, durationMs, workers }
// Emits "result".
import { isIPv4, isIPv6 } from "node:net";
import { args, emit, Rng } from "./lib.ts";
import { concat, firstDifference, hexAround, runTcp } from "./tcp-exchange.ts";
import { LineFramer } from "../../../src/core/framing.ts";
import { fixedReply, runCommand } from "../../../src/core/commands.ts";

const enc = new TextEncoder();
const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];
const MAX_LINE = 4096;

// ---- the model -------------------------------------------------------------

type Verdict = { ok: true; length: number; client: { address: string; port: number } | null } | { ok: false };
const REJECT: Verdict = { ok: false };

/** IPv6 text as the server shows it: RFC 5952 (the URL parser's), v4-mapped as ::ffff:a.b.c.d. */
function canonicalV6(text: string): string {
  const host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  const m = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (!m) return host;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `::ffff:${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

const portOk = (s: string) => /^(0|[1-9][0-9]{0,4})$/.test(s) && Number(s) <= 65535;

function modelV1(b: Uint8Array): Verdict {
  const text = String.fromCharCode(...b.subarray(0, 107));
  if (!text.startsWith("PROXY ")) return REJECT;
  const lf = text.indexOf("\n");
  if (lf < 0 || text[lf - 1] !== "\r") return REJECT; // too long, incomplete, or a bare LF
  const line = text.slice(6, lf - 1);
  const length = lf + 1;
  if (/^UNKNOWN( |$)/.test(line)) return { ok: true, length, client: null };
  const m = /^(TCP4|TCP6) ([^ ]+) ([^ ]+) ([^ ]+) ([^ ]+)$/.exec(line);
  if (!m) return REJECT;
  const [, proto, src, dst, sport, dport] = m as unknown as [string, string, string, string, string, string];
  const valid = proto === "TCP4" ? (a: string) => isIPv4(a) : (a: string) => isIPv6(a) && !a.includes("%");
  if (!valid(src) || !valid(dst) || !portOk(sport) || !portOk(dport)) return REJECT;
  return { ok: true, length, client: { address: proto === "TCP4" ? src : canonicalV6(src), port: Number(sport) } };
}

function modelV2(b: Uint8Array): Verdict {
  if (b.length < 16 || SIG.some((x, i) => b[i] !== x)) return REJECT;
  const ver = b[12]! >> 4;
  const cmd = b[12]! & 15;
  const fam = b[13]! >> 4;
  const proto = b[13]! & 15;
  if (ver !== 2 || cmd > 1 || fam > 3 || proto > 2) return REJECT;
  const len = (b[14]! << 8) | b[15]!;
  const length = 16 + len;
  if (b.length < length) return REJECT; // incomplete: closed after the 3 s wait
  if (cmd === 0) return { ok: true, length, client: null };
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b[13] === 0x11) {
    if (len < 12) return REJECT;
    return { ok: true, length, client: { address: Array.from(b.subarray(16, 20)).join("."), port: dv.getUint16(24) } };
  }
  if (b[13] === 0x21) {
    if (len < 36) return REJECT;
    const groups = Array.from({ length: 8 }, (_, i) => dv.getUint16(16 + 2 * i).toString(16));
    return { ok: true, length, client: { address: canonicalV6(groups.join(":")), port: dv.getUint16(48) } };
  }
  return { ok: true, length, client: null };
}

function modelHeader(b: Uint8Array): Verdict {
  if (b[0] === 0x50) return modelV1(b);
  if (b[0] === 0x0d) return modelV2(b);
  return REJECT;
}

/** The whole reply to `stream` from a client whose own port is `localPort`. */
function model(stream: Uint8Array, localPort: number): Uint8Array {
  const v = modelHeader(stream);
  if (!v.ok) return new Uint8Array(0);
  const client = v.client ?? { address: "127.0.0.1", port: localPort };
  const out: Uint8Array[] = [];
  const framer = new LineFramer(MAX_LINE);
  const ctx = {
    transport: "tcp" as const,
    peerIsLoopback: true,
    clientAddress: client.address,
    clientPort: client.port,
    instance: () => "proxy-fuzz",
    token: null,
    now: () => new Date(0),
    stats: (): [number, number, number] => [0, 0, 0],
  };
  const sink = {
    echo: (b: Uint8Array, s: number, e: number) => void out.push(b.slice(s, e)),
    command: (b: Uint8Array, s: number, e: number) => void out.push(runCommand(b, s, e, ctx).reply),
    overflow: () => void out.push(fixedReply("tooLong")),
  };
  framer.push(stream.subarray(v.length), sink);
  if (!framer.closed) framer.finish(sink);
  return concat(out);
}

// ---- the generator ---------------------------------------------------------

const hex4 = (r: Rng) => r.int(0, 0xffff).toString(16);
const v4 = (r: Rng) => Array.from({ length: 4 }, () => r.int(0, 255)).join(".");
function v6(r: Rng): string {
  const groups = Array.from({ length: 8 }, () => (r.next() < 0.4 ? "0" : hex4(r)));
  switch (r.int(0, 4)) {
    case 0:
      return `::ffff:${v4(r)}`;
    case 1: {
      const at = r.int(0, 7);
      const n = r.int(1, 8 - at);
      return `${groups.slice(0, at).join(":")}::${groups.slice(at + n).join(":")}`;
    }
    case 2:
      return groups.join(":").toUpperCase();
    default:
      return groups.join(":");
  }
}
const port = (r: Rng) => r.pick([0, 1, 80, 443, 65535, r.int(0, 65535)]);

function header(r: Rng): number[] {
  switch (r.int(0, 7)) {
    case 0:
      return Array.from(enc.encode(`PROXY TCP4 ${v4(r)} ${v4(r)} ${port(r)} ${port(r)}\r\n`));
    case 1:
      return Array.from(enc.encode(`PROXY TCP6 ${v6(r)} ${v6(r)} ${port(r)} ${port(r)}\r\n`));
    case 2:
      return Array.from(enc.encode(`PROXY UNKNOWN${r.pick(["", ` ${v6(r)} ${v4(r)} 1 2`, " x"])}\r\n`));
    default: {
      const fam = r.pick([0x11, 0x21, 0x11, 0x21, 0x00, 0x12, 0x22, 0x31, 0x32]);
      const addrLen = fam >> 4 === 1 ? 12 : fam >> 4 === 2 ? 36 : fam >> 4 === 3 ? 216 : 0;
      const block = Array.from({ length: addrLen }, () => r.int(0, 255));
      const tlvs: number[] = [];
      for (let n = r.int(0, 3); n > 0; n--) {
        const v = Array.from({ length: r.int(0, 20) }, () => r.int(0, 255));
        tlvs.push(r.pick([0x01, 0x02, 0x04, 0x05, 0x20, 0x30, 0xee]), v.length >> 8, v.length & 255, ...v);
      }
      const len = block.length + tlvs.length;
      return [...SIG, r.pick([0x21, 0x21, 0x20]), fam, len >> 8, len & 255, ...block, ...tlvs];
    }
  }
}

const SPECIAL = [0x00, 0x0a, 0x0d, 0x20, 0x21, 0x22, 0x31, 0x3a, 0x2e, 0x50, 0xff, 0x11, 0x12, 0x13];
/** A header, half the time mutated (a cut-short one costs the server's 3 s wait). */
function mutated(r: Rng): number[] {
  const h = header(r);
  const at = r.int(0, h.length - 1);
  switch (r.int(0, 9)) {
    case 0:
      h[at] = r.pick(SPECIAL);
      return h;
    case 1:
      h[at] = r.int(0, 255);
      return h;
    case 2:
      h.splice(at, 0, r.pick(SPECIAL));
      return h;
    case 3:
      h.splice(at, 1);
      return h;
    case 4:
      return Array.from(enc.encode(r.pick(["hello\n", "/whoami\n", "PROXY\r\n", "PROXY TCP4\r\n", "proxy unknown\r\n", ""])));
    default:
      return h;
  }
}

// ---- the loop --------------------------------------------------------------

let cases = 0;
let accepted = 0;
let rejected = 0;
let mismatches = 0;
let firstMismatch = "";
const deadline = performance.now() + (args.durationMs ?? 10_000);

async function worker(w: number): Promise<void> {
  for (let i = 0; performance.now() < deadline; i++) {
    const caseSeed = (args.seed * 1_000_033 + w * 100_019 + i) >>> 0;
    const r = new Rng(caseSeed);
    const tail = enc.encode(`/whoami\n${r.pick(["hello", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r", "/instance"])}\n`);
    const stream = Uint8Array.from([...mutated(r), ...tail]);
    const o = await runTcp(r, args.port, stream);
    const want = model(stream, o.localPort);
    cases++;
    if (want.length > 0) accepted++;
    else rejected++;
    const at = firstDifference(o.got, want);
    if (at >= 0) {
      mismatches++;
      firstMismatch ||= `case seed ${caseSeed}: stream [${hexAround(stream, 0)}...] (${stream.length} bytes): reply differs at byte ${at} (got ${o.got.length}, want ${want.length}); got [${hexAround(o.got, at)}] want [${hexAround(want, at)}]`;
    }
  }
}

await Promise.all(Array.from({ length: args.workers ?? 8 }, (_, w) => worker(w)));
emit("result", { cases, accepted, rejected, mismatches, firstMismatch });
process.exit(0);
