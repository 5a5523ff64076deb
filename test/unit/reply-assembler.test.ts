import { expect, test } from "bun:test";
import { ReplyAssembler } from "../../src/core/reply-assembler.ts";

const b = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));
const text = (u: Uint8Array | null) => (u === null ? null : Buffer.from(u).toString("latin1"));
/** take() as a view, for assertions. */
const taken = (a: ReplyAssembler) => (a.take() ? a.outBuf.subarray(a.outStart, a.outEnd) : null);

test("contiguous runs of one buffer pass through without a copy", () => {
  const a = new ReplyAssembler();
  const chunk = b("one\ntwo\nthree\n");
  a.appendRun(chunk, 0, 4);
  a.appendRun(chunk, 4, 8);
  const out = taken(a)!;
  expect(text(out)).toBe("one\ntwo\n");
  expect(a.take()).toBe(false);
  a.appendRun(chunk, 0, 4);
  a.take();
  expect(a.outBuf).toBe(chunk); // by reference: no copy, no view
});

test("mixed pieces are gathered in order into one buffer", () => {
  const a = new ReplyAssembler();
  const chunk = b("one\n/x\ntwo\n");
  a.appendRun(chunk, 0, 4);
  a.appendCopy(b("ERR\n"));
  a.appendRun(chunk, 7, 11);
  expect(text(taken(a))).toBe("one\nERR\ntwo\n");
});

test("copies survive later changes to their source and the scratch grows", () => {
  const a = new ReplyAssembler();
  const carry = b("held\n");
  a.appendCopy(carry);
  carry.fill(0x41);
  const big = new Uint8Array(40_000).fill(0x62);
  a.appendRun(big, 0, big.length);
  const out = taken(a)!;
  expect(out.length).toBe(5 + 40_000);
  expect(text(out.subarray(0, 5))).toBe("held\n");
  expect(out[5 + 39_999]).toBe(0x62);
});
