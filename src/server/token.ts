// Where the /shutdown token comes from: systemd's credential first, then
// --shutdown-token-file. Never argv, never the environment, never logged.
import { readCredential, readPrivateFile, SecretFileError } from "./secret-file.ts";

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

export { SecretFileError as TokenError };

/** Read the token; throws TokenError (fail closed) when a named file is unusable. */
export function loadShutdownToken(src: TokenSource): LoadedToken {
  const credential = readCredential(src.credentialsDirectory, CREDENTIAL_NAME);
  if (credential !== null) return { token: trimmed(credential), origin: `credential ${CREDENTIAL_NAME}` };
  if (src.tokenFile === null) return { token: null, origin: "none" };
  return { token: trimmed(readPrivateFile("--shutdown-token-file", src.tokenFile)), origin: `file ${src.tokenFile}` };
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
