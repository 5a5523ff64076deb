// The instance name (--instance, else the hostname): what /instance answers
// and what logs, the STATUS line and /metrics carry, so that whoever tests a
// load balancer or a fleet can tell which process answered.

/** Longest name accepted (the kernel's HOST_NAME_MAX, so any sane hostname fits). */
export const INSTANCE_MAX = 64;

/** 1 to 64 printable ASCII characters, no spaces. */
export function isInstanceName(s: string): boolean {
  return s.length >= 1 && s.length <= INSTANCE_MAX && /^[\x21-\x7e]+$/.test(s);
}

/** The name when --instance is not given: the hostname, or "localhost" if it is empty or unusable. */
export function defaultInstance(hostname: string): string {
  return isInstanceName(hostname) ? hostname : "localhost";
}
