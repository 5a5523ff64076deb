import { expect, test } from "bun:test";
import { defaultInstance, isInstanceName } from "../../src/core/instance.ts";
import { hostname } from "../../src/sys/libc.ts";

test("instance names: 1 to 64 printable ASCII characters, no spaces", () => {
  for (const ok of ["a", "edge-1", "pod-7f9c/0", "x".repeat(64), "!~"]) expect(isInstanceName(ok)).toBe(true);
  for (const bad of ["", " ", "a b", "x".repeat(65), "tab\there", "nl\n", "caf\u00e9", "\x7f", "\x00"]) expect(isInstanceName(bad)).toBe(false);
});

test("the default is the hostname, or localhost when that is empty or unusable", () => {
  expect(defaultInstance("vm")).toBe("vm");
  expect(defaultInstance("")).toBe("localhost");
  expect(defaultInstance("has space")).toBe("localhost");
});

test("uname's nodename is the kernel's hostname", async () => {
  const kernel = (await Bun.file("/proc/sys/kernel/hostname").text()).trim();
  expect(hostname()).toBe(kernel);
});
