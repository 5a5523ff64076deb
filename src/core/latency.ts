// Statistics of measured times. Pure.
// - summarize(), percentile(), median(): exact figures over a list of samples
//   (the probe's ping mode, the benchmark's rounds and starts).
// - LatencyHistogram: constant memory and a few operations per sample (load
//   mode: millions of samples); percentiles within 0.8 % (64 buckets per
//   power of two of microseconds), min/max/avg exact.

export interface RttSummary {
  count: number;
  min: number;
  avg: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

export const EMPTY_SUMMARY: RttSummary = { count: 0, min: 0, avg: 0, p50: 0, p90: 0, p99: 0, max: 0 };

/** Nearest-rank percentile of sorted values (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/** Median of the finite values (the mean of the middle two for an even count); NaN when there are none. */
export function median(values: readonly number[]): number {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Exact min/avg/percentiles/max of the samples (any unit). */
export function summarize(samples: readonly number[]): RttSummary {
  if (samples.length === 0) return EMPTY_SUMMARY;
  const sorted = [...samples].sort((a, b) => a - b);
  let sum = 0;
  for (const v of sorted) sum += v;
  return {
    count: sorted.length,
    min: sorted[0]!,
    avg: sum / sorted.length,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1]!,
  };
}

const SUB_BITS = 6;
const SUB = 1 << SUB_BITS;
/** Octaves of microseconds covered: 1 µs .. 2^31 µs (~36 min); larger values land in the last bucket. */
const OCTAVES = 32;

/** Log-linear histogram of milliseconds, bucketed by microseconds. */
export class LatencyHistogram {
  readonly counts = new Float64Array(OCTAVES * SUB + 1);
  count = 0;
  sum = 0;
  min = Infinity;
  max = 0;

  record(ms: number): void {
    this.count++;
    this.sum += ms;
    if (ms < this.min) this.min = ms;
    if (ms > this.max) this.max = ms;
    this.counts[bucketOf(ms * 1000)]!++;
  }

  /** Add another histogram's samples to this one. */
  merge(other: LatencyHistogram): void {
    if (other.count === 0) return;
    const a = this.counts;
    const b = other.counts;
    for (let i = 0; i < a.length; i++) a[i]! += b[i]!;
    this.count += other.count;
    this.sum += other.sum;
    if (other.min < this.min) this.min = other.min;
    if (other.max > this.max) this.max = other.max;
  }

  reset(): void {
    this.counts.fill(0);
    this.count = 0;
    this.sum = 0;
    this.min = Infinity;
    this.max = 0;
  }

  /** Percentile in ms (p in 0..100): the middle of the bucket holding that rank, kept within min..max. */
  percentile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    if (rank >= this.count) return this.max; // the top rank is known exactly
    let seen = 0;
    const counts = this.counts;
    for (let i = 0; i < counts.length; i++) {
      seen += counts[i]!;
      if (seen >= rank) return Math.min(this.max, Math.max(this.min, bucketMiddle(i) / 1000));
    }
    return this.max;
  }

  summary(): RttSummary {
    if (this.count === 0) return EMPTY_SUMMARY;
    return {
      count: this.count,
      min: this.min,
      avg: this.sum / this.count,
      p50: this.percentile(50),
      p90: this.percentile(90),
      p99: this.percentile(99),
      max: this.max,
    };
  }
}

/** Bucket of a value in µs: bucket 0 holds everything below 1 µs. */
export function bucketOf(us: number): number {
  if (!(us >= 1)) return 0;
  const v = Math.min(us, 2 ** OCTAVES - 1);
  const e = 31 - Math.clz32(v); // clz32 truncates to an integer first
  const base = 2 ** e;
  return 1 + e * SUB + Math.floor(((v - base) * SUB) / base);
}

/** Middle of a bucket in µs. */
export function bucketMiddle(bucket: number): number {
  if (bucket === 0) return 0.5;
  const e = Math.floor((bucket - 1) / SUB);
  const sub = (bucket - 1) % SUB;
  const base = 2 ** e;
  const lo = base + (sub * base) / SUB;
  const hi = base + ((sub + 1) * base) / SUB;
  return (lo + hi) / 2;
}
