// Help text for both commands, rendered by citty from the same flag tables
// the strict parser uses. Loaded only for --help: importing citty at start
// would cost every start of the daemon for nothing.
import { defineCommand, renderUsage, type ArgsDef, type CommandDef } from "citty";
import type { FlagTable } from "./argv.ts";
import { SERVER_FLAGS, VERSION } from "./server-command.ts";
import { PROBE_FLAGS } from "./probe-command.ts";

/** citty's view of a flag table: `short` becomes an alias, `multiple` is ours alone. */
function cittyArgs(table: FlagTable): ArgsDef {
  const args: ArgsDef = {};
  for (const [name, def] of Object.entries(table)) {
    if (def.type === "positional") {
      args[name] = { type: "positional", description: def.description, valueHint: def.valueHint, required: def.required };
    } else {
      const { short, multiple: _, ...rest } = def;
      args[name] = (short ? { ...rest, alias: [short] } : rest) as ArgsDef[string];
    }
  }
  return args;
}

function commands(): { server: CommandDef; probe: CommandDef } {
  const probe = defineCommand({
    meta: { name: "probe", description: "check an echo server byte for byte (ping-like), load it, or send it a command" },
    args: cittyArgs(PROBE_FLAGS),
  });
  const server = defineCommand({
    meta: { name: "epoll-echo", version: VERSION, description: "TCP and UDP line echo daemon" },
    args: cittyArgs(SERVER_FLAGS),
    subCommands: { probe },
  });
  return { server, probe };
}

function stripAnsi(text: string): string {
  return text.replace(/\x1b\[[0-9;]*m/g, "").replace(/[ \t]+$/gm, "");
}

/** The server's usage text with every flag and its default, without colour codes. */
export async function serverUsage(): Promise<string> {
  const text = stripAnsi(await renderUsage(commands().server));
  // citty writes "USAGE epoll-echo [OPTIONS] probe" as if the subcommand were
  // required; the server is the default command.
  return (
    text.replace(/^USAGE epoll-echo \[OPTIONS\] probe$/m, "USAGE epoll-echo [OPTIONS]\n      epoll-echo probe HOST[:PORT] [OPTIONS]") +
    "\n\nEXAMPLES\n\n" +
    "  epoll-echo --port 7007 -v\n" +
    "  epoll-echo --metrics 127.0.0.1:9712\n" +
    "  epoll-echo --reuse-port --instance a & epoll-echo --reuse-port --instance b &\n" +
    "      two processes (two cores) on port 12345; /stats and /metrics stay per instance\n" +
    "  systemctl enable --now epoll-echo@1 epoll-echo@2 epoll-echo@3 epoll-echo@4\n" +
    "      the same under systemd (the packaged epoll-echo@.service template; options for\n" +
    "      one instance in /etc/default/epoll-echo@N); a fleet: docs/kubernetes/ in the source\n"
  );
}

/** The probe's usage text, rendered under the main command, plus examples and exit codes. */
export async function probeUsage(): Promise<string> {
  const { server, probe } = commands();
  return (
    stripAnsi(await renderUsage(probe, server)) +
    "\nEXAMPLES\n\n" +
    "  epoll-echo probe 127.0.0.1 --count 3 --interval 200\n" +
    "  epoll-echo probe [::1]:12345 --udp --json\n" +
    "  epoll-echo probe localhost --load --connections 8 --pipeline 32 --duration 10\n" +
    "  epoll-echo probe localhost --command /stats\n" +
    "  epoll-echo probe 192.0.2.10 --command /instance   (which instance behind a load balancer answered)\n" +
    "\nExit status: 0 every reply came back intact, 1 a reply was lost or wrong (or a command got ERR), 2 usage or connection error.\n"
  );
}
