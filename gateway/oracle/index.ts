/**
 * BTC/USD for pricing: the 24h average of samples from a configurable feed, refreshed every
 * 5 minutes; the last good value is kept when the feed fails, and a fixed rate is used offline
 * (no feed configured: local use, tests, the devnet).
 */
import * as z from "zod";
import type { Logger } from "../../src/shared/index.js";

export const DEFAULT_OFFLINE_BTC_USD = 100_000;
const DAY_MS = 24 * 3600_000;

/** Accepts the common shapes of public price APIs: {USD: n}, {price: n}, {bitcoin:{usd:n}}, {data:{amount:"n"}}. */
const FeedBody = z.union([
  z.object({ USD: z.coerce.number() }),
  z.object({ price: z.coerce.number() }),
  z.object({ bitcoin: z.object({ usd: z.coerce.number() }) }),
  z.object({ data: z.object({ amount: z.coerce.number() }) }),
]);

function readPrice(body: unknown): number | undefined {
  const parsed = FeedBody.safeParse(body);
  if (!parsed.success) return undefined;
  const d = parsed.data as Record<string, unknown>;
  const v =
    "USD" in d
      ? (d.USD as number)
      : "price" in d
        ? (d.price as number)
        : "bitcoin" in d
          ? (d.bitcoin as { usd: number }).usd
          : (d.data as { amount: number }).amount;
  return Number.isFinite(v) && v > 1000 && v < 100_000_000 ? v : undefined;
}

export interface OracleRate {
  btc_usd: number;
  btc_daily_avg: number;
  status: "live" | "stale" | "offline";
  source: string;
  updated_at: string | null;
  samples_24h: number;
}

export interface OracleOptions {
  feedUrl?: string;
  offlineRate?: number;
  refreshMs?: number;
  log: Logger;
  fetchImpl?: typeof fetch;
}

export class Oracle {
  private samples: { at: number; usd: number }[] = [];
  private lastError?: string;
  private timer?: NodeJS.Timeout;

  constructor(private readonly opts: OracleOptions) {}

  async start(): Promise<void> {
    if (!this.opts.feedUrl) return;
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.opts.refreshMs ?? 300_000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    if (!this.opts.feedUrl) return;
    try {
      const res = await (this.opts.fetchImpl ?? fetch)(this.opts.feedUrl, {
        signal: AbortSignal.timeout(5_000),
      });
      const price = readPrice(await res.json());
      if (!res.ok || price === undefined) throw new Error(`unusable answer (HTTP ${res.status})`);
      const now = Date.now();
      this.samples = [...this.samples.filter((s) => s.at > now - DAY_MS), { at: now, usd: price }];
      this.lastError = undefined;
    } catch (err) {
      this.lastError = String(err);
      this.opts.log.warn("price feed failed; keeping the last good rate", { err: this.lastError });
    }
  }

  /** The rate used for pricing: 24h average of good samples, else the fixed offline rate. */
  rate(): OracleRate {
    const offline = this.opts.offlineRate ?? DEFAULT_OFFLINE_BTC_USD;
    if (this.samples.length === 0) {
      return {
        btc_usd: offline,
        btc_daily_avg: offline,
        status: "offline",
        source: this.opts.feedUrl ?? "fixed",
        updated_at: null,
        samples_24h: 0,
      };
    }
    const avg = this.samples.reduce((s, x) => s + x.usd, 0) / this.samples.length;
    const last = this.samples[this.samples.length - 1]!;
    return {
      btc_usd: last.usd,
      btc_daily_avg: Math.round(avg * 100) / 100,
      status: this.lastError ? "stale" : "live",
      source: this.opts.feedUrl!,
      updated_at: new Date(last.at).toISOString(),
      samples_24h: this.samples.length,
    };
  }

  /** USD/BTC used to convert prices: the 24h average (ARCHITECTURE.md §4). */
  pricingRate(): number {
    return this.rate().btc_daily_avg;
  }
}
