// The probe's payloads: one line per sequence number, printable bytes only,
// so every echo can be matched to what was sent and checked byte for byte.
// Pure and allocation-free on the hot path: lines are written into buffers
// the caller owns, and echoes are compared as bytes, never decoded.
//
// Layout of the line for seq s, `size` bytes in all:
//   [0, 10)        s in decimal, zero-padded to 10 digits
//   [10]           a space (when size > 11)
//   [11, size-1)   filler: printable ASCII that depends on the position
//   [size-1]       LF
// The first byte is a digit, so a line is never taken for a /command.

export const SEQ_DIGITS = 10;
/** Shortest line: the digits and the LF. */
export const MIN_SIZE = SEQ_DIGITS + 1;
/** Sequence numbers wrap here (they must fit the digits). */
export const SEQ_LIMIT = 10 ** SEQ_DIGITS;

const LF = 0x0a;
const SPACE = 0x20;
const ZERO = 0x30;

/** Filler byte at position i: cycles through the 94 printable, non-space ASCII bytes. */
export function fillerByte(i: number): number {
  return 0x21 + ((i * 7 + 13) % 94);
}

/** Write the whole line for `seq` into buf at `offset` (size bytes). */
export function writeLine(buf: Uint8Array, offset: number, size: number, seq: number): void {
  writeSeq(buf, offset, seq);
  if (size > MIN_SIZE) buf[offset + SEQ_DIGITS] = SPACE;
  for (let i = SEQ_DIGITS + 1; i < size - 1; i++) buf[offset + i] = fillerByte(i);
  buf[offset + size - 1] = LF;
}

/** "0000".."9999" as ASCII, 4 bytes each: writeSeq copies digits instead of dividing for each one. */
const DIGITS4 = new Uint8Array(4 * 10_000);
for (let i = 0; i < 10_000; i++) {
  DIGITS4[4 * i] = ZERO + Math.floor(i / 1000);
  DIGITS4[4 * i + 1] = ZERO + (Math.floor(i / 100) % 10);
  DIGITS4[4 * i + 2] = ZERO + (Math.floor(i / 10) % 10);
  DIGITS4[4 * i + 3] = ZERO + (i % 10);
}

/**
 * Rewrite only the sequence digits of a line already laid out by writeLine.
 * On the load engine's path for every line: two divisions and table copies
 * (2 + 4 + 4 digits), not a division per digit.
 */
export function writeSeq(buf: Uint8Array, offset: number, seq: number): void {
  const v = seq < SEQ_LIMIT ? seq : seq % SEQ_LIMIT;
  const hi = Math.floor(v / 1e8);
  const rest = v - hi * 1e8;
  const mid = (rest / 10_000) | 0;
  const t = DIGITS4;
  let j = 4 * hi + 2;
  buf[offset] = t[j]!;
  buf[offset + 1] = t[j + 1]!;
  j = 4 * mid;
  buf[offset + 2] = t[j]!;
  buf[offset + 3] = t[j + 1]!;
  buf[offset + 4] = t[j + 2]!;
  buf[offset + 5] = t[j + 3]!;
  j = 4 * (rest - mid * 10_000);
  buf[offset + 6] = t[j]!;
  buf[offset + 7] = t[j + 1]!;
  buf[offset + 8] = t[j + 2]!;
  buf[offset + 9] = t[j + 3]!;
}

/** A fresh line for `seq`. */
export function makeLine(size: number, seq: number): Uint8Array {
  const buf = new Uint8Array(size);
  writeLine(buf, 0, size, seq);
  return buf;
}

/** The sequence number at the start of buf, or -1 when the digits are not all there. */
export function readSeq(buf: Uint8Array, offset = 0): number {
  if (buf.length - offset < SEQ_DIGITS) return -1;
  let v = 0;
  for (let i = 0; i < SEQ_DIGITS; i++) {
    const d = buf[offset + i]! - ZERO;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/**
 * Index of the first byte where got differs from expected, or -1 when they
 * are equal. A length difference counts at the shorter length.
 */
export function firstDifference(expected: Uint8Array, got: Uint8Array): number {
  const n = Math.min(expected.length, got.length);
  for (let i = 0; i < n; i++) if (expected[i] !== got[i]) return i;
  return expected.length === got.length ? -1 : n;
}

/** Human description of a mismatch, for the per-reply line. */
export function describeMismatch(expected: Uint8Array, got: Uint8Array): string {
  const at = firstDifference(expected, got);
  if (at < 0) return "";
  const hex = (b: number | undefined) => (b === undefined ? "end" : "0x" + b.toString(16).padStart(2, "0"));
  const len = got.length === expected.length ? "" : `, ${got.length} bytes instead of ${expected.length}`;
  return `MISMATCH at byte ${at} (sent ${hex(expected[at])}, got ${hex(got[at])})${len}`;
}
