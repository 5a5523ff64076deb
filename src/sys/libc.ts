// The one module that talks to libc through bun:ffi (marked experimental
// upstream, so it stays small): the socket, resource-limit, memory,
// descriptor, signal-mask and exec calls that Bun's own API does not expose,
// and one signal handler in C (compiled at run time by bun:ffi's cc) that
// sets other threads' signal masks. Every function returns plain values and
// reports failure as a negative errno, never by throwing
// (compileThreadMasks excepted).
//
// bun:ffi itself is loaded on first use, not with the program: loading it
// costs a start ~0.3 ms and its first dlopen ~0.15 ms more, and a quiet start
// makes no libc call before it serves (docs/benchmarks.md, "Startup"). A start
// that will need it anyway loads it ahead with loadFfi(), which is cheaper
// than the synchronous require() a first call makes otherwise.
import type * as Ffi from "bun:ffi";
import type { Pointer } from "bun:ffi";

let loaded: typeof Ffi | null = null;
const ffi = (): typeof Ffi => (loaded ??= require("bun:ffi") as typeof Ffi);

/** Load bun:ffi now (when a start is going to call libc before it serves anyway). */
export async function loadFfi(): Promise<void> {
  loaded ??= await import("bun:ffi");
}

/** The values of bun:ffi's FFIType members used here (the enum itself would load the module). */
const FFIType = {
  i32: 5 as Ffi.FFIType.i32,
  u32: 6 as Ffi.FFIType.u32,
  i64: 7 as Ffi.FFIType.i64,
  u64: 8 as Ffi.FFIType.u64,
  ptr: 12 as Ffi.FFIType.ptr,
  void: 13 as Ffi.FFIType.void,
  cstring: 14 as Ffi.FFIType.cstring,
};

/** The C signatures by name, built by the first dlopen: a quiet start makes no libc call before it serves (~20 us for the table). */
const signatureTable = () => ({
  listen: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  getsockopt: {
    args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr],
    returns: FFIType.i32,
  },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  getifaddrs: { args: [FFIType.ptr], returns: FFIType.i32 },
  freeifaddrs: { args: [FFIType.ptr], returns: FFIType.void },
  if_nametoindex: { args: [FFIType.cstring], returns: FFIType.u32 },
  getrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  setrlimit: { args: [FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  sendto: {
    args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.u32],
    returns: FFIType.i64,
  },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  write: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
  isatty: { args: [FFIType.i32], returns: FFIType.i32 },
  uname: { args: [FFIType.ptr], returns: FFIType.i32 },
  madvise: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  memfd_create: { args: [FFIType.cstring, FFIType.u32], returns: FFIType.i32 },
  read: { args: [FFIType.i32, FFIType.ptr, FFIType.u64], returns: FFIType.i64 },
  pread: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i64], returns: FFIType.i64 },
  sigaction: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  tgkill: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  lseek: { args: [FFIType.i32, FFIType.i64, FFIType.i32], returns: FFIType.i64 },
  poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
  pthread_sigmask: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  execve: { args: [FFIType.cstring, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  getenv: { args: [FFIType.cstring], returns: FFIType.ptr },
  prctl: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.u64, FFIType.u64], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
}) as const;

type Signatures = ReturnType<typeof signatureTable>;
type Symbols = ReturnType<typeof Ffi.dlopen<Signatures>>["symbols"];
type Name = keyof Signatures;
let signatures: Signatures | null = null;

// Each symbol is bound on its first call: dlopen compiles a trampoline per
// symbol, and binding all of them up front costs every start a millisecond.
const bound: { -readonly [K in Name]?: Symbols[K] } = {};
const symbols = new Proxy(bound, {
  get(_, name: Name) {
    return (bound[name] ??= ffi().dlopen("libc.so.6", { [name]: (signatures ??= signatureTable())[name] } as Pick<Signatures, typeof name>).symbols[name] as never);
  },
}) as Symbols;

/** The address of a libc function (bun:ffi's bound functions carry it as `ptr`, which its types leave out). */
function address(name: Name): Pointer {
  return (symbols[name] as unknown as { ptr: Pointer }).ptr;
}

