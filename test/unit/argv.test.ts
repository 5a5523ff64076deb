import { describe, expect, test } from "bun:test";
import { parseArgv, type FlagTable } from "../../src/cli/argv.ts";

const OPTIONS = {
  port: { type: "string", description: "" },
  verbose: { type: "boolean", short: "v", multiple: true, description: "" },
  quiet: { type: "boolean", short: "q", description: "" },
  tag: { type: "string", multiple: true, description: "" },
} as const satisfies FlagTable;
const WITH_TARGET = { ...OPTIONS, target: { type: "positional", description: "" } } as const satisfies FlagTable;

const parse = (argv: string[], positionals = false) => (positionals ? parseArgv(argv, WITH_TARGET) : parseArgv(argv, OPTIONS));
const fails = (argv: string[], positionals = false) => {
  try {
    parse(argv, positionals);
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error(`no error for ${argv.join(" ")}`);
};

describe("parseArgv", () => {
  test("long options with a separate value or '='", () => {
    expect(parse(["--port", "7"]).values).toEqual({ port: "7" });
    expect(parse(["--port=7"]).values).toEqual({ port: "7" });
    expect(parse(["--port="]).values).toEqual({ port: "" });
    expect(parse(["--port=-3"]).values).toEqual({ port: "-3" });
    expect(parse(["--port", "1", "--port", "2"]).values).toEqual({ port: "2" });
  });

  test("short booleans, grouped and repeated; repeatable options collect", () => {
    expect(parse(["-vv"]).values).toEqual({ verbose: [true, true] });
    expect(parse(["-v", "--verbose", "-qv"]).values).toEqual({ verbose: [true, true, true], quiet: true });
    expect(parse(["--tag", "a", "--tag=b"]).values).toEqual({ tag: ["a", "b"] });
  });

  test("positionals, when allowed, and '--'", () => {
    expect(parse(["host", "--quiet", "--", "--port"], true)).toEqual({ values: { quiet: true }, positionals: ["host", "--port"] });
    expect(parse(["-"], true).positionals).toEqual(["-"]);
  });

  test("one-line errors naming the flag", () => {
    expect(fails(["--bogus"])).toBe("unknown option --bogus");
    expect(fails(["--bogus=1"])).toBe("unknown option --bogus");
    expect(fails(["-x"])).toBe("unknown option -x");
    expect(fails(["-vx"])).toBe("unknown option -x");
    expect(fails(["--port"])).toBe("--port: needs a value");
    expect(fails(["--port", "--quiet"])).toBe("--port: needs a value");
    expect(fails(["--port", "-5"])).toBe('--port: expected a whole number, got "-5"');
    expect(fails(["--quiet=yes"])).toBe("--quiet: takes no value");
    expect(fails(["serve"])).toBe("unexpected argument serve (this command takes only options)");
    // Inherited members of the table object are no flags, nor is a positional.
    for (const inherited of ["--constructor", "--__proto__", "--toString", "--hasOwnProperty"]) expect(fails([inherited])).toBe(`unknown option ${inherited}`);
    expect(fails(["--target"], true)).toBe("unknown option --target");
  });
});
