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

const encoder = new TextEncoder();
const bytes = (s: string) => encoder.encode(s);

export const REPLY = {
  unknown: bytes("ERR unknown-command\n"),
  shutdownOk: bytes("OK, shutting down\n"),
  tokenRequired: bytes("ERR shutdown-token-required\n"),
  loopbackRequired: bytes("ERR shutdown-loopback-required\n"),
  tokenMissing: bytes("ERR shutdown-token-missing\n"),
  tokenInvalid: bytes("ERR shutdown-token-invalid\n"),
  notAllowed: bytes("ERR shutdown-not-allowed\n"),
  tooLong: bytes("ERR too-long-line\n"),
  truncated: bytes("ERR datagram-truncated\n"),
  busy: bytes("server busy\n"),
} as const;

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
      return { name: "unknown", reply: REPLY.unknown };
  }
}

function shutdown(buf: Uint8Array, argStart: number, end: number, ctx: CommandContext): CommandOutcome {
  const reject = (rejected: ShutdownRejection, reply: Uint8Array): CommandOutcome => ({ name: "shutdown", reply, rejected });
  if (ctx.transport === "udp") return reject("not-allowed", REPLY.notAllowed);
  while (argStart < end && isBlank(buf[argStart])) argStart++;
  while (end > argStart && isBlank(buf[end - 1])) end--;
  if (argStart === end) return reject("token-required", REPLY.tokenRequired);
  if (!ctx.peerIsLoopback) return reject("loopback-required", REPLY.loopbackRequired);
  if (ctx.token === null) return reject("token-missing", REPLY.tokenMissing);
  if (!tokensEqual(buf.subarray(argStart, end), ctx.token)) return reject("token-invalid", REPLY.tokenInvalid);
  return { name: "shutdown", reply: REPLY.shutdownOk, shutdown: true };
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