export const AF_UNIX = 1;
export { AF_INET, AF_INET6 } from "../core/sockaddr.ts";
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_CLOEXEC = 0o2000000;
export const SOCK_NONBLOCK = 0o4000;
export const SOL_SOCKET = 1;
export const SO_TYPE = 3;
export const SO_REUSEADDR = 2;
export const SO_RCVBUF = 8;
export const SO_REUSEPORT = 15;
export const SO_ACCEPTCONN = 30;
export const IPPROTO_IP = 0;
export const IP_PKTINFO = 8;
export const IP_RECVERR = 11;
export const IPPROTO_TCP = 6;
export const TCP_INFO = 11;
export const IPPROTO_IPV6 = 41;
export const IPV6_V6ONLY = 26;
export const IPV6_RECVERR = 25;
export const IPV6_RECVPKTINFO = 49;
export const RLIMIT_NOFILE = 7;
export const EAGAIN = 11;
export const EINTR = 4;
const ESRCH = 3;
export const MSG_PEEK = 0x2;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MADV_DONTNEED = 4;
export const SIGHUP = 1;
export const SIGINT = 2;
export const SIGTERM = 15;
const F_GETFD = 1;
const F_SETFD = 2;
const FD_CLOEXEC = 1;
const SEEK_END = 2;
const POLLIN = 1;
const PR_SET_NAME = 15;
const MFD_CLOEXEC = 1;
const SIG_BLOCK = 0;
const SIG_UNBLOCK = 1;

function errno(): number {
  const p = symbols.__errno_location();
  return p === null ? 0 : ffi().read.i32(p, 0);
}

/** Result of a call: the non-negative return value, or -errno. */
function result(rc: number | bigint): number {
  const n = Number(rc);
  return n < 0 ? -errno() : n;
}

/** listen(2) again on a listening socket: Linux updates its backlog in place. */
export function listen(fd: number, backlog: number): number {
  return result(symbols.listen(fd, backlog));
}

/** An int-valued setsockopt(2); returns 0 or -errno. */
export function setsockoptInt(fd: number, level: number, name: number, value: number): number {
  const v = new Int32Array([value]);
  return result(symbols.setsockopt(fd, level, name, ffi().ptr(v), 4));
}

/** An int-valued getsockopt(2); returns the value or -errno. */
export function getsockoptInt(fd: number, level: number, name: number): number {
  const value = new Int32Array(1);
  const len = new Uint32Array([4]);
  const rc = result(symbols.getsockopt(fd, level, name, ffi().ptr(value), ffi().ptr(len)));
  return rc < 0 ? rc : (value[0] ?? 0);
}

/** A getsockopt(2) returning raw bytes (at most `size`); the bytes, or -errno. */
export function getsockoptBytes(fd: number, level: number, name: number, size: number): Uint8Array | number {
  const value = new Uint8Array(size);
  const len = new Uint32Array([size]);
  const rc = result(symbols.getsockopt(fd, level, name, ffi().ptr(value), ffi().ptr(len)));
  return rc < 0 ? rc : value.subarray(0, len[0]);
}

export interface SockName {
  family: number;
  port: number;
}

/** getsockname(2) reduced to what we need: the family and the port. */
export function getsockname(fd: number): SockName | number {
  const addr = new Uint8Array(128);
  const len = new Uint32Array([addr.length]);
  const rc = result(symbols.getsockname(fd, ffi().ptr(addr), ffi().ptr(len)));
  if (rc < 0) return rc;
  const family = addr[0]! | (addr[1]! << 8);
  const port = (addr[2]! << 8) | addr[3]!; // network byte order, same offset for v4 and v6
  return { family, port };
}

export interface Rlimit {
  soft: number;
  hard: number;
}

export function getrlimit(resource: number): Rlimit | number {
  const buf = new BigUint64Array(2);
  const rc = result(symbols.getrlimit(resource, ffi().ptr(buf)));
  if (rc < 0) return rc;
  return { soft: clampInfinity(buf[0]!), hard: clampInfinity(buf[1]!) };
}

export function setrlimit(resource: number, limit: Rlimit): number {
  const buf = new BigUint64Array([BigInt(limit.soft), BigInt(limit.hard)]);
  return result(symbols.setrlimit(resource, ffi().ptr(buf)));
}

// RLIM_INFINITY is all ones; report it as the largest safe integer.
function clampInfinity(v: bigint): number {
  return v > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(v);
}

/** bind(2) to a sockaddr given as raw bytes; 0 or -errno. */
export function bind(fd: number, addr: Uint8Array): number {
  return result(symbols.bind(fd, ffi().ptr(addr), addr.length));
}

/** One entry of getifaddrs(3) that has an address: the interface, its flags, a copy of the sockaddr. */
export interface InterfaceAddress {
  name: string;
  flags: number;
  /** The sockaddr bytes: sockaddr_in (16) or sockaddr_in6 (28). */
  addr: Uint8Array;
}

