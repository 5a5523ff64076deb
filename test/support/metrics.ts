// Scraping /metrics in tests and checking the exposition with real parsers:
// `promtool check metrics` (Debian's prometheus package) when installed, and
// the npm package parse-prometheus-text-format for structured values.
import parse from "parse-prometheus-text-format";

export interface ParsedFamily {
  name: string;
  help: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}

export async function scrape(url: string): Promise<{ status: number; contentType: string | null; body: string }> {
  const res = await fetch(url);
  return { status: res.status, contentType: res.headers.get("content-type"), body: await res.text() };
}

export function parseExposition(text: string): ParsedFamily[] {
  return parse(text) as ParsedFamily[];
}

/** One sample's value as a number: family name plus, if any, its labels. */
export function sample(families: ParsedFamily[], name: string, labels: Record<string, string> = {}): number {
  const family = families.find((f) => f.name === name);
  if (!family) throw new Error(`no metric family ${name}`);
  const want = JSON.stringify(Object.entries(labels).sort());
  const m = family.metrics.find((x) => JSON.stringify(Object.entries(x.labels ?? {}).sort()) === want);
  if (!m) throw new Error(`no sample ${name}${want}`);
  return Number(m.value);
}

export const promtool = Bun.which("promtool");

/** `promtool check metrics` on the text: exit code and its complaints. */
export async function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  if (!promtool) throw new Error("promtool is not installed");
  const proc = Bun.spawn([promtool, "check", "metrics"], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  proc.stdin.write(text);
  await proc.stdin.end();
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, output: out + err };
}
