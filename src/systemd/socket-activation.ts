// Socket activation, the sd_listen_fds(3) contract: when LISTEN_PID is this
// process and LISTEN_FDS = n > 0, descriptors 3 .. 3+n-1 were passed to us.
// Each is told apart by what it is (SO_TYPE, family, SO_ACCEPTCONN), never by
// its position: listening TCP/IPv4-or-IPv6 stream sockets go to the TCP
// service, UDP sockets to the UDP service. LISTEN_FDNAMES only labels them in
// the log. Anything else is logged and closed. LISTEN_PID, LISTEN_FDS and
// LISTEN_FDNAMES are removed from the environment in every case, so nothing
// started later inherits them.
//
// Bun makes an adopted descriptor non-blocking and close-on-exec itself
// (checked: flags 02004002 after Bun.listen({fd})/Bun.udpSocket({fd}) on a
// blocking socket); test/systemd/socket-activation.test.ts keeps checking it.
// Bun also calls listen(2) again with its own fixed backlog (512), which
// would silently replace systemd's Backlog=: the backlog found before
// adoption (TCP_INFO) is put back by restoreBacklogs(); --backlog is never
// applied to an adopted socket.
import { errnoName } from "../core/error-text.ts";
import * as libc from "../sys/libc.ts";
import type { Logger } from "../sys/log.ts";

export const SD_LISTEN_FDS_START = 3;
/** More than any socket unit passes; a larger LISTEN_FDS is taken as garbage. */
export const MAX_LISTEN_FDS = 1024;

export type Env = Record<string, string | undefined>;

export interface PassedFd {
  fd: number;
  /** From LISTEN_FDNAMES, or "unknown" as sd_listen_fds_with_names(3) says. */
  name: string;
}

export interface ListenFds {
  fds: PassedFd[];
  /** Why the variables were present but not used (or names were dropped): for the log. */
  note?: string;
}

/** Pure: read the LISTEN_* variables for process `pid`. */
export function parseListenFds(env: Env, pid: number): ListenFds {
  const pidText = env.LISTEN_PID;
  const countText = env.LISTEN_FDS;
  if (pidText === undefined && countText === undefined) return { fds: [] };
  if (pidText === undefined || !/^[0-9]+$/.test(pidText)) return { fds: [], note: `LISTEN_PID=${JSON.stringify(pidText ?? "")} is not a process id` };
  if (Number(pidText) !== pid) return { fds: [], note: `LISTEN_PID=${pidText} is another process (we are ${pid})` };
  if (countText === undefined || !/^[0-9]+$/.test(countText) || Number(countText) > MAX_LISTEN_FDS) {
    return { fds: [], note: `LISTEN_FDS=${JSON.stringify(countText ?? "")} is not a descriptor count` };
  }
  const n = Number(countText);
  let names: string[] | null = null;
  let note: string | undefined;
  if (env.LISTEN_FDNAMES !== undefined) {
    const given = env.LISTEN_FDNAMES.split(":");
    if (given.length === n) names = given;
    else note = `LISTEN_FDNAMES has ${given.length} names for ${n} descriptors: ignored`;
  }
  const fds: PassedFd[] = [];
  for (let i = 0; i < n; i++) fds.push({ fd: SD_LISTEN_FDS_START + i, name: names?.[i] || "unknown" });
  return note === undefined ? { fds } : { fds, note };
}

/** Pure: a listener's backlog from TCP_INFO bytes (tcpi_sacked, aliased to sk_max_ack_backlog for listeners). */
export function backlogFromTcpInfo(info: Uint8Array): number | null {
  const TCPI_SACKED = 28;
  if (info.length < TCPI_SACKED + 4) return null;
  return new DataView(info.buffer, info.byteOffset, info.byteLength).getUint32(TCPI_SACKED, true);
}

function listenBacklog(fd: number): number | null {
  const info = libc.getsockoptBytes(fd, libc.IPPROTO_TCP, libc.TCP_INFO, 104);
  return typeof info === "number" ? null : backlogFromTcpInfo(info);
}

/** What the kernel says about one passed descriptor. */
export interface FdProbe {
  /** SO_TYPE, or -errno (-ENOTSOCK for a file or pipe, -EBADF when not open). */
  type: number;
  /** Address family from getsockname, or a negative errno. */
  family: number;
  /** SO_ACCEPTCONN: a stream socket that is listening. */
  listening: boolean;
}

export type Verdict = { use: "tcp" } | { use: "udp" } | { use: "close"; why: string } | { use: "skip"; why: string };

