// The executable's entry point: parse the command line, set up logging, the
// token and the descriptor budget, start the server, and map signals and
// failures to exit codes (0 stopped, 1 failed, 2 usage).
import { parseCli, VERSION } from "./cli/server-command.ts";
import { createLogger, type Logger } from "./sys/log.ts";
import { stderrIsJournal } from "./sys/journal-stream.ts";
import { fdIsTerminal } from "./sys/terminal.ts";
import { StartupError } from "./core/startup-error.ts";
import { DEFERRED_SETUP_MS, startServer, type Server } from "./server/server.ts";
import { ReloadSignal } from "./sys/reload-signal.ts";
import type { Config } from "./core/config.ts";
import type { MetricsServer } from "./metrics/server.ts";
import { defaultInstance } from "./core/instance.ts";
import { libc } from "./sys/libc-on-demand.ts";
import type { Handover } from "./core/handover.ts";
import { HANDOVER_VARIABLE, wantsIdleSettings } from "./core/idle-settings.ts";
import type { RestContext } from "./server/handover.ts";

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

async function main(argv: string[]): Promise<void> {
  // The server is the default command; `probe` as the first word is the client.
  // The probe client, the metrics listener, and whatever only some starts use
  // (the token file, TLS, socket activation, sd_notify) load only when used:
  // a plain start does not pay for them.
  if (argv[0] === "probe") {
    const { runProbe } = await import("./probe/main.ts");
    process.exit(await runProbe(argv.slice(1)));
  }
  const cli = parseCli(argv);
  switch (cli.kind) {
    case "help":
      process.stdout.write(await (await import("./cli/help.ts")).serverUsage());
      return;
    case "version":
      process.stdout.write(`epoll-echo ${VERSION}\n`);
      return;
    case "error":
      process.stderr.write(`epoll-echo: ${cli.message}\nTry 'epoll-echo --help' for the list of options.\n`);
      process.exit(EXIT_USAGE);
  }
  const config = cli.config;
  const journal = stderrIsJournal(process.env);
  const log = createLogger({
    output: journal ? "journal" : config.logFormat,
    verbosity: config.verbosity,
    colour: () => !journal && config.logFormat === "text" && fdIsTerminal(2) && !process.env.NO_COLOR,
  });
  // Handlers go in before the sockets: a signal right after the readiness line
  // must already take the graceful path (and a SIGHUP must not end the process).
  const signals = installSignalHandlers(log);
  const reload = new ReloadSignal(log);
  // Re-executed with the runtime's idle settings (src/server/handover.ts): the sockets and counters come along.
  const resuming = process.env[HANDOVER_VARIABLE] === undefined ? null : await import("./server/handover.ts");
  const handover = resuming?.takeHandover(process.env) ?? null;
  if (typeof handover === "string") {
    log.error(handover);
    process.exit(EXIT_FAILURE);
  }
  const server = await start(config, log, reload, handover);
  signals.attach(server);
  if (handover) resuming!.resumed(handover, log);
  await server.stopped;
  process.exit(0);
}

