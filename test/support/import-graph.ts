// The import graph of src/, read from the source text, and the layer rules
// checked against it (test/unit/import-rules.test.ts). Type-only imports count
// for layers and cycles (they couple modules just the same); only runtime
// static imports count for what a start of the executable evaluates.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

export interface ImportEdge {
  /** The specifier as written: "./x.ts", "bun", "node:fs". */
  spec: string;
  /** Resolved module, relative to src/ ("core/framing.ts"); null for anything outside src/. */
  target: string | null;
  /** `import type` / `export type`: erased at build time. */
  typeOnly: boolean;
  /** `import("...")` or `require("...")`: loaded when the code runs, not at start. */
  dynamic: boolean;
}

/** Every module of src/, keyed by its path relative to src/ ("server/bind.ts"). */
export type ImportGraph = Map<string, ImportEdge[]>;

const STATIC = /(?:^|[;}\s])(import|export)\s+(type\s+)?(?:[^;"'`()]*?\bfrom\s*)?["']([^"']+)["']/g;
/** `import("x")`, `typeof import("x")`, and `require("x")` (a synchronous load on first use: also a chunk of its own). */
const DYNAMIC = /(typeof\s+)?\b(?:import|require)\s*\(\s*["']([^"']+)["']\s*\)/g;

/** Comments out, so an import named in a comment does not count. */
function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'\\])\/\/[^\n]*/g, "$1");
}

/** The imports of one module's source text (relative specifiers left unresolved). */
export function scanSource(source: string): Omit<ImportEdge, "target">[] {
  const text = stripComments(source);
  const out: Omit<ImportEdge, "target">[] = [];
  for (const m of text.matchAll(STATIC)) out.push({ spec: m[3]!, typeOnly: m[2] !== undefined, dynamic: false });
  // `typeof import("x")` is a type: erased, but a coupling all the same.
  for (const m of text.matchAll(DYNAMIC)) out.push({ spec: m[2]!, typeOnly: m[1] !== undefined, dynamic: m[1] === undefined });
  return out;
}

function listTs(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith(".ts"))
    .map((e) => join(e.parentPath, e.name));
}

/** Read the graph of every .ts file under srcDir. */
export function readGraph(srcDir: string): ImportGraph {
  const graph: ImportGraph = new Map();
  for (const file of listTs(srcDir).sort()) {
    const edges = scanSource(readFileSync(file, "utf8")).map((e) => {
      if (!e.spec.startsWith(".")) return { ...e, target: null };
      const abs = resolve(dirname(file), e.spec);
      if (!existsSync(abs)) throw new Error(`${relative(srcDir, file)}: import of a missing file ${e.spec}`);
      const target = relative(srcDir, abs);
      return { ...e, target: target.startsWith("..") ? null : target };
    });
    graph.set(relative(srcDir, file), edges);
  }
  return graph;
}

/** The layer of a module: its folder under src/, or "main" for src/main.ts. */
export function layerOf(module: string): string {
  const slash = module.indexOf("/");
  return slash < 0 ? module.replace(/\.ts$/, "") : module.slice(0, slash);
}

/** Which layers each layer may import (itself included); a layer not listed here is itself a violation. */
export const MAY_IMPORT: Readonly<Record<string, readonly string[]>> = {
  core: ["core"],
  sys: ["sys", "core"],
  server: ["server", "core", "sys"],
  cli: ["cli", "core", "sys"],
  systemd: ["systemd", "core", "sys"],
  metrics: ["metrics", "core", "sys", "server"],
  probe: ["probe", "core", "sys", "cli"],
  main: ["main", "core", "sys", "server", "cli", "systemd", "metrics", "probe"],
};

/** Imports that break a layer rule, one line each. */
export function layerViolations(graph: ImportGraph): string[] {
  const out: string[] = [];
  for (const [module, edges] of graph) {
    const layer = layerOf(module);
    const allowed = MAY_IMPORT[layer];
    if (allowed === undefined) {
      out.push(`${module}: src/${layer} is not a known layer (add it to MAY_IMPORT and the README's diagram)`);
      continue;
    }
    for (const e of edges) {
      if (e.target === null) {
        // Outside src/: a runtime module, a package, package.json. core/ stays pure: none at all.
        if (layer === "core") out.push(`${module}: core/ imports nothing outside core/, but imports "${e.spec}"`);
      } else if (!allowed.includes(layerOf(e.target))) {
        out.push(`${module}: ${layer}/ may not import ${layerOf(e.target)}/ (${e.spec})`);
      }
    }
  }
  return out;
}

/** Every cycle among modules (strongly connected components of more than one module, or a self-import). */
export function cycles(graph: ImportGraph): string[][] {
  // Tarjan's algorithm, iterative enough for a tree of this size (recursion depth = longest import chain).
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const e of graph.get(v) ?? []) {
      const w = e.target;
      if (w === null || !graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      const selfImport = (graph.get(v) ?? []).some((e) => e.target === v);
      if (scc.length > 1 || selfImport) found.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return found;
}

/**
 * The modules a start of `entry` evaluates: runtime static imports, followed
 * through src/ and into packages (resolved from `fromDir`), dynamic imports
 * and `import type` left out. Returns every non-relative specifier reached,
 * and every module of src/ (keyed "src/PATH"), with the chain that reaches it.
 */
export function staticClosure(graph: ImportGraph, entry: string, fromDir: string): Map<string, string[]> {
  const reached = new Map<string, string[]>();
  const seen = new Set<string>();
  const scanner = new Bun.Transpiler({ loader: "js" });
  const walkPackageFile = (file: string, chain: string[]) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const imp of scanner.scanImports(readFileSync(file, "utf8"))) {
      if (imp.kind !== "import-statement") continue;
      const next = [...chain, imp.path];
      if (imp.path.startsWith(".")) walkPackageFile(resolve(dirname(file), imp.path), next);
      else external(imp.path, dirname(file), next);
    }
  };
  const external = (spec: string, dir: string, chain: string[]) => {
    if (!reached.has(spec)) reached.set(spec, chain);
    if (spec === "bun" || spec.startsWith("bun:") || spec.startsWith("node:")) return;
    walkPackageFile(Bun.resolveSync(spec, dir), chain);
  };
  const walk = (module: string, chain: string[]) => {
    if (seen.has(module)) return;
    seen.add(module);
    for (const e of graph.get(module) ?? []) {
      if (e.typeOnly || e.dynamic) continue;
      const next = [...chain, e.spec];
      if (e.target !== null) {
        if (!reached.has(`src/${e.target}`)) reached.set(`src/${e.target}`, next);
        walk(e.target, next);
      } else if (e.spec.startsWith(".")) reached.set(e.spec, next); // a data file outside src/ (package.json)
      else external(e.spec, fromDir, next);
    }
  };
  walk(entry, [entry]);
  return reached;
}
