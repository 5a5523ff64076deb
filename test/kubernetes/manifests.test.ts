// The Kubernetes manifests in docs/kubernetes/, checked without a cluster:
// each document against the Kubernetes API schema (kubernetes-models), then
// against what they run: the image (scripts/image/Containerfile: entrypoint,
// user, exposed ports), the server's command line (parsed with the real
// parseCli, so a renamed flag or a changed port fails here), the probe's
// command line (parseProbeCli) and the server's stop deadline.
import { describe, expect, test } from "bun:test";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { Service } from "kubernetes-models/v1/Service";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IProbe } from "kubernetes-models/v1/Probe";
import { parseCli } from "../../src/cli/server-command.ts";
import { parseProbeCli, type ProbeOptions } from "../../src/cli/probe-command.ts";
import { DEFAULTS, type Config } from "../../src/core/config.ts";
import { INSTANCE_MAX } from "../../src/core/instance.ts";
import { STOP_DEADLINE_MS } from "../../src/server/server.ts";
import { readContainerfile } from "./containerfile.ts";

const ROOT = join(import.meta.dir, "..", "..");
const DIR = join(ROOT, "docs", "kubernetes");
const VERSION: string = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).version;
const CONTAINERFILE = join(ROOT, "scripts", "image", "Containerfile");
/** The image's facts; null until the image's Containerfile exists (issue 11), and its checks skip. */
const IMAGE = existsSync(CONTAINERFILE) ? readContainerfile(CONTAINERFILE) : null;
if (!IMAGE) console.log("test/kubernetes: scripts/image/Containerfile not there yet: the checks against the image are skipped");
/** The README's bound on one client's queued replies (1 MiB high water plus one read's replies). */
const MAX_OUTPUT_PER_CLIENT_MIB = 1.16;
/** Resident memory of the idle server and of one probe run beside it (docs/kubernetes/README.md). */
const IDLE_MIB = 38;
const PROBE_MIB = 37;

/** Every document of every .yaml file, by kind. */
const docs: Record<string, unknown>[] = readdirSync(DIR)
  .filter((f) => f.endsWith(".yaml"))
  .flatMap((f) => {
    const parsed = Bun.YAML.parse(readFileSync(join(DIR, f), "utf8"));
    return (Array.isArray(parsed) ? parsed : [parsed]) as Record<string, unknown>[];
  });
const only = <T,>(kind: string, make: (d: Record<string, unknown>) => T): T => {
  const found = docs.filter((d) => d.kind === kind);
  expect(found.length).toBe(1);
  return make(found[0]!);
};
const deployment = only("Deployment", (d) => new Deployment(d as never));
const service = only("Service", (d) => new Service(d as never));
const pod = deployment.spec!.template;
const container: IContainer = pod.spec!.containers[0]!;

/** Kubernetes' $(VAR) expansion of args from the container's env (unknown ones stay as written). */
function expand(args: string[], values: Record<string, string>): string[] {
  return args.map((a) => a.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => values[name] ?? whole));
}

/** The server's Config for a pod of the given name, or the usage error. */
function serverConfig(podName: string): Config {
  const values: Record<string, string> = {};
  for (const e of container.env ?? []) {
    if (e.valueFrom?.fieldRef?.fieldPath === "metadata.name") values[e.name] = podName;
  }
  const r = parseCli(expand(container.args ?? [], values));
  if (r.kind !== "run") throw new Error(`args ${JSON.stringify(container.args)}: ${JSON.stringify(r)}`);
  return r.config;
}

/** A probe's exec command: the image's binary, "probe", options the real parser accepts. */
function probeOptions(p: IProbe | undefined): ProbeOptions {
  const cmd = p?.exec?.command ?? [];
  expect(cmd[1]).toBe("probe");
  if (IMAGE) expect(cmd.slice(0, 2)).toEqual([...IMAGE.entrypoint, "probe"]);
  const r = parseProbeCli(cmd.slice(2));
  if (r.kind !== "run") throw new Error(`probe ${JSON.stringify(cmd)}: ${JSON.stringify(r)}`);
  return r.options;
}

