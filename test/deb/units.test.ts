// The systemd units in debian/, read as text (no root, no systemd): the
// template epoll-echo@.service must stay hardened exactly like
// epoll-echo.service, and the command lines of all services must parse with
// the real CLI, so a renamed flag fails here before it fails on a machine.
// test/deb/package.test.ts checks the installed units with systemd-analyze.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseCli } from "../../src/cli/server-command.ts";
import { ROOT } from "./helpers.ts";

type Directives = [key: string, value: string][];

/** The non-comment `Key=Value` lines of one section, in order (repeated keys kept). */
function section(unit: string, name: string): Directives {
  const text = readFileSync(join(ROOT, "debian", unit), "utf8");
  const out: Directives = [];
  let current = "";
  for (const line of text.split("\n")) {
    const t = line.trim();
    if (t === "" || t.startsWith("#") || t.startsWith(";")) continue;
    if (t.startsWith("[")) current = t;
    else if (current === `[${name}]`) {
      const eq = t.indexOf("=");
      out.push([t.slice(0, eq), t.slice(eq + 1)]);
    }
  }
  return out;
}

const values = (d: Directives, key: string) => d.filter(([k]) => k === key).map(([, v]) => v);
const without = (d: Directives, keys: string[]) => d.filter(([k]) => !keys.includes(k));

/**
 * An ExecStart= line as systemd would run it: specifiers and $VARS replaced
 * (an unset or empty $VAR expands to no word at all), split on spaces.
 */
function argv(execStart: string, env: Record<string, string>, specifiers: Record<string, string>): string[] {
  const words: string[] = [];
  for (const word of execStart.split(/\s+/)) {
    const v = /^\$([A-Z_]+)$/.exec(word);
    if (v) words.push(...(env[v[1]!] ?? "").split(/\s+/).filter((w) => w !== ""));
    else words.push(word.replace(/%([a-zA-Z])/g, (_, s: string) => specifiers[s] ?? `%${s}`));
  }
  return words;
}

const MAIN = section("epoll-echo.service", "Service");
const TEMPLATE = section("epoll-echo@.service", "Service");
const ACTIVATED = section("epoll-echo-activated.service", "Service");

describe("epoll-echo@.service (several instances on one port)", () => {
  test("hardened, limited and restarted exactly like epoll-echo.service", () => {
    // Only where the options come from, the command line and the fixed user differ.
    expect(without(TEMPLATE, ["EnvironmentFile", "ExecStart", "User"])).toEqual(without(MAIN, ["EnvironmentFile", "ExecStart"]));
    expect(without(ACTIVATED, ["Sockets"])).toEqual(MAIN);
  });

  test("options: /etc/default/epoll-echo, then the optional per-instance file", () => {
    expect(values(TEMPLATE, "EnvironmentFile")).toEqual(["-/etc/default/epoll-echo", "-/etc/default/epoll-echo@%i"]);
    expect(values(MAIN, "EnvironmentFile")).toEqual(["-/etc/default/epoll-echo"]);
  });

  test("every instance runs as the same dynamic user (SO_REUSEPORT shares a port only within one user)", () => {
    expect(values(TEMPLATE, "DynamicUser")).toEqual(["yes"]);
    expect(values(TEMPLATE, "User")).toEqual(["epoll-echo"]);
  });

  test("its command line parses: --reuse-port, --instance HOST-N, per-instance options win", () => {
    const [execStart] = values(TEMPLATE, "ExecStart");
    const args = argv(
      execStart!,
      { EPOLL_ECHO_OPTS: "--max-tcp 4096 --metrics 127.0.0.1:9712", EPOLL_ECHO_INSTANCE_OPTS: "--metrics 127.0.0.1:9803" },
      { H: "web7", i: "3" },
    );
    expect(args[0]).toBe("/usr/bin/epoll-echo");
    const r = parseCli(args.slice(1));
    if (r.kind !== "run") throw new Error(`${args.join(" ")}: ${JSON.stringify(r)}`);
    expect(r.config.reusePort).toBe(true);
    expect(r.config.instance).toBe("web7-3");
    expect(r.config.maxTcp).toBe(4096);
    expect(r.config.metrics).toEqual({ host: "127.0.0.1", port: 9803 });
  });

  test("with no options files at all it still parses (both EnvironmentFile= are optional)", () => {
    const r = parseCli(argv(values(TEMPLATE, "ExecStart")[0]!, {}, { H: "h", i: "1" }).slice(1));
    expect(r.kind).toBe("run");
  });

  test("conflicts with the units that bind the port without SO_REUSEPORT", () => {
    const conflicts = values(section("epoll-echo@.service", "Unit"), "Conflicts").join(" ").split(/\s+/);
    expect(conflicts.sort()).toEqual(["epoll-echo-activated.service", "epoll-echo-udp.socket", "epoll-echo.service", "epoll-echo.socket"]);
  });

  test("the plain services' command lines parse too", () => {
    for (const d of [MAIN, ACTIVATED]) {
      expect(parseCli(argv(values(d, "ExecStart")[0]!, { EPOLL_ECHO_OPTS: "" }, {}).slice(1)).kind).toBe("run");
    }
  });
});
