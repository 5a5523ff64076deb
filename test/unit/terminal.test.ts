import { expect, test } from "bun:test";
import { openSync, closeSync } from "node:fs";
import { fdIsTerminal } from "../../src/sys/terminal.ts";

test("/dev/null and files are not terminals; a pseudo-terminal is", () => {
  const devnull = openSync("/dev/null", "r");
  const file = openSync(import.meta.path, "r");
  try {
    expect(fdIsTerminal(devnull)).toBe(false);
    expect(fdIsTerminal(file)).toBe(false);
    expect(fdIsTerminal(9999)).toBe(false);
  } finally {
    closeSync(devnull);
    closeSync(file);
  }
  // `script` gives its child a real pty on stdout
  const r = Bun.spawnSync(["script", "-qec", `${process.execPath} -e 'process.stdout.write(String(require(${JSON.stringify(import.meta.dir + "/../../src/sys/terminal.ts")}).fdIsTerminal(1)))'`, "/dev/null"]);
  expect(r.stdout.toString().trim()).toBe("true");
});
