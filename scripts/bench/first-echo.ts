// "Does it echo yet?" for the benchmark: one line over TCP, one datagram over
// UDP, retried until the server answers or the deadline passes. Used to time
// a server's start and to wait for a server before loading it. Built on the
// probe's sockets (src/probe/net.ts).
import { makeLine } from "../../src/core/payload.ts";
import { openUdp, TcpLink, type Endpoint, type StreamOptions } from "../../src/probe/net.ts";
import { Stopper } from "../../src/probe/stopper.ts";

const LINE = makeLine(64, 0);
const UDP_RETRY_MS = 0.2;
/**
 * After the echo the socket stays open until no datagram has come for this
 * long: replies to the last tries must not meet a closed port, whose ICMP
 * error a server without a UDP error handler (the baseline) dies of.
 */
const UDP_QUIET_MS = 20;
const UDP_LINGER_MAX_MS = 500;
/** One try's bounds: a loopback handshake or echo that takes longer than this is retried, not awaited. */
const CONNECT_TRY_MS = 200;
const REPLY_TRY_MS = 1000;
const never = new Stopper();
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface EchoCheck {
  /** performance.now() when the echo was complete, or null when none came before the deadline. */
  at: number | null;
  /** The echo came back, but not byte for byte. */
  mismatch: boolean;
}

/**
 * Connect (again and again while refused; over TLS and/or after a PROXY
 * header as `via` says), send one line, wait for it back. Deadline in
 * performance.now() ms.
 */
export async function firstTcpEcho(ep: Endpoint, via: StreamOptions, deadline: number): Promise<EchoCheck> {
  while (performance.now() < deadline) {
    let link: TcpLink;
    try {
      link = await TcpLink.connect([ep], CONNECT_TRY_MS, via);
    } catch {
      await nextTurn();
      continue;
    }
    try {
      link.write(LINE);
      const got = await link.reply(LINE.length, Math.min(deadline, performance.now() + REPLY_TRY_MS), never);
      if (got instanceof Uint8Array) return { at: performance.now(), mismatch: Buffer.compare(got, LINE) !== 0 };
    } finally {
      link.close();
    }
  }
  return { at: null, mismatch: false };
}

/** Send one datagram every 200 µs until one comes back (then let the stragglers in). Deadline in performance.now() ms. */
export async function firstUdpEcho(ep: Endpoint, deadline: number): Promise<EchoCheck> {
  let result: EchoCheck = { at: null, mismatch: false };
  let lastReply = 0;
  const socket = await openUdp(ep, {
    datagram: (d) => {
      lastReply = performance.now();
      if (result.at === null) result = { at: lastReply, mismatch: Buffer.compare(d, LINE) !== 0 };
    },
    error: () => {}, // ECONNREFUSED while nothing is bound yet
  });
  try {
    let last = -Infinity;
    while (result.at === null && performance.now() < deadline) {
      const now = performance.now();
      if (now - last >= UDP_RETRY_MS) {
        try {
          socket.send(LINE);
        } catch {
          // the ICMP error of the previous try
        }
        last = now;
      }
      await nextTurn();
    }
    const lingerUntil = performance.now() + UDP_LINGER_MAX_MS;
    while (result.at !== null && performance.now() - lastReply < UDP_QUIET_MS && performance.now() < lingerUntil) await Bun.sleep(5);
  } finally {
    socket.close();
  }
  return result;
}
