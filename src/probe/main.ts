// `epoll-echo probe`: parse, run the chosen mode, print, and return the exit
// status: 0 all intact, 1 something lost or wrong, 2 usage or connection error.
import { nodeFs } from "../sys/node-fs.ts";
import { MAX_UDP4_SIZE, parseProbeCli, type ProbeOptions } from "../cli/probe-command.ts";
import { formatHostPort, ProbeConnectError, resolve, streamProto, type StreamOptions } from "./net.ts";
import { errorWords } from "../core/error-text.ts";
import { pingTcp, pingUdp } from "./ping.ts";
import { runLoad } from "./load.ts";
import { sendCommand } from "./command.ts";
import { Stopper } from "./stopper.ts";
import * as report from "./report.ts";

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Synchronous, so output survives process.exit() and keeps its order. */
function write(fd: 1 | 2, text: string): void {
  try {
    nodeFs().writeSync(fd, text);
  } catch {
    // stdout/stderr closed: nothing left to tell.
  }
}

export async function runProbe(argv: string[]): Promise<number> {
  const cli = parseProbeCli(argv);
  if (cli.kind === "help") {
    write(1, await (await import("../cli/help.ts")).probeUsage());
    return EXIT_OK;
  }
  if (cli.kind === "error") {
    write(2, `epoll-echo probe: ${cli.message}\nTry 'epoll-echo probe --help' for the list of options.\n`);
    return EXIT_USAGE;
  }
  const stop = new Stopper();
  const onSigint = () => {
    if (stop.stopped) process.exit(130);
    stop.trigger();
  };
  process.on("SIGINT", onSigint);
  try {
    return await run(cli.options, stop);
  } catch (err) {
    if (err instanceof ProbeConnectError) {
      write(2, `epoll-echo probe: ${err.message}\n`);
      return EXIT_USAGE;
    }
    throw err;
  } finally {
    process.off("SIGINT", onSigint);
  }
}

/** How TCP connections are opened: --tls (the CA read here) and --proxy. */
function streamOptions(o: ProbeOptions): StreamOptions {
  if (o.tls === null) return { tls: null, proxy: o.proxy };
  let ca: string | null = null;
  if (o.tls.caFile !== null) {
    try {
      ca = nodeFs().readFileSync(o.tls.caFile, "utf8");
    } catch (err) {
      throw new ProbeConnectError(`--ca ${o.tls.caFile}: ${errorWords(err)}`);
    }
  }
  return { tls: { ca, serverName: o.host }, proxy: o.proxy };
}

async function run(o: ProbeOptions, stop: Stopper): Promise<number> {
  const target = formatHostPort(o.host, o.port);
  const stream = streamOptions(o);
  const endpoints = await resolve(o.host, o.port);
  const proto = o.udp ? "udp" : streamProto(stream);
  if (o.udp && o.size > MAX_UDP4_SIZE && endpoints[0]!.family === 4) {
    throw new ProbeConnectError(`--size: ${o.size} bytes do not fit in an IPv4 UDP datagram to ${endpoints[0]!.address} (at most ${MAX_UDP4_SIZE})`);
  }

  switch (o.mode.kind) {
    case "command": {
      const r = await sendCommand({ target, endpoints, stream, command: o.mode.command, udp: o.udp, timeoutMs: o.timeoutMs, stop });
      if (o.json) write(1, report.commandJson(r));
      else write(1, report.commandText(r));
      if (r.error && !o.json) write(2, `epoll-echo probe: ${o.mode.command}: ${r.error}\n`);
      return report.commandOk(r) ? EXIT_OK : EXIT_FAILED;
    }
    case "ping": {
      const count = o.mode.count;
      const params = {
        target,
        endpoints,
        stream,
        count: o.mode.count,
        intervalMs: o.mode.intervalMs,
        size: o.size,
        timeoutMs: o.timeoutMs,
        stop,
        onStart: (address: string) => {
          if (!o.json) write(1, report.pingHeader(target, address, proto, count, o.size));
        },
        onReply: (r: report.ReplyRecord) => {
          if (!o.json) write(1, report.replyLine(target, r));
        },
      };
      const r = o.udp ? await pingUdp(params) : await pingTcp(params);
      write(1, o.json ? report.pingJson(r) : report.pingSummary(r));
      return report.pingOk(r) ? EXIT_OK : EXIT_FAILED;
    }
    case "load": {
      const tty = process.stderr.isTTY === true;
      let shown = false;
      const r = await runLoad({
        target,
        endpoints,
        stream,
        udp: o.udp,
        connections: o.mode.connections,
        pipeline: o.mode.pipeline,
        durationMs: o.mode.durationMs,
        size: o.size,
        timeoutMs: o.timeoutMs,
        stop,
        onProgress: (p) => {
          // A TTY gets one line rewritten in place; anything else, plain lines.
          write(2, tty ? `\r\x1b[K${report.progressLine(p)}` : `${report.progressLine(p)}\n`);
          shown = true;
        },
        onEvent: (m) => write(2, `${tty && shown ? "\r\x1b[K" : ""}epoll-echo probe: ${m}\n`),
      });
      if (tty && shown) write(2, "\n");
      write(1, o.json ? report.loadJson(r) : report.loadSummary(r));
      return report.loadOk(r) ? EXIT_OK : EXIT_FAILED;
    }
  }
}
