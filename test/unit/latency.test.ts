import { describe, expect, test } from "bun:test";
import { bucketMiddle, bucketOf, LatencyHistogram, median, percentile, summarize } from "../../src/core/latency.ts";

describe("exact summaries (ping mode)", () => {
  test("nearest-rank percentiles", () => {
    const sorted = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(percentile(sorted, 50)).toBe(5);
    expect(percentile(sorted, 90)).toBe(9);
    expect(percentile(sorted, 99)).toBe(10);
    expect(percentile(sorted, 100)).toBe(10);
    expect(percentile(sorted, 0)).toBe(1);
    expect(percentile([], 50)).toBe(0);
    expect(percentile([7], 99)).toBe(7);
  });

  test("summarize: min, avg, p50, p90, p99, max, unsorted input left alone", () => {
    const samples = [0.4, 0.1, 0.3, 0.2];
    expect(summarize(samples)).toEqual({ count: 4, min: 0.1, avg: 0.25, p50: 0.2, p90: 0.4, p99: 0.4, max: 0.4 });
    expect(samples).toEqual([0.4, 0.1, 0.3, 0.2]);
    expect(summarize([])).toEqual({ count: 0, min: 0, avg: 0, p50: 0, p90: 0, p99: 0, max: 0 });
  });

  test("median: middle value, mean of the middle two, non-finite values left out", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5, NaN, 1, Infinity, 3])).toBe(3);
    expect(median([])).toBeNaN();
    expect(median([NaN])).toBeNaN();
  });

  test("p99 of 1000 samples is the 990th", () => {
    const xs = Array.from({ length: 1000 }, (_, i) => 1000 - i);
    expect(summarize(xs).p99).toBe(990);
    expect(summarize(xs).p50).toBe(500);
  });
});

describe("LatencyHistogram (load mode)", () => {
  test("buckets are monotonic and each middle falls inside its bucket", () => {
    let last = -1;
    for (let us = 0.1; us < 1e7; us *= 1.01) {
      const b = bucketOf(us);
      expect(b).toBeGreaterThanOrEqual(last);
      last = b;
      if (us >= 1) expect(Math.abs(bucketMiddle(b) - us) / us).toBeLessThan(0.008);
    }
  });

  test("percentiles within 0.8 %, min/max/avg exact", () => {
    const h = new LatencyHistogram();
    const xs: number[] = [];
    for (let i = 1; i <= 10_000; i++) {
      const ms = 0.01 + (i % 997) * 0.013 + (i % 13 === 0 ? 5 : 0);
      xs.push(ms);
      h.record(ms);
    }
    const exact = summarize(xs);
    const s = h.summary();
    expect(s.count).toBe(10_000);
    expect(s.min).toBe(exact.min);
    expect(s.max).toBe(exact.max);
    expect(s.avg).toBeCloseTo(exact.avg, 9);
    for (const k of ["p50", "p90", "p99"] as const) expect(Math.abs(s[k] - exact[k]) / exact[k]).toBeLessThan(0.008);
  });

  test("merge adds samples; reset empties", () => {
    const a = new LatencyHistogram();
    const b = new LatencyHistogram();
    a.record(1);
    a.record(2);
    b.record(100);
    a.merge(b);
    expect(a.count).toBe(3);
    expect(a.max).toBe(100);
    expect(a.min).toBe(1);
    expect(a.percentile(100)).toBe(100);
    a.reset();
    expect(a.summary()).toEqual(summarize([]));
    expect(a.percentile(50)).toBe(0);
  });

  test("a single sample is reported exactly (clamped to min..max)", () => {
    const h = new LatencyHistogram();
    h.record(0.0423);
    expect(h.percentile(50)).toBe(0.0423);
    expect(h.percentile(99)).toBe(0.0423);
  });
});
