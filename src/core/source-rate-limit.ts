// --udp-rate: a token bucket per source address (rate N replies a second,
// burst N), so an echo server cannot be used to reflect a flood at a forged
// victim, and a loop between two servers dies at its first dropped reply.
// Pure: time comes in as milliseconds. The table is bounded: past
// SOURCE_TABLE_CAP addresses, every address not in it shares one more bucket
// (a spoofed flood from many addresses cannot grow memory, and the replies
// it draws stay bounded in total). A bucket that has refilled is the same as
// a new one, so the sweep forgets it.

/** Source addresses with a bucket of their own at most. */
export const SOURCE_TABLE_CAP = 65536;
/** How often (at most) take() sweeps refilled buckets out of the table. */
const SWEEP_EVERY_MS = 1000;
/** An unused bucket is full again after burst / rate seconds, and burst = rate. */
const REFILL_MS = 1000;

class Bucket {
  constructor(
    public tokens: number,
    public at: number,
  ) {}
}

export class SourceRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  /** Shared by the addresses that found the table full. */
  private readonly overflow: Bucket;
  private readonly perMs: number;
  private sweptAt = -Infinity;

  /** `rate` replies a second per source, burst `rate`; rate > 0. */
  constructor(
    readonly rate: number,
    readonly cap = SOURCE_TABLE_CAP,
  ) {
    this.perMs = rate / 1000;
    this.overflow = new Bucket(rate, -Infinity); // full whenever first drawn from
  }

  /** Addresses with a bucket of their own now. */
  get size(): number {
    return this.buckets.size;
  }

  /** Spend one token of the source's bucket: false when it is empty (over the limit). */
  take(source: string, nowMs: number): boolean {
    if (nowMs - this.sweptAt >= SWEEP_EVERY_MS) this.sweep(nowMs);
    let b = this.buckets.get(source);
    if (b === undefined) {
      if (this.buckets.size < this.cap) {
        this.buckets.set(source, new Bucket(this.rate - 1, nowMs));
        return true;
      }
      b = this.overflow;
    }
    const tokens = Math.min(this.rate, b.tokens + (nowMs - b.at) * this.perMs);
    b.at = nowMs;
    if (tokens < 1) {
      b.tokens = tokens;
      return false;
    }
    b.tokens = tokens - 1;
    return true;
  }

  /** Forget buckets that have refilled since their last use. */
  sweep(nowMs: number): void {
    this.sweptAt = nowMs;
    const oldest = nowMs - REFILL_MS;
    for (const [source, b] of this.buckets) {
      if (b.at <= oldest) this.buckets.delete(source);
    }
  }
}
