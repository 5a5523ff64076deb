// Plain BSD sockets through bun:ffi, for the clients a runtime's socket API
// cannot play: a TCP client that reads exactly one byte when it wants (or
// never), one that closes with RST (SO_LINGER 0), a UDP socket bound to a
// privileged source port, and a raw IPv4 socket that forges a UDP header
// (source port 0, any source address: root only). Every call is non-throwing
// and returns the result or -errno, like the syscalls themselves.
import { dlopen, FFIType, ptr, read } from "bun:ffi";

const lib = dlopen("libc.so.6", {
  socket: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  bind: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  connect: { args: [FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  setsockopt: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i32 },
  getsockname: { args: [FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  send: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
  recv: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i64 },
  sendto: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.u32], returns: FFIType.i64 },
  recvfrom: { args: [FFIType.i32, FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.ptr, FFIType.ptr], returns: FFIType.i64 },
  shutdown: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  close: { args: [FFIType.i32], returns: FFIType.i32 },
  __errno_location: { args: [], returns: FFIType.ptr },
});
const sys = lib.symbols;

// Constants the server's own libc module already defines.
export { AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM, SOCK_CLOEXEC, SOL_SOCKET, MSG_NOSIGNAL } from "../../src/sys/libc.ts";
import { AF_INET, AF_INET6, SOCK_STREAM, SOCK_DGRAM, SOCK_CLOEXEC, SOL_SOCKET, MSG_NOSIGNAL } from "../../src/sys/libc.ts";

export const SOCK_RAW = 3;
export const IPPROTO_UDP = 17;
export const SO_REUSEADDR = 2;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_LINGER = 13;
export const SO_RCVBUFFORCE = 33;
export const MSG_DONTWAIT = 0x40;
export const SHUT_WR = 1;
export const EAGAIN = 11;
export const EINTR = 4;
export const ECONNRESET = 104;
export const EPIPE = 32;

function errno(): number {
  const p = sys.__errno_location();
  return p === null ? 0 : read.i32(p, 0);
}

const result = (rc: number | bigint): number => {
  const n = Number(rc);
  return n < 0 ? -errno() : n;
};

/** A sockaddr_in / sockaddr_in6 for a numeric address. */
export function sockaddr(address: string, port: number): Uint8Array {
  if (address.includes(":")) {
    const sa = new Uint8Array(28);
    const dv = new DataView(sa.buffer);
    dv.setUint16(0, AF_INET6, true);
    dv.setUint16(2, port, false);
    sa.set(ipv6Bytes(address), 8);
    return sa;
  }
  const sa = new Uint8Array(16);
  const dv = new DataView(sa.buffer);
  dv.setUint16(0, AF_INET, true);
  dv.setUint16(2, port, false);
  sa.set(ipv4Bytes(address), 4);
  return sa;
}

export function ipv4Bytes(address: string): Uint8Array {
  const parts = address.split(".").map(Number);
  if (parts.length !== 4 || parts.some((n) => !(n >= 0 && n <= 255))) throw new Error(`not an IPv4 address: ${address}`);
  return Uint8Array.from(parts);
}

function ipv6Bytes(address: string): Uint8Array {
  const out = new Uint8Array(16);
  const [head, tail] = address.includes("::") ? address.split("::") : [address, null];
  const h = head ? head.split(":").filter((s) => s !== "") : [];
  const t = tail ? tail.split(":").filter((s) => s !== "") : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill("0"), ...t];
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  return out;
}

export function socket(family: number, type: number, protocol = 0): number {
  return result(sys.socket(family, type | SOCK_CLOEXEC, protocol));
}

export function bind(fd: number, address: string, port: number): number {
  const sa = sockaddr(address, port);
  return result(sys.bind(fd, ptr(sa), sa.length));
}

export function connect(fd: number, address: string, port: number): number {
  const sa = sockaddr(address, port);
  return result(sys.connect(fd, ptr(sa), sa.length));
}

export function setsockoptInt(fd: number, level: number, name: number, value: number): number {
  const v = new Int32Array([value]);
  return result(sys.setsockopt(fd, level, name, ptr(v), 4));
}

/** SO_LINGER on with a 0 s timeout: close(2) then sends RST and drops what is unsent. */
export function setLingerZero(fd: number): number {
  const v = new Int32Array([1, 0]);
  return result(sys.setsockopt(fd, SOL_SOCKET, SO_LINGER, ptr(v), 8));
}

/** The local port a socket is bound to, or -errno. */
export function localPort(fd: number): number {
  const sa = new Uint8Array(28);
  const len = new Uint32Array([28]);
  const rc = result(sys.getsockname(fd, ptr(sa), ptr(len)));
  return rc < 0 ? rc : new DataView(sa.buffer).getUint16(2, false);
}

/** send(2) of buf[off, off+len); bytes sent or -errno. */
export function send(fd: number, buf: Uint8Array, flags = MSG_NOSIGNAL, off = 0, len = buf.length - off): number {
  if (len === 0) return 0;
  return result(sys.send(fd, ptr(buf, off), len, flags | MSG_NOSIGNAL));
}

/** recv(2) into buf[off, off+len); bytes read (0 = EOF) or -errno. */
export function recv(fd: number, buf: Uint8Array, flags = 0, off = 0, len = buf.length - off): number {
  return result(sys.recv(fd, ptr(buf, off), len, flags));
}

export function sendto(fd: number, buf: Uint8Array, address: string, port: number, flags = 0): number {
  const sa = sockaddr(address, port);
  // ptr() refuses an empty buffer: send a zero-length datagram from a 1-byte one.
  const src = buf.length === 0 ? new Uint8Array(1) : buf;
  return result(sys.sendto(fd, ptr(src), buf.length, flags, ptr(sa), sa.length));
}