async function start(config: Config, log: Logger, reload: ReloadSignal, resume: Handover | null): Promise<Server> {
  try {
    const credentialsDirectory = process.env.CREDENTIALS_DIRECTORY;
    const tokenSource = { credentialsDirectory, tokenFile: config.shutdownTokenFile };
    const { token, origin } =
      credentialsDirectory !== undefined || tokenSource.tokenFile !== null
        ? (await import("./server/token.ts")).loadShutdownToken(tokenSource)
        : { token: null, origin: "none" };
    const applyBudget = () => {
      // Loaded when applied (with -q, after the first echo): a start pays for the code it loads.
      const { applyFdBudget } = require("./sys/fd-limit.ts") as typeof import("./sys/fd-limit.ts");
      const budget = applyFdBudget(config.maxTcp);
      if (budget?.clamped && !resume) {
        log.warn(`--max-tcp ${config.maxTcp} does not fit the descriptor limit: serving at most ${budget.maxTcp} clients`, {
          nofile_soft: budget.soft,
          nofile_hard: budget.before.hard,
        });
      }
      return budget;
    };
    // A start that logs (not -q) writes lines before it serves, so it loads
    // the ffi layer up front and takes every step in order. A quiet start
    // calls no libc function before it serves: the descriptor budget (which
    // the "starting" line would show), --backlog and the UDP wildcard's tuning
    // follow DEFERRED_SETUP_MS later, none of which can fail the start.
    const deferSetup = !log.infoOn;
    if (!deferSetup) await libc().loadFfi();
    const budget = deferSetup ? null : applyBudget();
    const tls = config.tls;
    const tlsLoader = tls ? await import("./server/tls-credentials.ts") : null;
    const tlsCredentials = tls && tlsLoader ? await tlsLoader.loadTlsCredentials(tls, credentialsDirectory) : undefined;
    // The hostname is asked for (uname) only when something shows the name:
    // /instance, STATUS, /metrics or a printed startup line; a quiet start need not.
    let hostName: string | undefined;
    const instance = () => config.instance ?? (hostName ??= defaultInstance(libc().hostname()));
    const effective = { ...config, maxTcp: budget?.maxTcp ?? config.maxTcp };
    const env = process.env;
    const activation =
      env.LISTEN_PID !== undefined || env.LISTEN_FDS !== undefined || env.LISTEN_FDNAMES !== undefined
        ? (await import("./systemd/socket-activation.ts")).takeListenFds(env, process.pid, log)
        : undefined;
    const adopted = (proto: "tcp" | "udp", port: number) => ((activation?.sockets[proto].length ?? 0) > 0 ? "adopted" : port);
    // Started without the idle settings (a shell, not the units): re-execute with them at the first rest.
    const atRest = !resume && !activation && Bun.main.startsWith("/$bunfs/") && wantsIdleSettings(env) ? firstRest() : null;
    if (log.infoOn && !resume) log.info(`epoll-echo ${VERSION} starting`, {
      instance: instance(),
      listen: effective.listen.length > 0 ? effective.listen.join(",") : undefined,
      reuse_port: effective.reusePort || undefined,
      tcp_port: adopted("tcp", effective.tcpPort),
      udp_port: adopted("udp", effective.udpPort),
      max_tcp: effective.maxTcp,
      backlog: effective.backlog,
      max_line: effective.maxLine,
      max_datagram: effective.maxDatagram,
      udp_window: effective.udpWindow,
      idle_timeout: effective.idleTimeout,
      shutdown_token: origin,
      nofile: budget?.soft,
      tls_port: config.tls?.port,
      tls_credentials: tlsCredentials?.origin,
      tls_serial: tlsCredentials?.serial,
      proxy_protocol_from: config.proxyProtocolFrom === null ? undefined : config.proxyProtocolFrom.length,
    });
    const notifier = env.NOTIFY_SOCKET ? (await import("./systemd/notify.ts")).Notifier.fromEnv(env, process.pid, log) : null;
    const server = await startServer(effective, {
      log,
      token,
      instance,
      adopted: activation?.sockets,
      onStopping: (why) => notifier?.stopping(why),
      onFiguresChanged: notifier ? () => notifier.figuresChanged() : undefined,
      tlsCredentials,
      deferSetup,
      firstRest: atRest?.attempt,
      resume: resume ?? undefined,
    });
    if (deferSetup) {
      setTimeout(() => {
        const later = applyBudget();
        if (later) server.limitClients(later.maxTcp);
      }, DEFERRED_SETUP_MS);
    }
    if (tls && tlsLoader) {
      // A pair that fails to load or check leaves the old one in force (ReloadSignal logs the error).
      reload.add("TLS certificate and key", async () => {
        const fresh = await tlsLoader.loadTlsCredentials(tls, credentialsDirectory);
        server.useTlsCredentials(fresh);
        log.info("TLS certificate and key reloaded", { tls_credentials: fresh.origin, tls_serial: fresh.serial });
      });
    }
    activation?.restoreBacklogs();
    reload.add("UDP addresses", () => server.rescanAddresses());
    let metrics: MetricsServer | null = null;
    if (effective.metrics) {
      if (effective.metrics.port !== 0 && effective.metrics.port === server.tcpPort) {
        throw new StartupError(`--metrics: port ${server.tcpPort} is the echo port; give the metrics listener a port of its own`);
      }
      const { startMetrics } = await import("./metrics/server.ts");
      const handed = resume?.sockets.find((s) => s.kind === "metrics")?.fd;
      metrics = startMetrics(effective.metrics, server.stats, { version: VERSION, instance: instance() }, log, handed);
      if (!resume) log.info(`metrics at ${metrics.url}`);
    }
    notifier?.ready(server.stats, instance());
    atRest?.ready({ log, server, metrics, config, credentialsDirectory });
    void server.stopped.then(() => notifier?.close());
    return server;
  } catch (err) {
    if (err instanceof StartupError) {
      log.error(err.message);
      process.exit(EXIT_FAILURE);
    }
    throw err;
  }
}

/** The re-exec at the first rest, loaded only then, once everything it hands over is up. */
function firstRest(): { attempt(): Promise<boolean>; ready(ctx: RestContext): void } {
  // withResolvers, not new Promise(executor): the constructor's first call costs a start ~85 µs.
  const { promise: started, resolve: ready } = Promise.withResolvers<RestContext>();
  return {
    attempt: async () => (await import("./server/handover.ts")).reexecAtRest(await started),
    ready,
  };
}

/** SIGINT/SIGTERM: the first starts a graceful stop, a second exits at once. */
function installSignalHandlers(log: Logger): { attach(server: Server): void } {
  let server: Server | null = null;
  let received = 0;
  const onSignal = (signal: "SIGINT" | "SIGTERM") => {
    received++;
    if (received > 1) {
      log.warn(`${signal} again: exiting at once`);
      process.exit(signal === "SIGINT" ? 130 : 143);
    }
    if (server === null) process.exit(0); // nothing bound yet, nothing owed
    void server.stop(signal);
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  return {
    attach(s: Server) {
      server = s;
    },
  };
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`epoll-echo: fatal: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(EXIT_FAILURE);
});
