/**
 * BTC/USD for pricing (Owlrun): samples from a configurable feed every 5 minutes; at midnight UTC
 * the average of the day that ended is published and prices the next day (before the first
 * midnight: the rolling 24 h average). The live sample is shown beside it. The last good value is
 * kept when the feed fails. A fixed rate is used only when the operator chose one (`--btc-usd`: the
 * devnet, local use) or when no feed is configured at all. A feed that never gave a sane sample,
 * with no fixed rate chosen, leaves the gateway without a rate: paid requests then answer 503
 * `price_unavailable` rather than price at an invented rate.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import * as z from "zod";
import { AppError, type Logger } from "../../src/shared/index.js";
import type { OracleStore } from "./pg-store.js";

export { ORACLE_MIGRATIONS, type OracleStore, PgOracleStore } from "./pg-store.js";

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
  /** the live sample: the last good answer of the feed (0 when `status` is "unavailable") */
  btc_usd: number;
  /** the rate used for pricing: the published daily average, else the rolling 24 h average */
  btc_daily_avg: number;
  status: "live" | "stale" | "offline" | "unavailable";
  source: string;
  updated_at: string | null;
  samples_24h: number;
  /** average of the last 24 h of samples, right now */
  rolling_24h_avg: number | null;
  /** the 24 h average published at the last midnight UTC (Owlrun: the pricing rate for the day) */
  published: PublishedRate | null;
  /** where btc_daily_avg comes from */
  pricing_basis: "published_daily_average" | "rolling_24h_average" | "fixed";
}

export interface PublishedRate {
  btc_usd_avg: number;
  /** the UTC day whose samples were averaged */
  day: string;
  /** midnight UTC at the end of that day */
  published_at: string;
  samples: number;
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
  /** where the published daily average is kept across restarts */
  statePath?: string;
  /** the clock (tests) */
  now?: () => number;
  /**
   * Several gateway processes on one database: samples and published averages live here, shared
   * (the state file is then only carried over once), so every process prices with the same number.
   */
  store?: OracleStore;
  /** with `store`: runs the feed fetch in one process per period (the cluster's runOncePerPeriod) */
  once?: (name: string, periodMs: number, fn: () => Promise<unknown>) => Promise<unknown>;
  /** with `store`: how often this process reads the shared samples and published average (default 5 s) */
  syncMs?: number;
}

const utcDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const midnightUtc = (ms: number) => Math.floor(ms / DAY_MS) * DAY_MS;
const round2 = (n: number) => Math.round(n * 100) / 100;

export class Oracle {
  private samples: { at: number; usd: number }[] = [];
  private lastError?: string;
  private timer?: NodeJS.Timeout;
  private syncTimer?: NodeJS.Timeout;
  /** a sync started because a day turned (one at a time) */
  private syncing?: Promise<void>;
  private published: PublishedRate | null = null;