const port = (name: string) => container.ports?.find((p) => p.name === name);
/** A generated pod name as long as Kubernetes makes them: a 58-character base plus 5 random ones. */
const LONGEST_POD_NAME = `${deployment.metadata!.name}-${"7d9f8b6c4d".padEnd(58 - deployment.metadata!.name!.length - 1, "x")}`.slice(0, 58) + "abcde";

describe("docs/kubernetes: valid Kubernetes objects", () => {
  test("only a Deployment and a Service, each valid against the API schema", () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(["Deployment", "Service"]);
    deployment.validate();
    service.validate();
  });
});

describe("docs/kubernetes: the Deployment agrees with the image and the command line", () => {
  test("runs the image `bun run image` builds, at package.json's version", () => {
    expect(container.image).toBe(`localhost/epoll-echo:${VERSION}`);
    expect(container.command).toBeUndefined(); // the image's entrypoint (the binary) runs
  });

  test("args parse with the real server CLI: port, instance from the pod name, metrics", () => {
    const config = serverConfig("epoll-echo-7d9f8b6c4d-x2x7z");
    expect(config.instance).toBe("epoll-echo-7d9f8b6c4d-x2x7z");
    expect(config.tcpPort).toBe(DEFAULTS.tcpPort);
    expect(config.udpPort).toBe(DEFAULTS.udpPort);
    // Prometheus must reach it from another pod: not loopback.
    expect(["0.0.0.0", "::"]).toContain(config.metrics?.host ?? "none");
  });

  test("the longest pod name Kubernetes generates is a valid --instance", () => {
    expect(LONGEST_POD_NAME.length).toBe(63);
    expect(LONGEST_POD_NAME.length).toBeLessThanOrEqual(INSTANCE_MAX);
    expect(serverConfig(LONGEST_POD_NAME).instance).toBe(LONGEST_POD_NAME);
  });

  test("--instance comes from the pod's name through the Downward API", () => {
    const i = container.args!.indexOf("--instance");
    const ref = /^\$\(([A-Za-z_]+)\)$/.exec(container.args![i + 1] ?? "")?.[1];
    expect(container.env?.find((e) => e.name === ref)?.valueFrom?.fieldRef?.fieldPath).toBe("metadata.name");
  });

  test("container ports: the echo port over TCP and UDP, and the metrics port", () => {
    const config = serverConfig("p");
    expect(port("echo-tcp")).toEqual({ name: "echo-tcp", containerPort: config.tcpPort, protocol: "TCP" });
    expect(port("echo-udp")).toEqual({ name: "echo-udp", containerPort: config.udpPort, protocol: "UDP" });
    expect(port("metrics")).toEqual({ name: "metrics", containerPort: config.metrics!.port, protocol: "TCP" });
  });

  test.skipIf(!IMAGE)("the echo ports are the ones the image exposes", () => {
    const config = serverConfig("p");
    expect(IMAGE!.expose.sort()).toEqual([`${config.tcpPort}/tcp`, `${config.udpPort}/udp`].sort());
  });

  test("Prometheus scrape annotations point at --metrics", () => {
    const a = pod.metadata!.annotations!;
    expect(a["prometheus.io/scrape"]).toBe("true");
    expect(a["prometheus.io/port"]).toBe(String(serverConfig("p").metrics!.port));
    expect(a["prometheus.io/path"]).toBe("/metrics");
  });

  test("readiness probes TCP and liveness UDP on the echo port, with the binary's own probe, inside the kubelet's timeout", () => {
    const config = serverConfig("p");
    const ready = probeOptions(container.readinessProbe);
    const live = probeOptions(container.livenessProbe);
    for (const [opts, probe, udp] of [
      [ready, container.readinessProbe!, false],
      [live, container.livenessProbe!, true],
    ] as const) {
      expect(opts.host).toBe("127.0.0.1");
      expect(opts.port).toBe(udp ? config.udpPort : config.tcpPort);
      expect(opts.udp).toBe(udp);
      expect(opts.mode).toEqual({ kind: "ping", count: 1, intervalMs: expect.any(Number) });
      // The probe gives up (exit 2) before the kubelet kills it.
      expect(opts.timeoutMs).toBeLessThan(probe.timeoutSeconds! * 1000);
    }
  });

  test.skipIf(!IMAGE)("the image's HEALTHCHECK runs the same probe", () => {
    expect(IMAGE!.healthcheck.slice(0, 2)).toEqual([...IMAGE!.entrypoint, "probe"]);
    expect(parseProbeCli(IMAGE!.healthcheck.slice(2)).kind).toBe("run");
  });

  test("termination grace leaves room for the 2 s drain", () => {
    expect(STOP_DEADLINE_MS).toBe(2000);
    expect(pod.spec!.terminationGracePeriodSeconds!).toBeGreaterThanOrEqual(2 * (STOP_DEADLINE_MS / 1000) + 1);
  });

  test.skipIf(!IMAGE)("runs as the image's numeric user and group", () => {
    const podSec = pod.spec!.securityContext!;
    expect(podSec.runAsUser).toBe(IMAGE!.uid);
    if (IMAGE!.gid !== null) expect(podSec.runAsGroup).toBe(IMAGE!.gid);
  });

  test("non-root, read-only root, no capabilities, no privilege escalation", () => {
    const podSec = pod.spec!.securityContext!;
    expect(podSec.runAsNonRoot).toBe(true);
    expect(podSec.runAsUser).toBeGreaterThan(0);
    expect(podSec.seccompProfile?.type).toBe("RuntimeDefault");
    const sec = container.securityContext!;
    expect(sec.readOnlyRootFilesystem).toBe(true);
    expect(sec.allowPrivilegeEscalation).toBe(false);
    expect(sec.privileged).toBe(false);
    expect(sec.capabilities).toEqual({ drop: ["ALL"] });
    expect(pod.spec!.automountServiceAccountToken).toBe(false);
  });

  test("resources: one core at most, memory for the worst case --max-tcp allows", () => {
    const { requests, limits } = container.resources!;
    expect(limits!.cpu).toBe("1");
    const mib = (q: string | number | undefined) => {
      const m = /^(\d+)(Mi|Gi)$/.exec(String(q));
      if (!m) throw new Error(`memory quantity ${q}: expected NNNMi or NGi`);
      return Number(m[1]) * (m[2] === "Gi" ? 1024 : 1);
    };
    const worst = serverConfig("p").maxTcp * MAX_OUTPUT_PER_CLIENT_MIB + IDLE_MIB + PROBE_MIB;
    expect(mib(limits!.memory)).toBeGreaterThanOrEqual(worst);
    expect(mib(requests!.memory)).toBeGreaterThanOrEqual(IDLE_MIB + PROBE_MIB);
    expect(requests!.cpu).toBeDefined();
  });
});

describe("docs/kubernetes: the Service", () => {
  test("selects the Deployment's pods", () => {
    expect(service.spec!.selector).toEqual(pod.metadata!.labels!);
    expect(deployment.spec!.selector.matchLabels).toEqual(pod.metadata!.labels!);
  });

  test("exposes 12345 over TCP and UDP, onto the container's named ports", () => {
    const config = serverConfig("p");
    const ports = service.spec!.ports!;
    expect(ports.map((p) => [p.port, p.protocol]).sort()).toEqual([
      [config.tcpPort, "TCP"],
      [config.udpPort, "UDP"],
    ]);
    expect(config.tcpPort).toBe(12345);
    for (const p of ports) {
      const target = port(String(p.targetPort));
      expect(target?.protocol).toBe(p.protocol!);
      expect(target?.containerPort).toBe(p.port);
    }
  });
});
