import { describe, expect, test } from "bun:test";
import { createLogger, type LogOutput } from "../../src/sys/log.ts";
import type { Verbosity } from "../../src/core/config.ts";

function capture(output: LogOutput, verbosity: Verbosity = 3) {
  const lines: string[] = [];
  const log = createLogger({ output, verbosity, write: (l) => lines.push(l) });
  return { log, lines };
}

describe("logger", () => {
  test("text: time, level, message, key=value fields, one line", () => {
    const { log, lines } = capture("text");
    log.info("listening (TCP port=1, UDP port=2)", { peer: "[::1]:5", note: "a b", skip: undefined });
    expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO  listening \(TCP port=1, UDP port=2\) peer=\[::1\]:5 note="a b"\n$/);
  });

  test("json: one object per line", () => {
    const { log, lines } = capture("json");
    log.warn("busy", { conn: 3 });
    const obj = JSON.parse(lines[0]!);
    expect(obj).toMatchObject({ level: "warn", msg: "busy", conn: 3 });
    expect(typeof obj.time).toBe("string");
  });

  test("journal: priority prefix and no timestamp", () => {
    const { log, lines } = capture("journal");
    log.error("e");
    log.warn("w");
    log.info("i");
    log.debug("d");
    log.trace("t");
    expect(lines).toEqual(["<3>e\n", "<4>w\n", "<6>i\n", "<7>d\n", "<7>t\n"]);
  });

  test("levels: -q warn, default info, -v debug, -vv trace; repeats are not throttled", () => {
    const counts = ([0, 1, 2, 3] as Verbosity[]).map((v) => {
      const { log, lines } = capture("journal", v);
      log.warn("x");
      log.info("x");
      log.debug("x");
      log.trace("x");
      return lines.length;
    });
    expect(counts).toEqual([1, 2, 3, 4]);
    const { log, lines } = capture("text", 1);
    for (let i = 0; i < 5; i++) log.info("same");
    expect(lines.length).toBe(5);
    expect(capture("text", 2).log.debugOn).toBe(true);
    expect(capture("text", 2).log.traceOn).toBe(false);
  });
});
