// The slash commands of both transports: parse a command line and build the
// reply. Pure: the clock, the counters, the peer's standing and the token all
// come in through CommandContext, so every reply is testable without sockets.
import { plainAddress } from "./peer.ts";

export type Transport = "tcp" | "udp";

export type ShutdownRejection = "token-required" | "loopback-required" | "token-missing" | "token-invalid" | "not-allowed";

/** Every command name, as counted (unknown = any other /word). */
export const COMMAND_NAMES = ["time", "stats", "whoami", "instance", "shutdown", "unknown"] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

export interface CommandContext {
  transport: Transport;
  /** The real socket peer is 127.0.0.0/8, ::1 or v4-mapped loopback (what /shutdown judges). */
  peerIsLoopback: boolean;
  /** The client as /whoami reports it (the socket peer, or the address a PROXY header carried), as Bun gives it. */
  clientAddress: string;
  clientPort: number;
  /** This server's --instance name (asked for by /instance only). */
  instance(): string;
  /** The configured shutdown token, or null when none is configured. */
  token: Uint8Array | null;
  now(): Date;
  /** total_clients, tcp_connected_now, udp_active */
  stats(): readonly [number, number, number];
}

export interface CommandOutcome {
  reply: Uint8Array;
  /** Which command it was, for counters. */
  name: CommandName;
  /** Set when /shutdown was refused. */
  rejected?: ShutdownRejection;
  /** Set when /shutdown was accepted: the server must stop. */
  shutdown?: true;
}

// The encoder and the fixed replies' bytes are made on first use: a start
// that answers no command and refuses nothing does not pay for them (~50 us).
let encoder: TextEncoder | null = null;
const bytes = (s: string) => (encoder ??= new TextEncoder()).encode(s);

const REPLY_TEXT = {
  unknown: "ERR unknown-command\n",
  shutdownOk: "OK, shutting down\n",
  tokenRequired: "ERR shutdown-token-required\n",
  loopbackRequired: "ERR shutdown-loopback-required\n",
  tokenMissing: "ERR shutdown-token-missing\n",
  tokenInvalid: "ERR shutdown-token-invalid\n",
  notAllowed: "ERR shutdown-not-allowed\n",
  tooLong: "ERR too-long-line\n",
  truncated: "ERR datagram-truncated\n",
  busy: "server busy\n",
} as const;
export type FixedReply = keyof typeof REPLY_TEXT;
const replyBytes: { [K in FixedReply]?: Uint8Array } = {};

/** The bytes of a fixed reply (the same array every time: callers copy or only read it). */
export function fixedReply(name: FixedReply): Uint8Array {
  return (replyBytes[name] ??= bytes(REPLY_TEXT[name]));
}

const SPACE = 0x20;
const TAB = 0x09;
const isBlank = (b: number | undefined) => b === SPACE || b === TAB;

/**
 * Answer one command line: buf[start, end) starts with "/" and holds no line
 * terminator. The word runs up to the first space or tab; the rest, trimmed of
 * spaces and tabs, is the argument.
 */
export function runCommand(buf: Uint8Array, start: number, end: number, ctx: CommandContext): CommandOutcome {
  let wordEnd = start + 1;
  while (wordEnd < end && !isBlank(buf[wordEnd])) wordEnd++;
  const word = latin1(buf, start + 1, wordEnd);
  switch (word) {
    case "time":
      return { name: "time", reply: bytes(formatTime(ctx.now()) + "\n") };
    case "stats":
      return { name: "stats", reply: bytes(ctx.stats().join(" ") + "\n") };
    case "whoami":
      return { name: "whoami", reply: bytes(`${plainAddress(ctx.clientAddress)} ${ctx.clientPort}\n`) };
    case "instance":
      return { name: "instance", reply: bytes(ctx.instance() + "\n") };
    case "shutdown":
      return shutdown(buf, wordEnd, end, ctx);
    default:
      return { name: "unknown", reply: fixedReply("unknown") };
  }
}

function shutdown(buf: Uint8Array, argStart: number, end: number, ctx: CommandContext): CommandOutcome {
  const reject = (rejected: ShutdownRejection, answer: FixedReply): CommandOutcome => ({ name: "shutdown", reply: fixedReply(answer), rejected });
  if (ctx.transport === "udp") return reject("not-allowed", "notAllowed");
  while (argStart < end && isBlank(buf[argStart])) argStart++;
  while (end > argStart && isBlank(buf[end - 1])) end--;
  if (argStart === end) return reject("token-required", "tokenRequired");
  if (!ctx.peerIsLoopback) return reject("loopback-required", "loopbackRequired");
  if (ctx.token === null) return reject("token-missing", "tokenMissing");
  if (!tokensEqual(buf.subarray(argStart, end), ctx.token)) return reject("token-invalid", "tokenInvalid");
  return { name: "shutdown", reply: fixedReply("shutdownOk"), shutdown: true };
}

/**
 * Constant-time comparison that also hides the length: compare SHA-256
 * digests, every byte, without an early exit. (Bun's hasher rather than
 * node:crypto, whose loading would cost every start a millisecond or two.)
 */
export function tokensEqual(given: Uint8Array, expected: Uint8Array): boolean {
  const a = Bun.CryptoHasher.hash("sha256", given) as Uint8Array;
  const b = Bun.CryptoHasher.hash("sha256", expected) as Uint8Array;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** UTC "YYYY-MM-DD HH:MM:SS". */
export function formatTime(d: Date): string {
  return d.toISOString().slice(0, 19).replace("T", " ");
}

function latin1(buf: Uint8Array, start: number, end: number): string {
  // Command words are short ASCII; anything else simply matches no command.
  return end - start > 16 ? "" : String.fromCharCode(...buf.subarray(start, end));
}
