// The ffi layer (libc.ts) as a chunk of its own, loaded by the first call that
// needs it: a start pays for the source of every chunk it loads (~20 µs per
// KB, docs/benchmarks.md, "Startup"), and a quiet start makes no libc call
// before it serves. Modules on the start's path reach libc through here;
// modules that are themselves loaded on demand may import libc.ts directly.
import type * as Libc from "./libc.ts";

let loaded: typeof Libc | null = null;

/** libc.ts, loaded on first use (a synchronous require: a chunk of its own in the executable). */
export function libc(): typeof Libc {
  return (loaded ??= require("./libc.ts") as typeof Libc);
}