const ENOTSOCK = 88;
const EBADF = 9;
const FAMILY: Record<number, string> = { [libc.AF_UNIX]: "AF_UNIX", [libc.AF_INET]: "AF_INET", [libc.AF_INET6]: "AF_INET6" };
const TYPE: Record<number, string> = { [libc.SOCK_STREAM]: "stream", [libc.SOCK_DGRAM]: "datagram", 5: "seqpacket", 3: "raw" };

/** Pure: what to do with a passed descriptor. */
export function classify(p: FdProbe): Verdict {
  if (p.type === -EBADF) return { use: "skip", why: "not an open descriptor" };
  if (p.type === -ENOTSOCK) return { use: "close", why: "not a socket" };
  if (p.type < 0) return { use: "close", why: `unusable (${errnoName(p.type)})` };
  const type = TYPE[p.type] ?? `type ${p.type}`;
  if (p.family !== libc.AF_INET && p.family !== libc.AF_INET6) {
    const family = p.family < 0 ? "unknown family" : (FAMILY[p.family] ?? `family ${p.family}`);
    return { use: "close", why: `${family} ${type} socket, not TCP or UDP` };
  }
  if (p.type === libc.SOCK_STREAM) {
    return p.listening ? { use: "tcp" } : { use: "close", why: "connected stream socket (Accept=yes is not supported)" };
  }
  if (p.type === libc.SOCK_DGRAM) return { use: "udp" };
  return { use: "close", why: `${type} socket, not TCP or UDP` };
}

function probe(fd: number): FdProbe {
  const type = libc.getsockoptInt(fd, libc.SOL_SOCKET, libc.SO_TYPE);
  if (type < 0) return { type, family: -1, listening: false };
  const name = libc.getsockname(fd);
  const family = typeof name === "number" ? name : name.family;
  const listening = type === libc.SOCK_STREAM && libc.getsockoptInt(fd, libc.SOL_SOCKET, libc.SO_ACCEPTCONN) === 1;
  return { type, family, listening };
}

/** Adopted descriptors by protocol (the shape startServer's `adopted` option takes). */
export interface SocketsByProtocol {
  tcp: number[];
  udp: number[];
}

export interface Activation {
  /** For startServer's `adopted` option. */
  sockets: SocketsByProtocol;
  /** Call once startServer has adopted the sockets: gives each TCP listener its systemd backlog back. */
  restoreBacklogs(): void;
}

/**
 * Take what systemd passed: the descriptors for startServer, or undefined
 * when there is nothing to adopt. Removes the LISTEN_* variables from `env`
 * (process.env in the daemon) whatever happens.
 */
export function takeListenFds(env: Env, pid: number, log: Logger): Activation | undefined {
  const { fds, note } = parseListenFds(env, pid);
  delete env.LISTEN_PID;
  delete env.LISTEN_FDS;
  delete env.LISTEN_FDNAMES;
  if (note) log.warn(`socket activation: ${note}`);
  const adopted: SocketsByProtocol = { tcp: [], udp: [] };
  const backlogs: [fd: number, backlog: number][] = [];
  for (const { fd, name } of fds) {
    const verdict = classify(probe(fd));
    switch (verdict.use) {
      case "tcp":
      case "udp": {
        adopted[verdict.use].push(fd);
        const sn = libc.getsockname(fd);
        const backlog = verdict.use === "tcp" ? listenBacklog(fd) : null;
        if (backlog !== null) backlogs.push([fd, backlog]);
        log.info(`socket activation: adopting ${verdict.use === "tcp" ? "TCP listener" : "UDP socket"}`, {
          fd,
          name,
          port: typeof sn === "number" ? undefined : sn.port,
          backlog: backlog ?? undefined,
        });
        break;
      }
      case "close":
        log.warn(`socket activation: closing passed descriptor: ${verdict.why}`, { fd, name });
        libc.close(fd);
        break;
      case "skip":
        log.warn(`socket activation: passed descriptor is ${verdict.why}`, { fd, name });
        break;
    }
  }
  if (adopted.tcp.length + adopted.udp.length === 0) return undefined;
  return {
    sockets: adopted,
    restoreBacklogs() {
      for (const [fd, backlog] of backlogs) {
        const rc = libc.listen(fd, backlog);
        if (rc < 0) log.warn("socket activation: could not restore the listener's backlog", { fd, backlog, error: errnoName(rc) });
      }
    },
  };
}
