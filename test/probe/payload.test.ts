import { describe, expect, test } from "bun:test";
import { describeMismatch, fillerByte, firstDifference, makeLine, MIN_SIZE, readSeq, SEQ_DIGITS, writeLine, writeSeq } from "../../src/core/payload.ts";

const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

describe("probe payload lines", () => {
  test("layout: 10 seq digits, a space, printable filler, LF", () => {
    const line = makeLine(20, 42);
    expect(line.length).toBe(20);
    expect(text(line.subarray(0, 11))).toBe("0000000042 ");
    expect(line[19]).toBe(0x0a);
    for (let i = 11; i < 19; i++) expect(line[i]).toBe(fillerByte(i));
  });

  test("every byte but the LF is printable ASCII, never a leading slash", () => {
    for (const size of [MIN_SIZE, 12, 64, 4097]) {
      const line = makeLine(size, 1234567);
      for (let i = 0; i < size - 1; i++) expect(line[i]! >= 0x20 && line[i]! <= 0x7e).toBe(true);
      expect(line[0]).not.toBe(0x2f);
      expect(line.indexOf(0x0a)).toBe(size - 1);
    }
  });

  test("the shortest line is the digits and the LF", () => {
    expect(text(makeLine(MIN_SIZE, 7))).toBe("0000000007\n");
    expect(MIN_SIZE).toBe(SEQ_DIGITS + 1);
  });

  test("writeSeq rewrites only the digits; writeLine at an offset", () => {
    const buf = new Uint8Array(40).fill(0xff);
    writeLine(buf, 8, 16, 5);
    expect(buf[7]).toBe(0xff);
    expect(buf[24]).toBe(0xff);
    const before = buf.slice(18, 24);
    writeSeq(buf, 8, 9876543210);
    expect(text(buf.subarray(8, 18))).toBe("9876543210");
    expect(buf.slice(18, 24)).toEqual(before);
  });

  test("writeSeq writes the zero-padded decimal digits of every kind of number, wrapping at 10^10", () => {
    const buf = new Uint8Array(SEQ_DIGITS);
    const seqs = [0, 7, 9999, 10_000, 99_999_999, 100_000_000, 1_234_567_890, 9_999_999_999, 4_294_967_296];
    for (let i = 0; i < 2000; i++) seqs.push(Math.floor(Math.random() * 1e10));
    for (const seq of seqs) {
      writeSeq(buf, 0, seq);
      expect(text(buf)).toBe(String(seq).padStart(SEQ_DIGITS, "0"));
    }
    writeSeq(buf, 0, 10_000_000_042);
    expect(text(buf)).toBe("0000000042");
  });

  test("readSeq reads the digits back, -1 when they are not all digits", () => {
    expect(readSeq(makeLine(64, 0))).toBe(0);
    expect(readSeq(makeLine(64, 31337))).toBe(31337);
    const broken = makeLine(64, 31337);
    broken[3] = 0x41;
    expect(readSeq(broken)).toBe(-1);
    expect(readSeq(new Uint8Array(5))).toBe(-1);
    expect(readSeq(Buffer.from("ERR datagram-truncated\n"))).toBe(-1);
  });

  test("sequence numbers wrap past ten digits", () => {
    expect(readSeq(makeLine(16, 10 ** 10 + 3))).toBe(3);
  });

  test("firstDifference and describeMismatch compare bytes", () => {
    const a = makeLine(32, 9);
    expect(firstDifference(a, a.slice())).toBe(-1);
    const b = a.slice();
    b[17]! ^= 1;
    expect(firstDifference(a, b)).toBe(17);
    expect(describeMismatch(a, b)).toBe(`MISMATCH at byte 17 (sent 0x${a[17]!.toString(16)}, got 0x${b[17]!.toString(16)})`);
    expect(firstDifference(a, a.subarray(0, 20))).toBe(20);
    expect(describeMismatch(a, a.subarray(0, 20))).toBe("MISMATCH at byte 20 (sent 0x" + a[20]!.toString(16) + ", got end), 20 bytes instead of 32");
    expect(describeMismatch(a, a)).toBe("");
  });
});
