// Which mappings the settle step may drop: parsing /proc/PID/smaps and the
// filter that keeps only the executable's read-only pages never written.
import { expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { deviceName, droppableFilePages } from "../../src/sys/exe-pages.ts";
import { parseSmaps } from "../../src/sys/procfs.ts";

// Trimmed from a real /proc/PID/smaps of epoll-echo (most fields left out, as the parser skips them anyway).
const SMAPS = `00200000-01a39000 r--p 00000000 fe:00 5317618                            /opt/epoll-echo
Size:              24804 kB
Rss:                4708 kB
Private_Dirty:         0 kB
Anonymous:             0 kB
VmFlags: rd mr mw me sd
01a40000-0684a000 r-xp 01838000 fe:00 5317618                            /opt/epoll-echo
Rss:               26280 kB
Anonymous:             0 kB
0684a000-0685f000 rw-p 06641000 fe:00 5317618                            /opt/epoll-echo
Rss:                  84 kB
Anonymous:            48 kB
0685f000-06867000 r--p 06656000 fe:00 5317618                            /opt/epoll-echo
Rss:                  32 kB
Anonymous:            12 kB
06867000-06c1f000 r--p 0665e000 fe:00 5317618                            /opt/epoll-echo
Rss:                   0 kB
Anonymous:             0 kB
7f0000000000-7f0000200000 rw-p 00000000 00:00 0 
Rss:                1024 kB
Anonymous:          1024 kB
7f1000000000-7f1000100000 r-xp 00000000 fe:00 77                         /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 900 kB
Anonymous:             0 kB
7f2000000000-7f2000001000 r-xp 00001000 08:01 5317618                    /other/disk/same-inode
Rss:                   4 kB
Anonymous:             0 kB
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
Rss:                  16 kB
Anonymous:            16 kB
`;

test("parseSmaps reads each mapping's range, permissions, file and its Rss and Anonymous sizes", () => {
  const maps = parseSmaps(SMAPS);
  expect(maps).toHaveLength(9);
  expect(maps[1]).toEqual({ start: 0x1a40000, end: 0x684a000, perms: "r-xp", dev: "fe:00", inode: 5317618, path: "/opt/epoll-echo", rssKiB: 26280, anonymousKiB: 0 });
  expect(maps[5]).toMatchObject({ inode: 0, path: "", rssKiB: 1024, anonymousKiB: 1024 });
  expect(maps[8]).toMatchObject({ start: 0x7ffd00000000, path: "[stack]", anonymousKiB: 16 });
});

test("a replaced executable keeps its mappings, with ' (deleted)' in the path", () => {
  const [m] = parseSmaps("00400000-00401000 r-xp 00000000 fe:00 12 /usr/bin/epoll-echo (deleted)\nRss: 4 kB\nAnonymous: 0 kB\n");
  expect(m).toMatchObject({ inode: 12, path: "/usr/bin/epoll-echo (deleted)", rssKiB: 4 });
});

test("only the executable's read-only private mappings with resident pages and no private copy are droppable", () => {
  const picked = droppableFilePages(parseSmaps(SMAPS), "fe:00", 5317618);
  // r--p text-and-rodata and r-xp code; not the rw data, not the relocated (written, then read-only) r--p
  // with Anonymous 12 kB, not the empty one, not libc, not an equal inode on another device.
  expect(picked.map((m) => m.start)).toEqual([0x200000, 0x1a40000]);
});

test("deviceName prints a device number the way /proc/PID/maps does", () => {
  expect(deviceName(0xfe00)).toBe("fe:00");
  expect(deviceName(0x0801)).toBe("08:01");
  expect(deviceName(259 * 256 + 3)).toBe("103:03"); // an NVMe major
  expect(deviceName(0x12300045)).toBe("00:12345"); // a minor above 255: its high bits sit above the major's
  // The running test's own executable is found in its own maps by this name.
  const exe = statSync("/proc/self/exe");
  const mine = parseSmaps(readFileSync("/proc/self/smaps", "latin1")).filter((m) => m.inode === exe.ino);
  expect(mine.length).toBeGreaterThan(0);
  expect(mine.every((m) => m.dev === deviceName(exe.dev))).toBe(true);
});
