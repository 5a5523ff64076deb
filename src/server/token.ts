// Where the /shutdown token comes from: systemd's credential first, then
// --shutdown-token-file. Never argv, never the environment, never logged.
import { StartupError } from "../core/startup-error.ts";
import { errorCode, errorWords } from "../core/error-text.ts";
import { nodeFs } from "../sys/node-fs.ts";

export const CREDENTIAL_NAME = "shutdown.token";

export interface TokenSource {
  /** $CREDENTIALS_DIRECTORY, as systemd sets it. */
  credentialsDirectory?: string;
  tokenFile: string | null;
}

export interface LoadedToken {
  token: Uint8Array | null;
  /** Where it came from, for the startup log (never the token itself). */
  origin: string;
}

export class TokenError extends StartupError {}

/** Read the token; throws TokenError (fail closed) when a named file is unusable. */
export function loadShutdownToken(src: TokenSource): LoadedToken {
  if (src.credentialsDirectory) {
    const path = `${src.credentialsDirectory.replace(/\/+$/, "")}/${CREDENTIAL_NAME}`;
    const data = tryRead(path);
    if (data !== null) return { token: trimmed(data), origin: `credential ${CREDENTIAL_NAME}` };
  }
  if (src.tokenFile === null) return { token: null, origin: "none" };
  const path = src.tokenFile;
  let mode: number;
  try {
    const st = nodeFs().statSync(path);
    if (!st.isFile()) throw new TokenError(`--shutdown-token-file ${path}: not a regular file`);
    mode = st.mode;
  } catch (err) {
    if (err instanceof TokenError) throw err;
    throw new TokenError(`--shutdown-token-file ${path}: ${errorWords(err)}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new TokenError(
      `--shutdown-token-file ${path}: readable or writable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`,
    );
  }
  const data = tryRead(path, true)!;
  return { token: trimmed(data), origin: `file ${path}` };
}

function tryRead(path: string, mustExist = false): Uint8Array | null {
  try {
    return nodeFs().readFileSync(path);
  } catch (err) {
    if (!mustExist && errorCode(err) === "ENOENT") return null;
    throw new TokenError(`${mustExist ? "--shutdown-token-file " : "credential "}${path}: ${errorWords(err)}`);
  }
}

/** Surrounding whitespace removed; an empty token means none. */
function trimmed(data: Uint8Array): Uint8Array | null {
  let start = 0;
  let end = data.length;
  while (start < end && isSpace(data[start]!)) start++;
  while (end > start && isSpace(data[end - 1]!)) end--;
  return start === end ? null : data.slice(start, end);
}

const isSpace = (b: number) => b === 0x20 || (b >= 0x09 && b <= 0x0d);
