/**
 * BTC/USD for pricing: the 24h average of samples from a configurable feed, refreshed every
 * 5 minutes; the last good value is kept when the feed fails. A fixed rate is used only when the
 * operator chose one (`--btc-usd`: the devnet, local use) or when no feed is configured at all. A
 * feed that never gave a sane sample, with no fixed rate chosen, leaves the gateway without a rate:
 * paid requests then answer 503 `price_unavailable` rather than price at an invented rate.
 */
import * as z from "zod";
import { AppError, type Logger } from "../../src/shared/index.js";

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

/** No BTC/USD rate to price with (503): the feed has not given a sane sample yet. */
export class PriceUnavailableError extends AppError {
  constructor(detail: string) {
    super(
      `no BTC/USD rate to price with: ${detail}; paid requests resume once the price feed answers`,
      "price_unavailable",
      503,
    );
  }
}

export interface OracleRate {
  /** 0 when `status` is "unavailable" */
  btc_usd: number;
  btc_daily_avg: number;
  status: "live" | "stale" | "offline" | "unavailable";
  source: string;
  updated_at: string | null;
  samples_24h: number;
}

export interface OracleOptions {
  feedUrl?: string;
  /**
   * The fixed rate until (or without) feed samples. Unset with a feed: no rate until a sane sample.
   * Unset without a feed: DEFAULT_OFFLINE_BTC_USD (library use, tests).
   */
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

  /** The fixed rate to use while there is no sample, if any. */
  private fixedRate(): number | undefined {
    return this.opts.offlineRate ?? (this.opts.feedUrl ? undefined : DEFAULT_OFFLINE_BTC_USD);
  }

  /** The rate used for pricing: 24h average of good samples, else the fixed rate, else unavailable. */
  rate(): OracleRate {
    if (this.samples.length === 0) {
      const fixed = this.fixedRate();
      return {
        btc_usd: fixed ?? 0,
        btc_daily_avg: fixed ?? 0,
        status: fixed === undefined ? "unavailable" : "offline",
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

  /** USD/BTC used to convert prices (the 24h average, ARCHITECTURE.md §4), if there is one. */
  maybePricingRate(): number | undefined {
    const r = this.rate();
    return r.status === "unavailable" ? undefined : r.btc_daily_avg;
  }

  /** USD/BTC used to convert prices; throws PriceUnavailableError (503) when there is none. */
  pricingRate(): number {
    const rate = this.maybePricingRate();
    if (rate === undefined)
      throw new PriceUnavailableError(
        this.lastError ? `the price feed failed (${this.lastError})` : "the price feed has not answered yet",
      );
    return rate;
  }
}
