// A strict command-line parser: the subset of util.parseArgs that our
// commands use (long options with "=" or a separate value, grouped short
// booleans, repeatable flags, "--"), with one-line errors that name the flag.
// Written here because loading node:util costs every start of the daemon
// most of a millisecond (docs/benchmarks.md), and citty's parser is not strict.

/** A usage error: one line, naming the flag; the command exits with status 2. */
export class UsageError extends Error {}

/**
 * One command's flag table: the single definition from which both the strict
 * parser below and citty's help (src/cli/help.ts) are built.
 */
export interface FlagDef {
  type: "string" | "boolean";
  description: string;
  valueHint?: string;
  /** Shown in help; the validators apply the real default. */
  default?: string;
  short?: string;
  /** Repeatable: every occurrence is kept, in order. */
  multiple?: boolean;
}
export interface PositionalDef {
  type: "positional";
  description: string;
  valueHint?: string;
  required?: boolean;
}
export type FlagTable = Record<string, FlagDef | PositionalDef>;

type ValueOf<D extends FlagDef> = D["type"] extends "string" ? string : boolean;
export type Values<O extends FlagTable> = {
  [K in keyof O as O[K] extends FlagDef ? K : never]?: O[K] extends FlagDef
    ? O[K]["multiple"] extends true
      ? ValueOf<O[K]>[]
      : ValueOf<O[K]>
    : never;
};

export interface Parsed<O extends FlagTable> {
  values: Values<O>;
  positionals: string[];
}

export function parseArgv<O extends FlagTable>(argv: string[], table: O): Parsed<O> {
  // The table is consulted per argument, not indexed up front: a daemon
  // started with two or three flags should not pay for the whole table.
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  const store = (name: string, def: FlagDef, value: string | boolean) => {
    if (def.multiple) ((values[name] ??= []) as unknown[]).push(value);
    else values[name] = value;
  };
  const positional = (arg: string) => {
    if (!takesPositionals(table)) throw new UsageError(`unexpected argument ${arg} (this command takes only options)`);
    positionals.push(arg);
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      for (let j = i + 1; j < argv.length; j++) positional(argv[j]!);
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const flag = eq < 0 ? arg : arg.slice(0, eq);
      const name = flag.slice(2);
      const def = flagNamed(table, name);
      if (!def) throw new UsageError(`unknown option ${flag}`);
      if (def.type === "boolean") {
        if (eq >= 0) throw new UsageError(`${flag}: takes no value`);
        store(name, def, true);
      } else if (eq >= 0) {
        store(name, def, arg.slice(eq + 1));
      } else {
        const next = argv[i + 1];
        if (next === undefined || next.startsWith("-")) throw missingValue(flag, next);
        store(name, def, next);
        i++;
      }
    } else if (arg.startsWith("-") && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const letter = arg[j]!;
        const name = shortName(table, letter);
        if (name === undefined) throw new UsageError(`unknown option -${letter}`);
        const def = table[name] as FlagDef;
        if (def.type !== "boolean") throw new UsageError(`-${letter}: use --${name} VALUE`);
        store(name, def, true);
      }
    } else {
      positional(arg);
    }
  }
  return { values: values as Values<O>, positionals };
}

/**
 * The error for a string flag followed by no value or by another option, in a
 * function of its own: a start that parses well does not link its regex and
 * messages (a function's first call costs a start for its whole body).
 */
function missingValue(flag: string, next: string | undefined): UsageError {
  // "--max-tcp -1": report the bad number it is, not a missing value.
  if (next !== undefined && /^-[0-9]/.test(next)) return new UsageError(`${flag}: expected a whole number, got ${JSON.stringify(next)}`);
  return new UsageError(`${flag}: needs a value`);
}

/** The flag called `name` (not a positional, not an inherited property). */
function flagNamed(table: FlagTable, name: string): FlagDef | undefined {
  // No hasOwnProperty: its first call costs a start ~25 µs. What a table
  // inherits (constructor, __proto__, toString...) has no flag type.
  const def: FlagDef | PositionalDef | undefined = table[name];
  return def?.type === "string" || def?.type === "boolean" ? def : undefined;
}

/** The long name of the flag whose short form is `letter`. */
function shortName(table: FlagTable, letter: string): string | undefined {
  for (const name in table) {
    const def = table[name]!;
    if (def.type !== "positional" && def.short === letter) return name;
  }
  return undefined;
}

function takesPositionals(table: FlagTable): boolean {
  for (const name in table) if (table[name]!.type === "positional") return true;
  return false;
}
