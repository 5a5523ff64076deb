import { describe, expect, test } from "bun:test";
import { SourceRateLimiter } from "../../src/core/source-rate-limit.ts";
import { WarnThrottle } from "../../src/core/warn-throttle.ts";

const takes = (l: SourceRateLimiter, source: string, n: number, nowMs: number) => {
  let ok = 0;
  for (let i = 0; i < n; i++) if (l.take(source, nowMs)) ok++;
  return ok;
};

describe("SourceRateLimiter", () => {
  test("a burst of `rate`, then `rate` a second, per source address", () => {
    const l = new SourceRateLimiter(10);
    expect(takes(l, "198.18.0.1", 25, 0)).toBe(10);
    expect(takes(l, "198.18.0.2", 3, 0)).toBe(3); // another source has its own bucket
    expect(takes(l, "198.18.0.1", 5, 100)).toBe(1); // 100 ms = one token
    expect(takes(l, "198.18.0.1", 50, 600)).toBe(5);
    expect(takes(l, "198.18.0.1", 50, 10_000)).toBe(10); // refills to the burst, no more
  });

  test("a steady flood gets at most rate + burst replies in its first second, rate in the next", () => {
    const l = new SourceRateLimiter(1000);
    let first = 0;
    let second = 0;
    for (let t = 0; t < 2000; t += 0.05) {
      const ok = l.take("victim", t);
      if (ok && t < 1000) first++;
      else if (ok) second++;
    }
    expect(first).toBeLessThanOrEqual(2000);
    expect(first).toBeGreaterThanOrEqual(1990);
    expect(second).toBeLessThanOrEqual(1001);
    expect(second).toBeGreaterThanOrEqual(999);
  });

  test("the table is bounded: past the cap, new sources share one bucket", () => {
    const l = new SourceRateLimiter(4, 3);
    for (const s of ["a", "b", "c"]) expect(l.take(s, 0)).toBe(true);
    expect(l.size).toBe(3);
    // d, e, f, ... all draw from the one shared bucket of 4.
    let shared = 0;
    for (let i = 0; i < 100; i++) if (l.take(`x${i}`, 0)) shared++;
    expect(shared).toBe(4);
    expect(l.size).toBe(3);
    expect(takes(l, "a", 10, 0)).toBe(3); // a keeps its own bucket
  });

  test("refilled buckets are forgotten by the sweep, which take() runs once a second", () => {
    const l = new SourceRateLimiter(100, 2);
    l.take("a", 0);
    l.take("b", 500);
    expect(l.size).toBe(2);
    l.take("c", 1200); // sweeps "a" (idle 1.2 s), keeps "b"; then c gets its own bucket
    expect(l.size).toBe(2);
    l.sweep(5000);
    expect(l.size).toBe(0);
  });
});

describe("WarnThrottle", () => {
  test("one warning per interval, with the count since the last one", () => {
    const w = new WarnThrottle(10_000);
    expect(w.hit(0)).toBe(1);
    expect(w.hit(1)).toBe(0);
    expect(w.hit(9_999)).toBe(0);
    expect(w.hit(10_000)).toBe(3);
    expect(w.hit(10_001)).toBe(0);
    expect(w.hit(50_000)).toBe(2);
  });
});
