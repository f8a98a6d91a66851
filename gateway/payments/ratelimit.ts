import { PaymentError } from "./errors.js";

/** Per-key sliding-window rate limit (RouteCat: 60 requests per minute per key). */
export class RateLimiter {
  private readonly hits = new Map<string, number[]>();

  constructor(
    private readonly limit = 60,
    private readonly windowMs = 60_000,
  ) {}

  /** Counts a request; returns seconds to wait when over the limit, else 0. */
  take(key: string, now = Date.now()): number {
    const recent = (this.hits.get(key) ?? []).filter((t) => t > now - this.windowMs);
    if (recent.length >= this.limit) {
      this.hits.set(key, recent);
      return Math.max(1, Math.ceil((recent[0]! + this.windowMs - now) / 1000));
    }
    recent.push(now);
    this.hits.set(key, recent);
    if (this.hits.size > 100_000) this.prune(now);
    return 0;
  }

  /** Counts a request; over the limit, throws 429 `rate_limited` with `retry_after` (`what`: the limit in words). */
  enforce(key: string, what: string): void {
    const wait = this.take(key);
    if (wait > 0) {
      throw new PaymentError("rate_limited", `rate limit: ${what}; retry in ${wait}s`, 429, {
        retry_after: wait,
      });
    }
  }

  private prune(now: number): void {
    for (const [k, v] of this.hits) if (!v.some((t) => t > now - this.windowMs)) this.hits.delete(k);
  }
}