export interface Datagram {
  data: Uint8Array;
  address: string;
  port: number;
}

/** recvfrom(2) on an IPv4 socket; the datagram, or -errno (e.g. -EAGAIN with MSG_DONTWAIT). */
export function recvfrom(fd: number, max = 65536, flags = 0): Datagram | number {
  const buf = new Uint8Array(max);
  const sa = new Uint8Array(28);
  const len = new Uint32Array([28]);
  const n = result(sys.recvfrom(fd, ptr(buf), max, flags, ptr(sa), ptr(len)));
  if (n < 0) return n;
  const dv = new DataView(sa.buffer);
  const family = dv.getUint16(0, true);
  const address = family === AF_INET ? Array.from(sa.subarray(4, 8)).join(".") : "ipv6";
  return { data: buf.slice(0, n), address, port: dv.getUint16(2, false) };
}

export function shutdownWrite(fd: number): number {
  return result(sys.shutdown(fd, SHUT_WR));
}

export function close(fd: number): number {
  return result(sys.close(fd));
}

/** A connected TCP socket (blocking connect; use MSG_DONTWAIT per call afterwards), or -errno. */
export function tcpConnect(address: string, port: number, opts: { rcvbuf?: number; sndbuf?: number } = {}): number {
  const fd = socket(address.includes(":") ? AF_INET6 : AF_INET, SOCK_STREAM);
  if (fd < 0) return fd;
  // Buffer sizes must be set before connect to shape the window.
  if (opts.rcvbuf !== undefined) setsockoptInt(fd, SOL_SOCKET, SO_RCVBUF, opts.rcvbuf);
  if (opts.sndbuf !== undefined) setsockoptInt(fd, SOL_SOCKET, SO_SNDBUF, opts.sndbuf);
  const rc = connect(fd, address, port);
  if (rc < 0) {
    close(fd);
    return rc;
  }
  return fd;
}

/** The Internet checksum (RFC 1071) of a byte string. */
function inetChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/**
 * A UDP datagram as a raw IPv4 socket sends it: an 8-byte UDP header with any
 * source port (0 included) and a correct checksum over the pseudo-header, so
 * that the receiving stack accepts it as if it came from srcAddr:srcPort.
 */
export function udpPacket(srcAddr: string, srcPort: number, dstAddr: string, dstPort: number, payload: Uint8Array): Uint8Array {
  const len = 8 + payload.length;
  const pkt = new Uint8Array(len);
  const dv = new DataView(pkt.buffer);
  dv.setUint16(0, srcPort, false);
  dv.setUint16(2, dstPort, false);
  dv.setUint16(4, len, false);
  pkt.set(payload, 8);
  const pseudo = new Uint8Array(12 + len);
  pseudo.set(ipv4Bytes(srcAddr), 0);
  pseudo.set(ipv4Bytes(dstAddr), 4);
  pseudo[9] = IPPROTO_UDP;
  new DataView(pseudo.buffer).setUint16(10, len, false);
  pseudo.set(pkt, 12);
  const sum = inetChecksum(pseudo);
  dv.setUint16(6, sum === 0 ? 0xffff : sum, false);
  return pkt;
}

/**
 * Send one forged UDP/IPv4 datagram through a raw socket (root only). The
 * kernel builds the IP header; the source address must be local (any of
 * 127.0.0.0/8 on loopback). Returns bytes sent or -errno.
 */
export function sendForgedUdp(srcAddr: string, srcPort: number, dstAddr: string, dstPort: number, payload: Uint8Array): number {
  const fd = socket(AF_INET, SOCK_RAW, IPPROTO_UDP);
  if (fd < 0) return fd;
  try {
    // Without IP_HDRINCL the kernel picks the source address from the route;
    // bind() pins it to the one asked for.
    const b = bind(fd, srcAddr, 0);
    if (b < 0) return b;
    return sendto(fd, udpPacket(srcAddr, srcPort, dstAddr, dstPort, payload), dstAddr, 0);
  } finally {
    close(fd);
  }
}

/**
 * A raw IPv4 socket that sees a copy of every UDP datagram delivered to this
 * host (root only): read it with watchUdp() to prove a reply was, or was not, sent.
 */
export function openUdpSniffer(): number {
  const fd = socket(AF_INET, SOCK_RAW, IPPROTO_UDP);
  // Other UDP traffic on the host must not crowd out what the test watches for:
  // 32 MiB past net.core.rmem_max (root may force it).
  if (fd >= 0) setsockoptInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, 32 * 1024 * 1024);
  return fd;
}

export interface SniffedUdp {
  srcAddr: string;
  dstAddr: string;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

/** Drain a sniffer socket without blocking: every UDP datagram it has seen since the last call. */
export function drainSniffer(fd: number): SniffedUdp[] {
  const out: SniffedUdp[] = [];
  for (let i = 0; i < 100_000; i++) {
    const d = recvfrom(fd, 70_000, MSG_DONTWAIT);
    if (typeof d === "number") break;
    const b = d.data;
    const ihl = (b[0]! & 0x0f) * 4;
    const dv = new DataView(b.buffer, b.byteOffset);
    out.push({
      srcAddr: Array.from(b.subarray(12, 16)).join("."),
      dstAddr: Array.from(b.subarray(16, 20)).join("."),
      srcPort: dv.getUint16(ihl, false),
      dstPort: dv.getUint16(ihl + 2, false),
      payload: b.slice(ihl + 8),
    });
  }
  return out;
}
