// Minimal real-socket clients for tests: a TCP client that collects every
// byte it receives and a UDP request helper. Bytes in, bytes out.
import * as net from "node:net";
import * as dgram from "node:dgram";
import * as tls from "node:tls";

export const enc = (s: string) => new TextEncoder().encode(s);
export const bytes = (s: string) => Buffer.from(s, "latin1");

export class TcpClient {
  readonly socket: net.Socket;
  private received = Buffer.alloc(0);
  private waiters = new Set<() => void>();
  ended = false;
  closed = false;
  error: Error | null = null;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (d: Buffer) => {
      this.received = Buffer.concat([this.received, d]);
      this.wake();
    });
    socket.on("end", () => {
      this.ended = true;
      this.wake();
    });
    socket.on("close", () => {
      this.closed = true;
      this.wake();
    });
    socket.on("error", (e) => {
      this.error = e;
      this.wake();
    });
  }

  static connect(port: number, host = "127.0.0.1", opts: { localAddress?: string } = {}): Promise<TcpClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, localAddress: opts.localAddress, allowHalfOpen: true });
      s.setNoDelay(true);
      s.once("connect", () => resolve(new TcpClient(s)));
      s.once("error", reject);
    });
  }

  /**
   * A TLS client: `ca` (PEM) to verify the server as "localhost", else no
   * verification. `before` is written in clear first (a PROXY header). Resolves
   * once the handshake is done; rejects if it fails.
   */
  static connectTls(port: number, opts: { host?: string; ca?: string; before?: Uint8Array } = {}): Promise<TcpClient> {
    const host = opts.host ?? "127.0.0.1";
    return new Promise((resolve, reject) => {
      const secure = (socket?: net.Socket) => {
        const s = tls.connect({ socket, host, port, servername: "localhost", ca: opts.ca, rejectUnauthorized: opts.ca !== undefined });
        s.setNoDelay(true);
        s.once("secureConnect", () => resolve(new TcpClient(s)));
        s.once("error", reject);
      };
      if (!opts.before) return secure();
      const raw = net.connect({ port, host }, () => {
        raw.write(opts.before!);
        secure(raw);
      });
      raw.once("error", reject);
    });
  }

  /** The TLS server certificate's serial number (hex, upper case), for a TLS client. */
  get peerCertificateSerial(): string {
    return (this.socket as tls.TLSSocket).getPeerCertificate().serialNumber;
  }

  send(data: string | Uint8Array): void {
    this.socket.write(typeof data === "string" ? bytes(data) : data);
  }

  /** Half-close: send FIN, keep reading. */
  shutdownWrite(): void {
    this.socket.end();
  }

  /** Bytes received so far. */
  get data(): Buffer {
    return this.received;
  }

  /** Wait until at least n bytes arrived; returns exactly the first n and keeps the rest. */
  async read(n: number, timeoutMs = 5000): Promise<Buffer> {
    await this.until(() => this.received.length >= n, timeoutMs, `${n} bytes (have ${this.received.length})`);
    const out = this.received.subarray(0, n);
    this.received = this.received.subarray(n);
    return Buffer.from(out);
  }

  /** Wait for the peer to end the stream; returns everything left unread. */
  async readToEnd(timeoutMs = 5000): Promise<Buffer> {
    await this.until(() => this.ended || this.closed, timeoutMs, "end of stream");
    const out = this.received;
    this.received = Buffer.alloc(0);
    return out;
  }

  until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (cond()) {
          clearTimeout(timer);
          this.waiters.delete(check);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}; received ${JSON.stringify(this.received.toString("latin1"))}`));
      }, timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  close(): void {
    this.socket.destroy();
  }

  private wake() {
    for (const w of this.waiters) w();
  }
}

/** One datagram out, one back (or a timeout error). */
export async function udpRequest(
  port: number,
  payload: Uint8Array | string,
  host = "127.0.0.1",
  timeoutMs = 2000,
): Promise<Buffer> {
  const sock = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  try {
    return await new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no UDP reply within ${timeoutMs} ms`)), timeoutMs);
      sock.once("message", (msg) => {
        clearTimeout(timer);
        resolve(msg);
      });
      sock.once("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      sock.send(typeof payload === "string" ? bytes(payload) : payload, port, host);
    });
  } finally {
    sock.close();
  }
}
