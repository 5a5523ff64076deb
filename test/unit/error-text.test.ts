import { expect, test } from "bun:test";
import { errnoName, errorCode, errorText, errorWords } from "../../src/core/error-text.ts";

const sysErr = (code: string, message = `${code}: something failed`) => Object.assign(new Error(message), { code });

test("a known code in words with the code; an unknown code as is; no code: the message's first line", () => {
  expect(errorText(sysErr("EADDRINUSE"))).toBe("address already in use (EADDRINUSE)");
  expect(errorText(sysErr("ECONNREFUSED"))).toBe("connection refused (ECONNREFUSED)");
  expect(errorText(sysErr("EXDEV"))).toBe("EXDEV");
  expect(errorText(new Error("first line\nsecond line"))).toBe("first line");
  expect(errorText("plain")).toBe("plain");
  expect(errorText(null)).toBe("null");
});

test("words alone, for messages that already name the file", () => {
  expect(errorWords(sysErr("ENOENT"))).toBe("no such file");
  expect(errorWords(sysErr("EISDIR"))).toBe("is a directory");
  expect(errorWords(sysErr("EROFS"))).toBe("EROFS");
});

test("codes of thrown errors and of -errno results", () => {
  expect(errorCode(sysErr("EACCES"))).toBe("EACCES");
  expect(errorCode(new Error("x"))).toBeUndefined();
  expect(errorCode({ code: 13 })).toBeUndefined();
  expect(errnoName(-98)).toBe("EADDRINUSE");
  expect(errnoName(-88)).toBe("ENOTSOCK");
  expect(errnoName(-4095)).toBe("errno 4095");
});