/** struct ifaddrs offsets on LP64 Linux: ifa_next, ifa_name, ifa_flags, ifa_addr. */
const IFA_NEXT = 0;
const IFA_NAME = 8;
const IFA_FLAGS = 16;
const IFA_ADDR = 24;
const SOCKADDR_SIZE: Record<number, number> = { 2: 16, 10: 28 };

/** getifaddrs(3), copied out and freed: every IPv4 and IPv6 address of every interface; -errno on failure. */
export function getifaddrs(): InterfaceAddress[] | number {
  const { CString, read, toArrayBuffer } = ffi();
  const head = new BigUint64Array(1);
  const rc = result(symbols.getifaddrs(ffi().ptr(head)));
  if (rc < 0) return rc;
  const first = Number(head[0]!) as Pointer;
  const out: InterfaceAddress[] = [];
  // Bounded: the kernel's list ends in NULL; the cap only guards against a corrupt list.
  for (let p = first, n = 0; p !== 0 && n < 65536; p = read.ptr(p, IFA_NEXT) as Pointer, n++) {
    const addr = read.ptr(p, IFA_ADDR) as Pointer;
    if (addr === 0) continue;
    const size = SOCKADDR_SIZE[read.u16(addr, 0)];
    if (size === undefined) continue;
    out.push({
      name: new CString(read.ptr(p, IFA_NAME) as Pointer).toString(),
      flags: read.u32(p, IFA_FLAGS),
      addr: new Uint8Array(toArrayBuffer(addr, 0, size)).slice(),
    });
  }
  if (first !== 0) symbols.freeifaddrs(first);
  return out;
}

/** The index of a network interface by name, or 0 if there is none. */
export function interfaceIndex(name: string): number {
  return symbols.if_nametoindex(Buffer.from(name + "\0"));
}

/** socket(2); returns the descriptor or -errno. */
export function socket(domain: number, type: number, protocol = 0): number {
  return result(symbols.socket(domain, type, protocol));
}

/** sendto(2) of one datagram to a socket address given as raw bytes. */
export function sendto(fd: number, data: Uint8Array, addr: Uint8Array, flags = MSG_NOSIGNAL): number {
  if (data.length === 0) return result(symbols.sendto(fd, null, 0, flags, ffi().ptr(addr), addr.length));
  return result(symbols.sendto(fd, ffi().ptr(data), data.length, flags, ffi().ptr(addr), addr.length));
}

/** write(2) once; returns the bytes written or -errno. */
export function write(fd: number, data: Uint8Array): number {
  return data.length === 0 ? 0 : result(symbols.write(fd, ffi().ptr(data), data.length));
}

/** recv(2) once into all of `buf`; returns the bytes received (0 at end of stream) or -errno. */
export function recv(fd: number, buf: Uint8Array, flags: number): number {
  return buf.length === 0 ? 0 : result(symbols.recv(fd, ffi().ptr(buf), buf.length, flags));
}

/** struct utsname: six fields of 65 bytes (Linux, glibc); nodename is the second. */
const UTS_FIELD = 65;

/** The hostname from uname(2) ("" if it fails): no file to open, no node:os to load. */
export function hostname(): string {
  const uts = new Uint8Array(UTS_FIELD * 6);
  if (result(symbols.uname(ffi().ptr(uts))) < 0) return "";
  const field = uts.subarray(UTS_FIELD, 2 * UTS_FIELD);
  const end = field.indexOf(0);
  return String.fromCharCode(...field.subarray(0, end < 0 ? field.length : end));
}

/** madvise(2) on [address, address + length) of this process; 0 or -errno. */
export function madvise(address: number, length: number, advice: number): number {
  return result(symbols.madvise(address as Pointer, length, advice));
}

export function isatty(fd: number): boolean {
  return symbols.isatty(fd) === 1;
}

export function close(fd: number): number {
  return result(symbols.close(fd));
}

/** Set or clear FD_CLOEXEC on a descriptor; 0 or -errno. */
export function setCloseOnExec(fd: number, on: boolean): number {
  const flags = result(symbols.fcntl(fd, F_GETFD, 0));
  if (flags < 0) return flags;
  return result(symbols.fcntl(fd, F_SETFD, on ? flags | FD_CLOEXEC : flags & ~FD_CLOEXEC));
}

