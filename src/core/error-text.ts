// Failed system calls in words an operator can act on, from one table: the
// server's bind and token errors, the probe's connection errors and the
// -errno results of the libc layer all name a code the same way.

/** Linux errno numbers of the codes the libc layer reports. */
const ERRNO_CODES: Record<number, string> = {
  1: "EPERM",
  2: "ENOENT",
  9: "EBADF",
  11: "EAGAIN",
  13: "EACCES",
  22: "EINVAL",
  24: "EMFILE",
  88: "ENOTSOCK",
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  104: "ECONNRESET",
  111: "ECONNREFUSED",
};

const WORDS: Record<string, string> = {
  ENOENT: "no such file",
  EACCES: "permission denied",
  EISDIR: "is a directory",
  EADDRINUSE: "address already in use",
  EADDRNOTAVAIL: "address not available on this host",
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ETIMEDOUT: "timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "no such host",
  EAI_AGAIN: "name lookup failed for now",
};

/** The code of a -errno result: "EADDRINUSE", or "errno N" for one not in the table. */
export function errnoName(negErrno: number): string {
  return ERRNO_CODES[-negErrno] ?? `errno ${-negErrno}`;
}

/** The code of a thrown error ("EADDRINUSE"), if it has one. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" ? code : undefined;
}

/** "address already in use (EADDRINUSE)"; a code without words as is; else the message's first line. */
export function errorText(err: unknown): string {
  const code = errorCode(err);
  const words = code === undefined ? undefined : WORDS[code];
  return words === undefined ? errorWords(err) : `${words} (${code})`;
}

/** As errorText without the code: "no such file" (for messages that already name the file). */
export function errorWords(err: unknown): string {
  const code = errorCode(err);
  if (code !== undefined) return WORDS[code] ?? code;
  return err instanceof Error ? err.message.split("\n")[0]! : String(err);
}
