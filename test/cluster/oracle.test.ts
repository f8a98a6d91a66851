/**
 * BTC/USD across gateway processes on one database: the feed is asked once per period (by one
 * process), the samples and the published daily average live in PostgreSQL, and every process
 * prices with the same number (`/v1/oracle/rate`, `/v1/stats`, `/v1/price` agree). The price feed
 * is a small local HTTP server (the edge), as in test/gateway/oracle.test.ts.
 */
import { writeFileSync, mkdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningGateway, startGateway } from "../../gateway/index.js";
import { PgOracleStore } from "../../gateway/oracle/index.js";
import { closeServer, listen, PgDatabase, silentLogger } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";

const DAY_MS = 24 * 3600_000;
const price = 120_000;
let feedHits = 0;
let feed: Server;
let feedUrl: string;
let pg: { url: string; drop(): Promise<void> };
const dbs: PgDatabase[] = [];
const gateways: RunningGateway[] = [];

beforeAll(async () => {
  feed = createServer((_req, res) => {
    feedHits++;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify({ bitcoin: { usd: price } }));
  });
  feedUrl = await listen(feed, "127.0.0.1", 0);
  pg = await testDatabase("clusteroracle");
});
afterAll(async () => {
  for (const g of gateways.reverse()) await g.close().catch(() => undefined);
  await Promise.all(dbs.map((d) => d.close()));
  await pg?.drop();
  await closeServer(feed);
});

async function gateway(dataDir: string): Promise<RunningGateway> {
  const database = await PgDatabase.open(pg.url, { max: 4 });
  dbs.push(database);
  const g = await startGateway({
    dataDir,
    trustedMints: ["http://127.0.0.1:1/mint"],
    port: 0,
    priceFeedUrl: feedUrl,
    log: silentLogger,
    payoutIntervalMs: 0,
    sweepIntervalMs: 0,
    topupPollMs: 0,
    database,
    oracleSyncMs: 50,
  });
  gateways.push(g);
  return g;
}

const json = async (url: string, init?: RequestInit) => (await (await fetch(url, init)).json()) as any;
const priceOf = (url: string) =>
  json(`${url}/v1/price`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "any:1b",
      messages: [{ role: "user", content: "x".repeat(5_000) }],
      max_tokens: 4_000,
    }),
  });

it("two processes: one feed fetch per period, one published average, the same price everywhere", async () => {
  // Yesterday's samples, taken by whichever processes were running then.
  const seed = await PgDatabase.open(pg.url, { max: 1 });
  dbs.push(seed);
  const store = await PgOracleStore.open(seed);
  const midnight = Math.floor(Date.now() / DAY_MS) * DAY_MS;
  await store.addSample(midnight - 20 * 3600_000, 90_000);
  await store.addSample(midnight - 2 * 3600_000, 100_000);
  const yesterday = new Date(midnight - DAY_MS).toISOString().slice(0, 10);

  const a = await gateway(join(tempDir("owlrun-oracle-a-"), "gateway"));
  expect(feedHits).toBe(1);
  // B's data dir still has the average it published alone, before the database: an older day.
  const bDir = join(tempDir("owlrun-oracle-b-"), "gateway");
  mkdirSync(bDir, { recursive: true, mode: 0o700 });
  writeFileSync(
    join(bDir, "oracle-published.json"),
    JSON.stringify({
      btc_usd_avg: 50_000,
      day: "2020-01-01",
      published_at: "2020-01-02T00:00:00.000Z",
      samples: 3,
    }),
  );
  const b = await gateway(bDir);
  // B started within A's refresh period: it read A's sample instead of asking the feed again.
  expect(feedHits).toBe(1);

  const [rateA, rateB] = await Promise.all([a, b].map((g) => json(`${g.url}/v1/oracle/rate`)));
  expect(rateA.published).toEqual({
    btc_usd_avg: 95_000,
    day: yesterday,
    published_at: new Date(midnight).toISOString(),
    samples: 2,
  });
  expect(rateB.published).toEqual(rateA.published);
  expect(rateA.pricing_rate).toBe(95_000);
  expect(rateB.pricing_rate).toBe(95_000);
  // The live sample A fetched is B's too.
  expect(rateB.live.btc_usd).toBe(120_000);
  expect(rateB.live).toEqual(rateA.live);
  const [statsA, statsB] = await Promise.all([a, b].map((g) => json(`${g.url}/v1/stats`)));
  expect(statsA.btc_usd).toBe(95_000);
  expect(statsB.btc_usd).toBe(95_000);
  const [quoteA, quoteB] = await Promise.all([a, b].map((g) => priceOf(g.url)));
  expect(quoteA.btc_usd).toBe(95_000);
  expect(quoteB).toEqual(quoteA);
  // The day's average is stored once.
  expect(await seed.query("SELECT day FROM oracle_published ORDER BY day")).toEqual([
    { day: "2020-01-01" },
    { day: yesterday },
  ]);
});
