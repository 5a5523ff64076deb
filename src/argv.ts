// A strict command-line parser: the subset of util.parseArgs that our
// commands use (long options with "=" or a separate value, grouped short
// booleans, repeatable flags, "--"), with one-line errors that name the flag.
// Written here because loading node:util costs every start of the daemon
// most of a millisecond (docs/benchmarks.md), and citty's parser is not strict.

/** A usage error: one line, naming the flag; the command exits with status 2. */
export class UsageError extends Error {}

export interface OptionDef {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
}
export type OptionDefs = Record<string, OptionDef>;

type ValueOf<D extends OptionDef> = D["type"] extends "string" ? string : boolean;
export type Values<O extends OptionDefs> = {
  [K in keyof O]?: O[K]["multiple"] extends true ? ValueOf<O[K]>[] : ValueOf<O[K]>;
};

export interface Parsed<O extends OptionDefs> {
  values: Values<O>;
  positionals: string[];
}

export function parseArgv<O extends OptionDefs>(argv: string[], options: O, allowPositionals: boolean): Parsed<O> {
  const values: Record<string, unknown> = {};
  const positionals: string[] = [];
  const shortNames = new Map<string, string>();
  for (const [name, def] of Object.entries(options)) if (def.short) shortNames.set(def.short, name);

  const store = (name: string, value: string | boolean) => {
    const def = options[name]!;
    if (def.multiple) ((values[name] ??= []) as unknown[]).push(value);
    else values[name] = value;
  };
  const positional = (arg: string) => {
    if (!allowPositionals) throw new UsageError(`unexpected argument ${arg} (this command takes only options)`);
    positionals.push(arg);
  };

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      for (const rest of argv.slice(i + 1)) positional(rest);
      break;
    }
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const flag = eq < 0 ? arg : arg.slice(0, eq);
      const name = flag.slice(2);
      const def = Object.hasOwn(options, name) ? options[name]! : undefined;
      if (!def) throw new UsageError(`unknown option ${flag}`);
      if (def.type === "boolean") {
        if (eq >= 0) throw new UsageError(`${flag}: takes no value`);
        store(name, true);
      } else if (eq >= 0) {
        store(name, arg.slice(eq + 1));
      } else {
        const next = argv[i + 1];
        if (next === undefined || next.startsWith("-")) {
          // "--max-tcp -1": report the bad number it is, not a missing value.
          if (next !== undefined && /^-[0-9]/.test(next)) throw new UsageError(`${flag}: expected a whole number, got ${JSON.stringify(next)}`);
          throw new UsageError(`${flag}: needs a value`);
        }
        store(name, next);
        i++;
      }
    } else if (arg.startsWith("-") && arg.length > 1) {
      for (const letter of arg.slice(1)) {
        const name = shortNames.get(letter);
        if (name === undefined) throw new UsageError(`unknown option -${letter}`);
        if (options[name]!.type !== "boolean") throw new UsageError(`-${letter}: use --${name} VALUE`);
        store(name, true);
      }
    } else {
      positional(arg);
    }
  }
  return { values: values as Values<O>, positionals };
}