  constructor(private readonly opts: OracleOptions) {
    this.published = this.loadPublished();
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  async start(): Promise<void> {
    if (!this.opts.feedUrl) return;
    const every = this.opts.refreshMs ?? 300_000;
    const { store, once } = this.opts;
    if (!store) {
      await this.refresh();
      this.timer = setInterval(() => void this.refresh(), every);
      this.timer.unref();
      return;
    }
    // A published average kept in the data dir before the database: carried over (the day's row
    // stays if another process published it first).
    if (this.published) await store.publish(this.published).catch(() => undefined);
    const tick = async () => {
      await (once ? once("oracle-refresh", every, () => this.fetchSample()) : this.fetchSample());
      await this.sync();
    };
    await tick().catch((err) => this.opts.log.warn("price feed tick failed", { err: String(err) }));
    this.timer = setInterval(() => void tick().catch(() => undefined), every);
    this.timer.unref();
    this.syncTimer = setInterval(() => void this.sync(), this.opts.syncMs ?? 5_000);
    this.syncTimer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    if (this.syncTimer) clearInterval(this.syncTimer);
  }

  /** Asks the feed now (with a shared store: adds the sample there, then reads the shared state). */
  async refresh(): Promise<void> {
    await this.fetchSample();
    if (this.opts.store) await this.sync();
  }

  /**
   * With a shared store: reads the samples and the latest published average; publishes the day
   * that ended when nobody has yet (computed from the shared samples, stored once per day).
   */
  async sync(): Promise<void> {
    const store = this.opts.store;
    if (!store) return;
    try {
      const now = this.now();
      this.samples = await store.samples(now - 2 * DAY_MS);
      this.published = await store.latestPublished();
      const candidate = this.dayAverage(now);
      if (candidate) {
        await store.publish(candidate);
        this.published = await store.latestPublished();
        this.opts.log.info("published the daily BTC/USD average", { ...this.published });
      }
    } catch (err) {
      this.opts.log.warn("could not read the shared BTC/USD state; keeping the last one", {
        err: String(err),
      });
    } finally {
      this.syncing = undefined;
    }
  }

  private async fetchSample(): Promise<void> {
    if (!this.opts.feedUrl) return;
    try {
      const res = await (this.opts.fetchImpl ?? fetch)(this.opts.feedUrl, {
        signal: AbortSignal.timeout(5_000),
      });
      const price = readPrice(await res.json());
      if (!res.ok || price === undefined) throw new Error(`unusable answer (HTTP ${res.status})`);
      const now = this.now();
      this.lastError = undefined;
      if (this.opts.store) {
        // Yesterday's samples are averaged (by `sync`) from the shared table, which keeps two days.
        await this.opts.store.addSample(now, price);
        return;
      }
      this.maybePublish(now); // yesterday's samples are averaged before today's join them
      // Two days are kept: the rolling 24 h and the whole of yesterday for the midnight average.
      this.samples = [...this.samples.filter((s) => s.at > now - 2 * DAY_MS), { at: now, usd: price }];
    } catch (err) {
      this.lastError = String(err);
      this.opts.log.warn("price feed failed; keeping the last good rate", { err: this.lastError });
    }
  }

  /**
   * Once a day, at the first look after midnight UTC: the average of the day that just ended is
   * published and prices the new day. A day without samples publishes nothing (the last
   * published rate, or the rolling average, goes on).
   */
  private maybePublish(now: number): void {
    const candidate = this.dayAverage(now);
    if (!candidate) return;
    if (this.opts.store) {
      // Shared: the stored row decides (sync publishes once and every process reads it back).
      this.syncing ??= this.sync();
      return;
    }
    this.published = candidate;
    this.opts.log.info("published the daily BTC/USD average", { ...this.published });
    this.savePublished();
  }

  /** The average of the UTC day that ended before `now`, when it is due and has samples. */
  private dayAverage(now: number): PublishedRate | undefined {
    const end = midnightUtc(now);
    const day = utcDay(end - DAY_MS);
    if (this.published && this.published.day >= day) return undefined;
    const ofDay = this.samples.filter((s) => s.at >= end - DAY_MS && s.at < end);
    if (ofDay.length === 0) return undefined;
    return {
      btc_usd_avg: round2(ofDay.reduce((a, x) => a + x.usd, 0) / ofDay.length),
      day,
      published_at: new Date(end).toISOString(),
      samples: ofDay.length,
    };
  }

  private loadPublished(): PublishedRate | null {
    if (!this.opts.statePath || !existsSync(this.opts.statePath)) return null;
    try {
      const p = JSON.parse(readFileSync(this.opts.statePath, "utf8")) as PublishedRate;
      return Number.isFinite(p.btc_usd_avg) && p.btc_usd_avg > 0 && typeof p.day === "string" ? p : null;
    } catch {
      return null;
    }
  }

  private savePublished(): void {
    if (!this.opts.statePath || !this.published) return;
    try {
      writeFileSync(this.opts.statePath, JSON.stringify(this.published));
    } catch (err) {
      this.opts.log.warn("could not keep the published rate", { err: String(err) });
    }
  }

  /** The fixed rate to use while there is no sample, if any. */
  private fixedRate(): number | undefined {
    return this.opts.offlineRate ?? (this.opts.feedUrl ? undefined : DEFAULT_OFFLINE_BTC_USD);
  }

  /** The live sample, the rolling and published averages, and the rate used for pricing. */
  rate(): OracleRate {
    const now = this.now();
    this.maybePublish(now);
    const fixed = this.fixedRate();
    const recent = this.samples.filter((s) => s.at > now - DAY_MS);
    const rolling = recent.length ? round2(recent.reduce((a, x) => a + x.usd, 0) / recent.length) : null;
    // The published average prices the day after it; an older one is still better than nothing.
    const pricing = this.published?.btc_usd_avg ?? rolling;
    const last = this.samples.at(-1);
    if (pricing === null) {
      return {
        btc_usd: fixed ?? 0,
        btc_daily_avg: fixed ?? 0,
        status: fixed === undefined ? "unavailable" : "offline",
        source: this.opts.feedUrl ?? "fixed",
        updated_at: null,
        samples_24h: 0,
        rolling_24h_avg: null,
        published: this.published,
        pricing_basis: "fixed",
      };
    }
    // After a restart with the feed down, the kept published average prices alone (stale).
    return {
      btc_usd: last?.usd ?? pricing,
      btc_daily_avg: pricing,
      status: this.lastError || recent.length === 0 ? "stale" : "live",
      source: this.opts.feedUrl ?? "fixed",
      updated_at: last ? new Date(last.at).toISOString() : null,
      samples_24h: recent.length,
      rolling_24h_avg: rolling,
      published: this.published,
      pricing_basis: this.published ? "published_daily_average" : "rolling_24h_average",
    };
  }

  /** USD/BTC used to convert prices (the published daily average, ARCHITECTURE.md §4), if any. */
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
