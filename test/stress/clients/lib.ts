// Child side of the stress suite's JSON-lines protocol (see test/support/stress.ts):
// arguments come as one JSON argv, reports go to stdout as {"ev": ...} lines,
// commands arrive on stdin as JSON lines. A child exits when its stdin closes
// (the test died), so no load generator outlives its test.

export const args: Record<string, any> = JSON.parse(process.argv[2] ?? "{}");

export function emit(ev: string, data: Record<string, unknown> = {}): void {
  process.stdout.write(JSON.stringify({ ev, ...data }) + "\n");
}

/** Report an error the parent turns into a failed assertion, and exit. */
export function fatal(message: string): never {
  emit("fatal", { message });
  process.exit(1);
}

process.on("uncaughtException", (e) => fatal(`uncaught: ${e instanceof Error ? e.stack ?? e.message : String(e)}`));
process.on("unhandledRejection", (e) => fatal(`unhandled rejection: ${e instanceof Error ? e.stack ?? e.message : String(e)}`));

type Handler = (msg: Record<string, any>) => void;
const handlers: Handler[] = [];
const waiting = new Map<string, Array<(m: Record<string, any>) => void>>();

/** Call `h` for every command from the parent. */
export function onCommand(h: Handler): void {
  handlers.push(h);
}

/** Resolve on the next command {cmd: name}. */
export function nextCommand(name: string): Promise<Record<string, any>> {
  return new Promise((resolve) => {
    const list = waiting.get(name) ?? [];
    list.push(resolve);
    waiting.set(name, list);
  });
}

void (async () => {
  const dec = new TextDecoder();
  let buf = "";
  for await (const chunk of Bun.stdin.stream()) {
    buf += dec.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.trim()) continue;
      const msg = JSON.parse(line);
      for (const h of handlers) h(msg);
      const list = waiting.get(msg.cmd);
      if (list) {
        waiting.delete(msg.cmd);
        for (const r of list) r(msg);
      }
    }
  }
  // stdin closed: the parent is gone or done with us.
  process.exit(0);
})();

/**
 * Microseconds on a clock shared by every process (the wall clock, read with
 * sub-ms resolution). Not process.hrtime: Bun counts that from process start.
 */
export const nowUs = (): number => Math.round((performance.timeOrigin + performance.now()) * 1000);

/** Seeded PRNG (mulberry32): same seed, same sequence. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** Integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
}

/** Percentile of a sorted-in-place numeric array. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  xs.sort((a, b) => a - b);
  return xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;
}

/** Run `fn` over items with at most `limit` in flight. */
export async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
}
