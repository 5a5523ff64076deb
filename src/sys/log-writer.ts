// How a log line looks and where it goes: consola with one reporter of our
// own that writes every line to stderr (consola's default sends info to stdout
// and throttles repeats), in the text format (time, level, message,
// key=value fields), JSON lines, or the journal's "<N>" priority prefix
// without our own timestamp. Loaded by log.ts when the first line is written.
import { createConsola, type ConsolaInstance, type LogObject } from "consola/core";
import { libc } from "./libc-on-demand.ts";
import { nodeFs } from "./node-fs.ts";
import type { LogFormat } from "../core/config.ts";

export type Fields = Record<string, string | number | boolean | null | undefined>;
export type LogOutput = LogFormat | "journal";

const JOURNAL_PRIORITY: Record<string, number> = { fatal: 2, error: 3, warn: 4, info: 6, debug: 7, trace: 7 };
const COLOUR: Record<string, string> = { error: "\x1b[31m", fatal: "\x1b[31m", warn: "\x1b[33m", debug: "\x1b[2m", trace: "\x1b[2m" };

/** Writes lines at consola's levels: error, warn, info, debug, trace. */
export type LineWriter = Pick<ConsolaInstance, "error" | "warn" | "info" | "debug" | "trace">;

export interface LineWriterOptions {
  output: LogOutput;
  colour: boolean;
  /** consola's numeric level: 1 warn, 3 info, 4 debug, 5 trace. */
  level: number;
  /** Where finished lines go; stderr by default. */
  write?: (line: string) => void;
}

export function lineWriter(opts: LineWriterOptions): LineWriter {
  const write = opts.write ?? writeStderr;
  const format = formatter(opts.output, opts.colour);
  return createConsola({
    level: opts.level,
    throttle: 0,
    reporters: [{ log: (obj: LogObject) => write(format(obj)) }],
  });
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
  const lib = libc();
  let bytes = encoder.encode(line);
  while (bytes.length > 0) {
    const n = lib.write(2, bytes);
    if (n === -lib.EAGAIN) {
      try {
        nodeFs().writeSync(2, bytes);
      } catch {
        // stderr gone: nothing useful left to do with a log line.
      }
      return;
    }
    if (n === -lib.EINTR) continue;
    if (n < 0) return; // stderr closed or broken
    bytes = bytes.subarray(n);
  }
}
