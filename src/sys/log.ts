// Logging: consola with one reporter of our own that writes every line to
// stderr (consola's default sends info to stdout and throttles repeats).
// Formats: text (time, level, message, key=value fields), JSON lines, or the
// journal's "<N>" priority prefix without our own timestamp.
import * as libc from "./libc.ts";
import { nodeFs } from "./node-fs.ts";
import { createConsola, type ConsolaInstance, type LogObject } from "consola/core";
import type { LogFormat, Verbosity } from "../core/config.ts";

export type Fields = Record<string, string | number | boolean | null | undefined>;
export type LogOutput = LogFormat | "journal";

// consola's numeric levels: 0 error, 1 warn, 3 info, 4 debug, 5 trace.
const LEVEL_FOR_VERBOSITY = [1, 3, 4, 5] as const;
type LevelName = "error" | "warn" | "info" | "debug" | "trace";
const LEVEL: Record<LevelName, number> = { error: 0, warn: 1, info: 3, debug: 4, trace: 5 };
const JOURNAL_PRIORITY: Record<string, number> = { fatal: 2, error: 3, warn: 4, info: 6, debug: 7, trace: 7 };
const COLOUR: Record<string, string> = { error: "\x1b[31m", fatal: "\x1b[31m", warn: "\x1b[33m", debug: "\x1b[2m", trace: "\x1b[2m" };

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
 * consola is built when the first line is written, not before: a quiet
 * start (-q) writes none, and building it (with the colour question, an
 * isatty call) cost every start about 0.3 ms. A level below the verbosity
 * is a no-op that never reaches consola.
 */
export function createLogger(opts: LoggerOptions): Logger {
  const write = opts.write ?? ((line: string) => writeStderr(line));
  const level = LEVEL_FOR_VERBOSITY[opts.verbosity];
  let consola: ConsolaInstance | null = null;
  const build = (): ConsolaInstance => {
    const colour = typeof opts.colour === "function" ? opts.colour() : (opts.colour ?? false);
    const format = formatter(opts.output, colour);
    return createConsola({
      level,
      throttle: 0,
      reporters: [{ log: (obj: LogObject) => write(format(obj)) }],
    });
  };
  const at = (type: LevelName) =>
    LEVEL[type] > level ? () => {} : (msg: string, fields?: Fields) => void (consola ??= build())[type](msg, fields);
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

function formatter(output: LogOutput, colour: boolean): (obj: LogObject) => string {
  switch (output) {
    case "json":
      return (obj) => JSON.stringify({ time: obj.date.toISOString(), level: obj.type, msg: obj.args[0], ...obj.args[1] }) + "\n";
    case "journal":
      return (obj) => `<${JOURNAL_PRIORITY[obj.type] ?? 6}>${obj.args[0]}${fieldText(obj.args[1])}\n`;
    case "text":
      return (obj) => {
        const name = obj.type.toUpperCase().padEnd(5);
        const shown = colour && COLOUR[obj.type] ? `${COLOUR[obj.type]}${name}\x1b[0m` : name;
        return `${obj.date.toISOString()} ${shown} ${obj.args[0]}${fieldText(obj.args[1])}\n`;
      };
  }
}

function fieldText(fields: Fields | undefined): string {
  if (!fields) return "";
  let out = "";
  for (const key in fields) {
    const value = fields[key];
    if (value === undefined) continue;
    const text = String(value);
    out += ` ${key}=${/^[^\s"=]+$/.test(text) ? text : JSON.stringify(text)}`;
  }
  return out;
}

const encoder = new TextEncoder();

/**
 * Synchronous, so lines keep their order and survive process.exit(): write(2)
 * through libc (node:fs would cost every start its load time). A stderr pipe
 * left non-blocking by someone else can answer EAGAIN; node:fs's writeSync
 * waits that out, so the rest goes through it then.
 */
function writeStderr(line: string): void {
  let bytes = encoder.encode(line);
  while (bytes.length > 0) {
    const n = libc.write(2, bytes);
    if (n === -libc.EAGAIN) {
      try {
        nodeFs().writeSync(2, bytes);
      } catch {
        // stderr gone: nothing useful left to do with a log line.
      }
      return;
    }
    if (n === -libc.EINTR) continue;
    if (n < 0) return; // stderr closed or broken
    bytes = bytes.subarray(n);
  }
}
