// The layer rules of src/ (README, "Architecture"), checked on the real import
// graph read from the source: who may import whom, no cycles, and nothing
// from node:* evaluated at the start of the executable.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { cycles, layerViolations, readGraph, scanSource, staticClosure, type ImportEdge, type ImportGraph } from "../support/import-graph.ts";

const ROOT = join(import.meta.dir, "..", "..");
const SRC = join(ROOT, "src");
const graph = readGraph(SRC);

describe("src/ import rules", () => {
  test("the scanner sees every runtime import Bun's own scanner sees", () => {
    const ts = new Bun.Transpiler({ loader: "ts" });
    const missed: string[] = [];
    for (const [module, edges] of graph) {
      const ours = new Set(edges.filter((e) => !e.typeOnly).map((e) => e.spec));
      for (const imp of ts.scanImports(readFileSync(join(SRC, module), "utf8"))) {
        if (!ours.has(imp.path)) missed.push(`${module}: ${imp.kind} ${imp.path}`);
      }
    }
    expect(missed).toEqual([]);
    expect(graph.size).toBeGreaterThan(30);
  });

  test("each layer imports only the layers below it (core/ nothing outside core/)", () => {
    expect(layerViolations(graph)).toEqual([]);
  });

  test("no import cycles, type-only imports included", () => {
    expect(cycles(graph)).toEqual([]);
  });

  test("the executable's start (static imports from src/main.ts, packages included) evaluates no node:* module", () => {
    const reached = staticClosure(graph, "main.ts", ROOT);
    const node = [...reached].filter(([spec]) => spec.startsWith("node:")).map(([spec, chain]) => `${spec} via ${chain.join(" -> ")}`);
    expect(node).toEqual([]);
    // The walk did reach the command line's data file (else it proves nothing).
    expect(reached.has("../../package.json")).toBe(true);
    // consola loads when the first log line is written (src/sys/log.ts): a quiet start never loads it.
    expect(reached.has("consola/core")).toBe(false);
    // Nor what a quiet start needs only after its first echo, or never (require()d on first use).
    expect(reached.has("src/server/server.ts")).toBe(true);
    const onDemand = ["src/sys/libc.ts", "src/sys/log-writer.ts", "src/sys/fd-limit.ts", "src/sys/exe-pages.ts"];
    expect(onDemand.filter((m) => reached.has(m)).map((m) => `${m} via ${reached.get(m)!.join(" -> ")}`)).toEqual([]);
    // bun:ffi loads on first use (src/sys/libc.ts), not with the program: a quiet start serves without it.
    expect(reached.has("bun:ffi")).toBe(false);
  });
});

describe("the checks catch what they are for", () => {
  const edge = (target: string, more: Partial<ImportEdge> = {}): ImportEdge => ({ spec: "./" + target, target, typeOnly: false, dynamic: false, ...more });
  const g = (entries: Record<string, ImportEdge[]>): ImportGraph => new Map(Object.entries(entries));

  test("scanner: static, re-export, side-effect, type-only, dynamic, typeof import, comments", () => {
    const src = [
      `import { a, type B } from "./a.ts";`,
      `import type { C } from "../core/c.ts";`,
      `import {\n  d,\n  e,\n} from "bun:ffi";`,
      `import "./side.ts";`,
      `export { f } from "./f.ts";`,
      `export type { G } from "./g.ts";`,
      `const m = await import("./lazy.ts");`,
      `const n = require("./on-demand.ts") as typeof import("./on-demand.ts");`,
      `type Fs = typeof import("node:fs");`,
      `// import { x } from "./commented.ts";`,
      `/* import("./also-commented.ts") */`,
      `const url = "http://example/"; export const s = "no import here";`,
    ].join("\n");
    expect(scanSource(src)).toEqual([
      { spec: "./a.ts", typeOnly: false, dynamic: false },
      { spec: "../core/c.ts", typeOnly: true, dynamic: false },
      { spec: "bun:ffi", typeOnly: false, dynamic: false },
      { spec: "./side.ts", typeOnly: false, dynamic: false },
      { spec: "./f.ts", typeOnly: false, dynamic: false },
      { spec: "./g.ts", typeOnly: true, dynamic: false },
      { spec: "./lazy.ts", typeOnly: false, dynamic: true },
      { spec: "./on-demand.ts", typeOnly: false, dynamic: true },
      { spec: "./on-demand.ts", typeOnly: true, dynamic: false },
      { spec: "node:fs", typeOnly: true, dynamic: false },
    ]);
  });

  test("layer rules: upward imports and core/ reaching outside are reported", () => {
    const bad = g({
      "core/a.ts": [edge("server/s.ts", { typeOnly: true }), { spec: "node:fs", target: null, typeOnly: false, dynamic: false }],
      "cli/c.ts": [edge("probe/p.ts")],
      "systemd/x.ts": [edge("server/s.ts")],
      "server/s.ts": [edge("core/a.ts"), edge("sys/y.ts")],
      "sys/y.ts": [edge("core/a.ts")],
      "probe/p.ts": [edge("cli/c.ts"), edge("server/s.ts")],
      "extra/z.ts": [],
      "main.ts": [edge("probe/p.ts", { dynamic: true }), edge("server/s.ts")],
    });
    expect(layerViolations(bad)).toEqual([
      "core/a.ts: core/ may not import server/ (./server/s.ts)",
      'core/a.ts: core/ imports nothing outside core/, but imports "node:fs"',
      "cli/c.ts: cli/ may not import probe/ (./probe/p.ts)",
      "systemd/x.ts: systemd/ may not import server/ (./server/s.ts)",
      "probe/p.ts: probe/ may not import server/ (./server/s.ts)",
      "extra/z.ts: src/extra is not a known layer (add it to MAY_IMPORT and the README's diagram)",
    ]);
  });

  test("cycles: a type-only cycle and a self-import are found; a diamond is not a cycle", () => {
    const bad = g({
      "server/a.ts": [edge("server/b.ts")],
      "server/b.ts": [edge("server/a.ts", { typeOnly: true })],
      "core/self.ts": [edge("core/self.ts")],
      "main.ts": [edge("core/l.ts"), edge("core/r.ts")],
      "core/l.ts": [edge("core/z.ts")],
      "core/r.ts": [edge("core/z.ts")],
      "core/z.ts": [],
    });
    expect(cycles(bad)).toEqual([["server/a.ts", "server/b.ts"], ["core/self.ts"]]);
  });

  test("start closure: a static node:* import anywhere below main is found, a dynamic or type-only one is not", () => {
    const nodeImport = (spec: string, more: Partial<ImportEdge> = {}): ImportEdge => ({ spec, target: null, typeOnly: false, dynamic: false, ...more });
    const bad = g({
      "main.ts": [edge("server/s.ts"), edge("probe/p.ts", { dynamic: true })],
      "server/s.ts": [edge("sys/f.ts"), nodeImport("node:path", { typeOnly: true })],
      "sys/f.ts": [nodeImport("node:fs")],
      "probe/p.ts": [nodeImport("node:dns")],
    });
    const reached = staticClosure(bad, "main.ts", ROOT);
    expect([...reached].filter(([spec]) => !spec.startsWith("src/"))).toEqual([["node:fs", ["main.ts", "./server/s.ts", "./sys/f.ts", "node:fs"]]]);
    expect([...reached.keys()].filter((spec) => spec.startsWith("src/"))).toEqual(["src/server/s.ts", "src/sys/f.ts"]);
  });
});
