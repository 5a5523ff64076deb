import { describe, expect, test } from "bun:test";
import { commandEnd, LineFramer, type FrameSink } from "../../src/core/framing.ts";

/** Renders framer events as text: echoed bytes verbatim, commands and overflows tagged. */
class Transcript implements FrameSink {
  out = "";
  echo(buf: Uint8Array, start: number, end: number) {
    this.out += Buffer.from(buf.subarray(start, end)).toString("latin1");
  }
  command(buf: Uint8Array, start: number, end: number) {
    this.out += `<cmd:${Buffer.from(buf.subarray(start, end)).toString("latin1")}>`;
  }
  overflow(fatal: boolean) {
    this.out += fatal ? "<overflow:close>" : "<overflow>";
  }
}

const b = (s: string) => new Uint8Array(Buffer.from(s, "latin1"));

function frame(chunks: string[], maxLine = 8, eof = false): string {
  const f = new LineFramer(maxLine);
  const t = new Transcript();
  for (const c of chunks) f.push(b(c), t);
  if (eof) f.finish(t);
  return t.out;
}

/** Every way to cut `input` into two or three pieces gives the same transcript as one piece. */
function expectSplitInvariant(input: string, maxLine: number, eof: boolean) {
  const whole = frame([input], maxLine, eof);
  for (let i = 0; i <= input.length; i++) {
    expect(frame([input.slice(0, i), input.slice(i)], maxLine, eof)).toBe(whole);
    for (let j = i; j <= input.length; j++) {
      expect(frame([input.slice(0, i), input.slice(i, j), input.slice(j)], maxLine, eof)).toBe(whole);
    }
  }
  const bytewise = [...input];
  expect(frame(bytewise, maxLine, eof)).toBe(whole);
  return whole;
}

describe("LineFramer", () => {
  test("echoes LF and CRLF lines with their own terminators", () => {
    expect(frame(["a\r\nb\n"])).toBe("a\r\nb\n");
  });

  test("many lines in one chunk, in order", () => {
    expect(frame(["1\n22\n333\n\n"])).toBe("1\n22\n333\n\n");
  });

  test("binary bytes, NUL and lone CR are plain data", () => {
    expect(frame(["\x00\xff\r\x80\n"])).toBe("\x00\xff\r\x80\n");
  });

  test("commands lose their terminator and the CR before it", () => {
    expect(frame(["/time\r\n/stats\n/\n"])).toBe("<cmd:/time><cmd:/stats><cmd:/>");
  });

  test("CR CR LF leaves one CR in a command", () => {
    expect(frame(["/time\r\r\n"])).toBe("<cmd:/time\r>");
  });

  test("a line of exactly max-line bytes (CR counted) passes; one more overflows", () => {
    expect(frame(["12345678\n"], 8)).toBe("12345678\n");
    expect(frame(["1234567\r\n"], 8)).toBe("1234567\r\n");
    expect(frame(["12345678\r\n"], 8)).toBe("<overflow>");
    expect(frame(["123456789\nok\n"], 8)).toBe("<overflow>ok\n");
  });

  test("overflow is reported as soon as the limit is passed, before the LF", () => {
    expect(frame(["123456789"], 8)).toBe("<overflow>");
    expect(frame(["1234", "56789", "000", "0\nok\n"], 8)).toBe("<overflow>ok\n");
  });

  test("a second overlong line in a row closes; a good line in between resets", () => {
    expect(frame(["123456789\n123456789\nlost\n"], 8)).toBe("<overflow><overflow:close>");
    expect(frame(["123456789\nok\n123456789\nok\n"], 8)).toBe("<overflow>ok\n<overflow>ok\n");
    expect(frame(["123456789\n/time\n123456789\n"], 8)).toBe("<overflow><cmd:/time><overflow>");
  });

  test("input after the fatal overflow is ignored and closed reports it", () => {
    const f = new LineFramer(4);
    const t = new Transcript();
    f.push(b("xxxxx\nyyyyy\n"), t);
    expect(f.closed).toBe(true);
    f.push(b("more\n"), t);
    f.finish(t);
    expect(t.out).toBe("<overflow><overflow:close>");
  });

  test("at EOF an unterminated plain line is echoed as-is, a command answered", () => {
    expect(frame(["a\nlast"], 8, true)).toBe("a\nlast");
    expect(frame(["/time"], 8, true)).toBe("<cmd:/time>");
    expect(frame(["/time\r"], 8, true)).toBe("<cmd:/time>");
    expect(frame(["tail\r"], 8, true)).toBe("tail\r");
    expect(frame(["123456789"], 8, true)).toBe("<overflow>");
    expect(frame([""], 8, true)).toBe("");
  });

  test("held bytes never exceed max-line", () => {
    const f = new LineFramer(8);
    const t = new Transcript();
    f.push(b("12345678"), t);
    expect(f.heldBytes).toBe(8);
    f.push(b("9"), t);
    expect(f.heldBytes).toBe(0);
    expect(t.out).toBe("<overflow>");
  });

  test("splitting at every byte position changes nothing", () => {
    const inputs = [
      "a\r\nb\n/time\r\nxyz",
      "123456789\nok\n/stats\n",
      "\r\n\n\r\r\n/\n",
      "12345678\n1234567\r\n12345678\r\nz\n",
      "123456789\n123456789\nafter\n",
      "/shutdown  tok \t\n",
    ];
    for (const input of inputs) {
      expectSplitInvariant(input, 8, false);
      expectSplitInvariant(input, 8, true);
    }
  });
});

test("commandEnd: a trailing LF and the CR before it are not part of a command (TCP lines and UDP datagrams alike)", () => {
  const b = (s: string) => new TextEncoder().encode(s);
  expect(commandEnd(b("/time\r\n"), 0, 7)).toBe(5);
  expect(commandEnd(b("/time\n"), 0, 6)).toBe(5);
  expect(commandEnd(b("/time\r"), 0, 6)).toBe(5);
  expect(commandEnd(b("/time"), 0, 5)).toBe(5);
  expect(commandEnd(b("/time\n\n"), 0, 7)).toBe(6); // one terminator only
  expect(commandEnd(b("x\r\n/\r\n"), 3, 6)).toBe(4); // never before start
  expect(commandEnd(b("\r\n"), 1, 2)).toBe(1);
});
