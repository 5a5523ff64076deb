// node:fs, loaded on first use. The executable is one bundle in which every
// static import of a Node built-in is evaluated at start, and node:fs costs
// the daemon's startup most of a millisecond (docs/benchmarks.md); the server
// path itself needs no file system unless a token file or the journal is in play.
type NodeFs = typeof import("node:fs");

let loaded: NodeFs | null = null;

export function nodeFs(): NodeFs {
  return (loaded ??= require("node:fs") as NodeFs);
}
