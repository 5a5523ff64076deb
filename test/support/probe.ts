// Run `epoll-echo probe ...` without blocking the test's event loop (tests
// that serve a misbehaving echo server in-process need the loop running),
// and tiny in-process servers that get the echo wrong on purpose.
import type { Socket, TCPSocketListener } from "bun";
import { LAUNCH } from "./daemon.ts";

export interface ProbeRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the compiled binary's probe subcommand to completion. */
export async function probe(args: string[], opts: { timeoutMs?: number } = {}): Promise<ProbeRun> {
  const proc = Bun.spawn([...LAUNCH, "probe", ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
    env: { ...process.env, NO_COLOR: "1" } as Record<string, string>,
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 20_000);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/**
 * A TCP "echo" server that echoes every byte except the one at stream
 * offset `corruptAt`, which it flips (XOR 0x01: still printable ASCII).
 */
export function corruptingTcpServer(corruptAt: number): TCPSocketListener<{ offset: number }> {
  return Bun.listen<{ offset: number }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s: Socket<{ offset: number }>) {
        s.data = { offset: 0 };
      },
      data(s, chunk) {
        const out = new Uint8Array(chunk);
        const i = corruptAt - s.data.offset;
        if (i >= 0 && i < out.length) out[i]! ^= 0x01;
        s.data.offset += chunk.length;
        s.write(out);
      },
    },
  });
}

/** A UDP "echo" server that answers datagram number `corruptNth` (1-based) with one byte flipped, and drops number `dropNth`. */
export async function faultyUdpServer(opts: { corruptNth?: number; corruptByte?: number; dropNth?: number }) {
  let n = 0;
  return Bun.udpSocket({
    hostname: "127.0.0.1",
    port: 0,
    binaryType: "uint8array",
    socket: {
      data(sock, data, port, address) {
        n++;
        if (n === opts.dropNth) return;
        const out = new Uint8Array(data);
        if (n === opts.corruptNth) out[opts.corruptByte ?? 20]! ^= 0x01;
        sock.send(out, port, address);
      },
    },
  });
}