/** memfd_create(2) without MFD_CLOEXEC (the descriptor is meant to survive an exec); the descriptor or -errno. */
export function memfdCreate(name: string): number {
  return result(symbols.memfd_create(Buffer.from(name + "\0"), 0));
}

/** read(2) once into all of `buf`; the bytes read (0 at end of file) or -errno. */
export function readFd(fd: number, buf: Uint8Array): number {
  return buf.length === 0 ? 0 : result(symbols.read(fd, ffi().ptr(buf), buf.length));
}

/** The whole content of a regular file (or memfd) by descriptor, from offset 0; -errno on failure. */
export function readWhole(fd: number): Uint8Array | number {
  const size = result(symbols.lseek(fd, 0, SEEK_END));
  if (size < 0) return size;
  const out = new Uint8Array(size);
  for (let done = 0; done < size; ) {
    const n = result(symbols.pread(fd, ffi().ptr(out, done), size - done, done));
    if (n < 0) return n;
    if (n === 0) return out.subarray(0, done);
    done += n;
  }
  return out;
}

/** How many of the descriptors are readable now (poll(2) with no wait), or -errno. */
export function readableNow(fds: readonly number[]): number {
  if (fds.length === 0) return 0;
  const pollfds = new Int32Array(fds.length * 2);
  fds.forEach((fd, i) => {
    pollfds[2 * i] = fd;
    pollfds[2 * i + 1] = POLLIN; // events (short), revents (short) = 0
  });
  return result(symbols.poll(ffi().ptr(pollfds), fds.length, 0));
}

/** Block (or unblock) signals for the calling thread (pthread_sigmask(3)); 0 or -errno. The mask survives execve(2). */
export function blockSignals(signals: readonly number[], block: boolean): number {
  const set = new BigUint64Array(16); // glibc's sigset_t: 1024 bits
  set[0] = signalBits(signals);
  const rc = symbols.pthread_sigmask(block ? SIG_BLOCK : SIG_UNBLOCK, ffi().ptr(set), null);
  return rc === 0 ? 0 : -rc; // returns the error number itself, not -1 and errno
}

/** The bits of `signals` in the first word of a signal set (as /proc/PID/task/TID/status shows SigBlk). */
export function signalBits(signals: readonly number[]): bigint {
  let bits = 0n;
  for (const sig of signals) bits |= 1n << BigInt(sig - 1);
  return bits;
}

/**
 * execve(2), prepared: the strings and their tables are laid out and the
 * binding compiled now, so the returned call goes straight to the kernel.
 * It returns only on failure, with -errno.
 */
export function prepareExecve(path: string, argv: readonly string[], env: readonly string[]): () => number {
  const strings = (list: readonly string[]) => {
    const bufs = list.map((s) => Buffer.from(s + "\0"));
    const table = new BigUint64Array(bufs.length + 1); // NULL-terminated
    bufs.forEach((b, i) => (table[i] = BigInt(ffi().ptr(b))));
    return { bufs, table };
  };
  const file = Buffer.from(path + "\0");
  const a = strings(argv);
  const e = strings(env);
  const call = symbols.execve;
  // The tables hold raw addresses; the closure holds `a` and `e`, so the strings stay reachable.
  return () => result(call(file, ffi().ptr(a.table), ffi().ptr(e.table)));
}

/**
 * Blank "NAME=value" with NUL bytes where execve(2) put it, the block
 * /proc/PID/environ shows (process.env is a copy: deleting from it leaves
 * that block alone). Call before deleting it from process.env. True if it was there.
 */
export function blankEnvironmentEntry(name: string): boolean {
  const value = symbols.getenv(Buffer.from(name + "\0"));
  if (value === null) return false;
  const { CString, toArrayBuffer } = ffi();
  const length = name.length + 1 + Buffer.byteLength(new CString(value).toString());
  new Uint8Array(toArrayBuffer((Number(value) - name.length - 1) as Pointer, 0, length)).fill(0);
  return true;
}

/** Name the calling thread (the main thread's name is the process name, comm: at most 15 bytes); 0 or -errno. */
export function setThreadName(name: string): number {
  const bytes = Buffer.alloc(16);
  bytes.write(name.slice(0, 15), "latin1");
  return result(symbols.prctl(PR_SET_NAME, ffi().ptr(bytes), 0, 0, 0));
}

