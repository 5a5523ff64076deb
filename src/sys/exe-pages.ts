// Drops this process's resident pages of its own executable that hold only
// the file's bytes. Starting the Bun runtime touches megabytes of its code and
// read-only data once (VM and module setup, argument parsing, logging) that
// the echo path never runs again; those pages stay mapped and count in RSS.
// madvise(MADV_DONTNEED) unmaps them from this process only: they stay in the
// page cache, and a page the server needs again comes back by a minor fault
// (no I/O, no change in content). Only mappings that are not writable and
// hold no private copy (smaps Anonymous: 0, i.e. no page was ever written,
// not even by the dynamic linker's relocations) are touched, so what comes
// back is exactly what was there: the kernel itself drops such pages under
// memory pressure. It saves resident pages, not memory the system needs: the
// page cache keeps them until it wants the room.
import { errnoName, errorText } from "../core/error-text.ts";
import { nodeFs } from "./node-fs.ts";
import { MADV_DONTNEED, madvise } from "./libc.ts";
import { mappings, type Mapping } from "./procfs.ts";

/** How a device number prints in /proc/PID/maps: major:minor in hex, at least two digits each. */
export function deviceName(dev: number): string {
  const major = Math.floor(dev / 256) & 0xfff;
  const minor = (dev & 0xff) | (Math.floor(dev / 4096) & ~0xff & 0xfffff);
  const hex = (n: number) => n.toString(16).padStart(2, "0");
  return `${hex(major)}:${hex(minor)}`;
}

/** The mappings of file (dev, inode) whose resident pages may be dropped: read-only, private, never written. */
export function droppableFilePages(maps: Mapping[], dev: string, inode: number): Mapping[] {
  return maps.filter((m) => m.inode === inode && m.dev === dev && (m.perms === "r-xp" || m.perms === "r--p") && m.anonymousKiB === 0 && m.rssKiB > 0);
}

/** The executable's mappings whose resident pages may be dropped (see above); why not, if /proc cannot tell. */
export function executablePages(): Mapping[] | string {
  try {
    const exe = nodeFs().statSync("/proc/self/exe");
    return droppableFilePages(mappings("self"), deviceName(exe.dev), exe.ino);
  } catch (err) {
    return errorText(err); // no /proc in this sandbox
  }
}

/** Drop those pages from this process: the resident KiB they held, or why not. */
export function dropPages(targets: Mapping[]): number | string {
  let kib = 0;
  for (const m of targets) {
    const rc = madvise(m.start, m.end - m.start, MADV_DONTNEED);
    if (rc < 0) return `madvise: ${errnoName(rc)}`;
    kib += m.rssKiB;
  }
  return kib;
}
