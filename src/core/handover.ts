// The hand-over between a process and the process it re-executes itself
// into (src/server/handover.ts): which inherited descriptors are which
// sockets, and the counters that go on counting. Pure: plain data in, bytes
// out, and back. The bytes travel in a memfd whose descriptor number is the
// value of HANDOVER_VARIABLE; the shutdown token never travels (the new
// process reads it from its file again). The names: idle-settings.ts.
//
// Layout: the MAGIC line, one line of JSON, then the raw slots of the
// peer-fingerprint table (up to 16 MiB, too large to spell out in JSON).
import { CARRIED_COUNTERS, type StatsState } from "./stats.ts";
import { HANDOVER_VARIABLE, IDLE_SETTINGS } from "./idle-settings.ts";

const MAGIC = "EPOLL-ECHO-HANDOVER/1\n";

export type HandedKind = "tcp" | "tls" | "metrics" | "udp-wildcard" | "udp-address";
const KINDS: readonly HandedKind[] = ["tcp", "tls", "metrics", "udp-wildcard", "udp-address"];

/** One inherited socket: its descriptor, what it serves, and for a per-address UDP socket its address. */
export interface HandedSocket {
  fd: number;
  kind: HandedKind;
  address?: string;
}

export interface Handover {
  sockets: HandedSocket[];
  /** The per-address UDP sockets were scanned already (the new process then waits for a reason to rescan). */
  udpScanned: boolean;
  stats: StatsState;
  /** Wall-clock ms (performance.timeOrigin + now) just before the exec: the new process reports the window. */
  execAt: number;
  /** The process name (comm): an exec of /proc/self/exe would rename the process "exe", so the new one takes it back. */
  name: string;
}

export class HandoverError extends Error {}

/** The new process's environment: the current one, IDLE_SETTINGS added where unset, and the hand-over descriptor. */
export function execEnvironment(env: Readonly<Record<string, string | undefined>>, handoverFd: number): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(env)) if (v !== undefined && k !== HANDOVER_VARIABLE) out.push(`${k}=${v}`);
  for (const [k, v] of IDLE_SETTINGS) if (env[k] === undefined) out.push(`${k}=${v}`);
  out.push(`${HANDOVER_VARIABLE}=${handoverFd}`);
  return out;
}

/** The descriptor number of a HANDOVER_VARIABLE value, or null when it is not one. */
export function handoverFd(value: string): number | null {
  return /^[0-9]{1,9}$/.test(value) ? Number(value) : null;
}

export function encodeHandover(h: Handover): Uint8Array {
  const { peersEver, ...stats } = h.stats;
  const head = JSON.stringify({ ...h, stats: { ...stats, peersEver: { size: peersEver.size, slots: peersEver.slots.length } } });
  const text = new TextEncoder().encode(MAGIC + head + "\n");
  const slots = new Uint8Array(peersEver.slots.buffer, peersEver.slots.byteOffset, peersEver.slots.byteLength);
  const out = new Uint8Array(text.length + slots.length);
  out.set(text, 0);
  out.set(slots, text.length);
  return out;
}

/** The hand-over in `bytes`; throws HandoverError when they are not one this version wrote. */
export function decodeHandover(bytes: Uint8Array): Handover {
  const magic = new TextEncoder().encode(MAGIC);
  if (bytes.length < magic.length || magic.some((b, i) => bytes[i] !== b)) throw new HandoverError("not a hand-over of this version");
  const end = bytes.indexOf(0x0a, magic.length);
  if (end < 0) throw new HandoverError("truncated");
  let head: unknown;
  try {
    head = JSON.parse(new TextDecoder().decode(bytes.subarray(magic.length, end)));
  } catch {
    throw new HandoverError("unreadable description");
  }
  const h = head as Handover & { stats: { peersEver: { size: number; slots: number } } };
  if (typeof h !== "object" || h === null || !Array.isArray(h.sockets) || typeof h.stats !== "object" || h.stats === null || typeof h.execAt !== "number" || typeof h.name !== "string") {
    throw new HandoverError("incomplete description");
  }
  for (const s of h.sockets) {
    if (!Number.isInteger(s?.fd) || s.fd < 0 || !KINDS.includes(s.kind) || (s.kind === "udp-address" && typeof s.address !== "string")) {
      throw new HandoverError(`bad socket entry ${JSON.stringify(s)}`);
    }
  }
  const counters = h.stats.counters as Record<string, unknown> | undefined;
  if (typeof counters !== "object" || counters === null || CARRIED_COUNTERS.some((c) => typeof counters[c] !== "number") || !Array.isArray(h.stats.peers)) {
    throw new HandoverError("incomplete counters");
  }
  const slotCount = h.stats.peersEver?.slots;
  const raw = bytes.subarray(end + 1);
  if (!Number.isInteger(slotCount) || raw.length !== slotCount * 4) throw new HandoverError("peer table size does not match");
  const slots = new Uint32Array(slotCount);
  new Uint8Array(slots.buffer).set(raw);
  return { ...h, udpScanned: h.udpScanned === true, stats: { ...h.stats, peersEver: { size: h.stats.peersEver.size, slots } } };
}