// Other threads' signal masks. A thread sets only its own mask, and the
// runtime's helper threads never block anything; but the mask a thread
// returns to from a signal handler is the one saved in the handler's
// ucontext. So a private signal (MASK_SIGNAL), sent to one thread with
// tgkill, runs a handler there that edits that saved mask: on return the
// thread blocks (or unblocks) what was asked. Native code, since it runs on
// the runtime's threads (a JSCallback would run JavaScript there): C,
// compiled by bun:ffi's cc (TinyCC) from a memfd, calling libc only through
// the pointer handed to it and compiled with -nostdlib (TinyCC otherwise
// links -lc, which needs libc.so or libc.a, i.e. libc6-dev, absent where the
// daemon runs: checked, cc then fails). No system headers either: the struct
// is glibc's struct sigaction on x86_64 and aarch64 (handler, a 1024-bit
// sigset_t, int flags, restorer; padded beyond it); SA_SIGINFO (4) and
// SA_RESTART (0x10000000) are the same on both; uc_sigmask is at byte 296 of
// the ucontext on x86_64 and 40 on aarch64 (the kernel's rt_sigframe).
const MASKS_SOURCE = `
#if defined(__x86_64__)
#define SIGMASK_AT 296
#elif defined(__aarch64__)
#define SIGMASK_AT 40
#else
#error "uc_sigmask's place is known for x86_64 and aarch64 only"
#endif
struct action { void (*handler)(int, void *, void *); unsigned long mask[16]; int flags; void (*restorer)(void); char spare[64]; };
typedef int (*sigaction_fn)(int, const struct action *, struct action *);
static unsigned long set_bits, clear_bits;
static void adjust(int sig, void *info, void *context) {
  unsigned long *mask = (unsigned long *)((char *)context + SIGMASK_AT);
  *mask = (*mask | set_bits) & ~clear_bits;
}
int masks_install(void *sigaction, int sig) {
  struct action act;
  char *p = (char *)&act;
  unsigned long i;
  for (i = 0; i < sizeof act; i++) p[i] = 0;
  act.handler = adjust;
  act.flags = 4 | 0x10000000;
  return ((sigaction_fn)sigaction)(sig, &act, 0);
}
void masks_mode(unsigned long set, unsigned long clear) {
  set_bits = set;
  clear_bits = clear;
}
`;
const MASKS_SIGNATURES = {
  masks_install: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  masks_mode: { args: [FFIType.u64, FFIType.u64], returns: FFIType.void },
} as const;
/** SIGRTMAX: neither glibc (32, 33) nor the runtime catches it (SigCgt in /proc/PID/status: checked). Its handler stays in once installed (a thread may still have one queued). */
const MASK_SIGNAL = 64;

let masks: ReturnType<typeof Ffi.cc<typeof MASKS_SIGNATURES>>["symbols"] | null = null;

/** Compile and install the mask handler now (a few ms, once per process); throws when it cannot be had. */
export function compileThreadMasks(): void {
  if (masks) return;
  const fd = result(symbols.memfd_create(Buffer.from("epoll-echo-thread-masks\0"), MFD_CLOEXEC));
  if (fd < 0) throw new Error(`memfd_create: errno ${-fd}`);
  try {
    const source = Buffer.from(MASKS_SOURCE);
    if (write(fd, source) !== source.length) throw new Error("cannot write the mask handler's source");
    const compiled = ffi().cc({ source: `/proc/self/fd/${fd}`, flags: ["-nostdlib"], symbols: MASKS_SIGNATURES }).symbols;
    if (compiled.masks_install(address("sigaction"), MASK_SIGNAL) !== 0) throw new Error(`sigaction: errno ${errno()}`);
    masks = compiled;
  } finally {
    close(fd);
  }
}

/**
 * Ask each thread in `tids` (of this process) to block, or unblock,
 * `signals` (compileThreadMasks first). Asynchronous: each does it when it
 * next runs; /proc/self/task/TID/status (SigBlk) shows when it has. Returns
 * how many were asked (a thread gone meanwhile is skipped; none before
 * compileThreadMasks), or -errno.
 */
export function setThreadMasks(tids: readonly number[], signals: readonly number[], block: boolean): number {
  if (masks === null) return 0; // never installed: no thread was asked before
  const bits = signalBits(signals);
  masks.masks_mode(block ? bits : 0n, block ? 0n : bits);
  let asked = 0;
  for (const tid of tids) {
    const rc = result(symbols.tgkill(process.pid, tid, MASK_SIGNAL));
    if (rc === 0) asked++;
    else if (rc !== -ESRCH) return rc;
  }
  return asked;
}
