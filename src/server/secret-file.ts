// Reading files that hold secrets (the /shutdown token, the TLS private key)
// under one rule: a named file must be a regular file that neither group nor
// others can read or write (mode 0600 or stricter), else it is refused (fail
// closed). A systemd credential ($CREDENTIALS_DIRECTORY/NAME, LoadCredential=)
// is private to the service by construction and is read as it is.
import { StartupError } from "../core/startup-error.ts";
import { errorCode, errorWords } from "../core/error-text.ts";
import { nodeFs } from "../sys/node-fs.ts";

export class SecretFileError extends StartupError {}

/** $CREDENTIALS_DIRECTORY/name, or null when there is no such credential. */
export function readCredential(credentialsDirectory: string | undefined, name: string): Uint8Array | null {
  if (!credentialsDirectory) return null;
  const path = `${credentialsDirectory.replace(/\/+$/, "")}/${name}`;
  try {
    return nodeFs().readFileSync(path);
  } catch (err) {
    if (errorCode(err) === "ENOENT") return null;
    throw new SecretFileError(`credential ${path}: ${errorWords(err)}`);
  }
}

/** A file of any mode (a certificate is public); `flag` names it in errors. */
export function readPublicFile(flag: string, path: string): Uint8Array {
  try {
    return nodeFs().readFileSync(path);
  } catch (err) {
    throw new SecretFileError(`${flag} ${path}: ${errorWords(err)}`);
  }
}

/** A secret file under the 0600 rule; `flag` names it in errors. */
export function readPrivateFile(flag: string, path: string): Uint8Array {
  let mode: number;
  try {
    const st = nodeFs().statSync(path);
    if (!st.isFile()) throw new SecretFileError(`${flag} ${path}: not a regular file`);
    mode = st.mode;
  } catch (err) {
    if (err instanceof SecretFileError) throw err;
    throw new SecretFileError(`${flag} ${path}: ${errorWords(err)}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new SecretFileError(
      `${flag} ${path}: readable or writable by group or others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`,
    );
  }
  return readPublicFile(flag, path);
}
