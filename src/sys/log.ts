// Logging: which lines are written (the verbosity), with one call per level.
// What a written line looks like and where it goes (consola with a reporter
// of our own, the text, JSON or journal format, stderr) is log-writer.ts,
// loaded when the first line is written: a quiet start (-q) writes none and
// never loads it (a start pays for the code it loads, docs/benchmarks.md,
// "Startup").
import type { Verbosity } from "../core/config.ts";
import type { Fields, LineWriter, LogOutput } from "./log-writer.ts";

export type { Fields, LogOutput };

// consola's numeric levels: 0 error, 1 warn, 3 info, 4 debug, 5 trace.
const LEVEL_FOR_VERBOSITY = [1, 3, 4, 5] as const;
type LevelName = "error" | "warn" | "info" | "debug" | "trace";
const LEVEL: Record<LevelName, number> = { error: 0, warn: 1, info: 3, debug: 4, trace: 5 };

export interface LoggerOptions {
  output: LogOutput;
  verbosity: Verbosity;
  /** Colour the level names (only when stderr is a terminal); a function is asked once, when the first line is written. */
  colour?: boolean | (() => boolean);
  /** Where finished lines go; stderr by default. */
  write?: (line: string) => void;
}

export interface Logger {
  /** Info lines are written (not -q): worth checking before building a costly line. */
  readonly infoOn: boolean;
  /** -v: worth checking before building fields on a hot path. */
  readonly debugOn: boolean;
  /** -vv: per-connection and per-line tracing. */
  readonly traceOn: boolean;
  error(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  debug(msg: string, fields?: Fields): void;
  trace(msg: string, fields?: Fields): void;
}

/**
 * The writer (consola and the format) is loaded and built when the first line
 * is written, not before. Building it (with the colour question, an isatty
 * call) cost every start about 0.3 ms, and loading consola with the program
 * delayed its first statement by ~0.1 ms more. A level below the verbosity is
 * a no-op that never reaches it.
 */
export function createLogger(opts: LoggerOptions): Logger {
  const level = LEVEL_FOR_VERBOSITY[opts.verbosity];
  let writer: LineWriter | null = null;
  const build = (): LineWriter => {
    const colour = typeof opts.colour === "function" ? opts.colour() : (opts.colour ?? false);
    // A synchronous load on first use: log-writer.ts (with consola) is a chunk of its own in the executable.
    const { lineWriter } = require("./log-writer.ts") as typeof import("./log-writer.ts");
    return lineWriter({ output: opts.output, colour, level, write: opts.write });
  };
  const at = (type: LevelName) =>
    LEVEL[type] > level ? () => {} : (msg: string, fields?: Fields) => void (writer ??= build())[type](msg, fields);
  return {
    infoOn: level >= 3,
    debugOn: level >= 4,
    traceOn: level >= 5,
    error: at("error"),
    warn: at("warn"),
    info: at("info"),
    debug: at("debug"),
    trace: at("trace"),
  };
}
