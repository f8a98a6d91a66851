/**
 * The BTC/USD oracle as the Owlrun seed describes it: a 24 h average published once a day at
 * midnight UTC prices the next day, the live sample is shown beside it, `/v1/oracle/rate` breaks
 * the margin down, and the rate a request is priced at is the one `/v1/stats` and `/v1/price`
 * show. The price feed is a small local HTTP server (the edge).
 */
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { writeFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "../../gateway/index.js";
import { createBundledMint, createLightningBackend } from "../../gateway/mint/index.js";
import { Oracle } from "../../gateway/oracle/index.js";
import { closeServer, listen, silentLogger } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";

let price = 100_000;
let feed: Server;
let feedUrl: string;
beforeAll(async () => {
  feed = createServer((_req, res) => {
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ bitcoin: { usd: price } }));
  });
  feedUrl = await listen(feed, "127.0.0.1", 0);
});
afterAll(async () => {
  await closeServer(feed);
});

const at = (iso: string) => Date.parse(iso);

describe("oracle: the daily average", () => {
  it("prices on the rolling average until the first midnight, then on the day's published average", async () => {
    let now = at("2026-01-01T10:00:00Z");
    const statePath = join(tempDir("owlrun-oracle-"), "published.json");
    const oracle = new Oracle({ feedUrl, log: silentLogger, statePath, now: () => now });
    price = 100_000;
    await oracle.refresh();
    now = at("2026-01-01T18:00:00Z");
    price = 110_000;
    await oracle.refresh();
    let r = oracle.rate();
    expect(r).toMatchObject({
      btc_usd: 110_000,
      btc_daily_avg: 105_000,
      rolling_24h_avg: 105_000,
      published: null,
      pricing_basis: "rolling_24h_average",
      status: "live",
    });

    // Just after midnight: the day that ended is published; the new sample is live beside it.
    now = at("2026-01-02T00:00:30Z");
    price = 120_000;
    await oracle.refresh();
    r = oracle.rate();
    expect(r.published).toEqual({
      btc_usd_avg: 105_000,
      day: "2026-01-01",
      published_at: "2026-01-02T00:00:00.000Z",
      samples: 2,
    });
    expect(r).toMatchObject({ btc_usd: 120_000, btc_daily_avg: 105_000, rolling_24h_avg: 110_000 });
    expect(r.pricing_basis).toBe("published_daily_average");
    expect(oracle.pricingRate()).toBe(105_000);

    // Once a day: more samples during the day do not move the price.
    now = at("2026-01-02T20:00:00Z");
    price = 130_000;
    await oracle.refresh();
    expect(oracle.pricingRate()).toBe(105_000);
    expect(oracle.rate().btc_usd).toBe(130_000);

    // The next midnight publishes the next day (a request after midnight triggers it, no refresh needed).
    now = at("2026-01-03T00:00:01Z");
    expect(oracle.pricingRate()).toBe(125_000);
    expect(oracle.rate().published).toMatchObject({ day: "2026-01-02", samples: 2 });

    // A restart keeps the published average (the feed down: it prices alone, stale).
    const restarted = new Oracle({
      feedUrl: "http://127.0.0.1:1/down",
      log: silentLogger,
      statePath,
      now: () => now,
    });
    await restarted.refresh();
    expect(restarted.rate()).toMatchObject({
      btc_daily_avg: 125_000,
      pricing_basis: "published_daily_average",
      status: "stale",
    });
  });

  it("a day without samples publishes nothing: the last published average goes on", async () => {
    let now = at("2026-02-01T12:00:00Z");
    const oracle = new Oracle({ feedUrl, log: silentLogger, now: () => now });
    price = 90_000;
    await oracle.refresh();
    now = at("2026-02-02T00:10:00Z");
    expect(oracle.pricingRate()).toBe(90_000);
    now = at("2026-02-04T00:10:00Z"); // 2026-02-02 and -03 had no samples
    expect(oracle.rate().published?.day).toBe("2026-02-01");
    expect(oracle.pricingRate()).toBe(90_000);
  });
});

describe("oracle on the gateway", () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    const dir = tempDir("owlrun-oracle-gw-");
    const dataDir = join(dir, "gateway");
    const { mkdirSync } = await import("node:fs");
    mkdirSync(dataDir, { recursive: true });
    // Published at the last midnight (kept from a previous run); the feed's live sample differs.
    const midnight = Math.floor(Date.now() / 86_400_000) * 86_400_000;
    writeFileSync(
      join(dataDir, "oracle-published.json"),
      JSON.stringify({
        btc_usd_avg: 90_000,
        day: new Date(midnight - 86_400_000).toISOString().slice(0, 10),
        published_at: new Date(midnight).toISOString(),
        samples: 288,
      }),
    );
    price = 99_000;
    gw = await startGateway({
      dataDir,
      trustedMints: [],
      port: 0,
      log: silentLogger,
      priceFeedUrl: feedUrl,
      payoutIntervalMs: 0,
      sweepIntervalMs: 0,
      bundledMint: await createBundledMint({
        dataDir: join(dir, "mint"),
        lightning: createLightningBackend("fake", { incomingDelayMs: 20 }),
        log: silentLogger,
      }),
    });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it("/v1/oracle/rate: the published average, the live sample beside it, and the margin breakdown", async () => {
    const r = (await (await fetch(`${gw.url}/v1/oracle/rate`)).json()) as any;
    expect(r.pricing_rate).toBe(90_000);
    expect(r.btc_daily_avg).toBe(90_000);
    expect(r.live.btc_usd).toBe(99_000);
    expect(r.pricing_basis).toBe("published_daily_average");
    expect(r.margin).toEqual({
      provider_pct: 95,
      gateway_pct: 15,
      inference_pct: 5,
      fx_pct: 10,
      floor: { sats: 2, provider_sats: 1, gateway_sats: 1 },
    });
  });

  it("the rate a request is priced at is the one /v1/stats and /v1/price show", async () => {
    const stats = (await (await fetch(`${gw.url}/v1/stats`)).json()) as any;
    const quote = (await (
      await fetch(`${gw.url}/v1/price`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "m:1b",
          messages: [{ role: "user", content: "hi" }],
          max_tokens: 1_000_000,
        }),
      })
    ).json()) as any;
    expect(stats.btc_usd).toBe(90_000);
    expect(quote.btc_usd).toBe(90_000);
    // 1M output tokens at $0.06 + the prompt's input, at $90k: sats follow the published rate.
    expect(quote.sats).toBe(
      Math.ceil(((quote.prompt_tokens_estimate * 0.02 + 1_000_000 * 0.06) / 1e6 / 90_000) * 1e8),
    );
  });
});
