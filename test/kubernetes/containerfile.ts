// What the Kubernetes manifests need to know about the image, read from its
// Containerfile: the entrypoint, the numeric user, the exposed ports and the
// healthcheck command. Only the exec (JSON array) forms are accepted: the
// image has no shell to run the other forms.
import { readFileSync } from "node:fs";

export interface ImageFacts {
  entrypoint: string[];
  uid: number;
  gid: number | null;
  /** "12345/tcp", "12345/udp" (a bare port is TCP). */
  expose: string[];
  /** The HEALTHCHECK CMD's argv. */
  healthcheck: string[];
}

export function readContainerfile(path: string): ImageFacts {
  // Join continuation lines, drop comments.
  const lines = readFileSync(path, "utf8")
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const last = (instruction: string) => {
    const found = lines.filter((l) => l.toUpperCase().startsWith(`${instruction} `));
    if (found.length === 0) throw new Error(`${path}: no ${instruction}`);
    return found[found.length - 1]!.slice(instruction.length + 1).trim();
  };
  const execForm = (what: string, raw: string): string[] => {
    const argv: unknown = JSON.parse(raw);
    if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === "string")) {
      throw new Error(`${path}: ${what} is not an exec-form JSON array: ${raw}`);
    }
    return argv;
  };

  const user = /^(\d+)(?::(\d+))?$/.exec(last("USER"));
  if (!user) throw new Error(`${path}: USER must be numeric (uid or uid:gid) for runAsNonRoot`);
  const health = /^(?:--\S+\s+)*CMD\s+(.*)$/i.exec(last("HEALTHCHECK"));
  if (!health) throw new Error(`${path}: HEALTHCHECK without CMD`);
  return {
    entrypoint: execForm("ENTRYPOINT", last("ENTRYPOINT")),
    uid: Number(user[1]),
    gid: user[2] === undefined ? null : Number(user[2]),
    expose: lines
      .filter((l) => l.toUpperCase().startsWith("EXPOSE "))
      .flatMap((l) => l.slice(7).trim().split(/\s+/))
      .map((p) => (p.includes("/") ? p.toLowerCase() : `${p}/tcp`)),
    healthcheck: execForm("HEALTHCHECK CMD", health[1]!),
  };
}
