/**
 * The market of a gateway started with `database`: its records live in PostgreSQL's `market_…`
 * tables (no market.sqlite), the whole HTTP flow works with the money where it belongs, racing
 * accepts over HTTP lock one escrow, and the parts that must not run twice across processes hold:
 * an accept in flight in another process is never undone by this one's sweeper (its lease), a
 * collect in flight is never resolved from under its payer, and only one process sweeps at a time.
 * The other process is a second PgDatabase pool on the same database.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgMarketStore } from "../../gateway/market/index.js";
import { acceptLease, collectLease, PgLeases } from "../../gateway/market/leases.js";
import { PgDatabase } from "../../src/shared/index.js";
import {
  balanceOf,
  escrowOf,
  expectBooksBalance,
  HOUR,
  type MarketNet,
  startMarketNet,
} from "../market/harness.js";
import { externalInvoice } from "../support/blinded.js";
import { testDatabase } from "../support/postgres.js";

let db: { url: string; drop(): Promise<void> };
let pg: PgDatabase;
/** "another gateway process" on the same database */
let other: PgDatabase;
let net: MarketNet;

beforeAll(async () => {
  db = await testDatabase("marketgw");
  pg = await PgDatabase.open(db.url);
  other = await PgDatabase.open(db.url, { max: 4 });
  net = await startMarketNet({ database: pg, fundSats: 30_000 });
});
afterAll(async () => {
  await net?.close();
  await other?.close();
  await pg?.close();
  await db?.drop();
});

const quotedTask = async (buyerSats = 1000) => {
  const buyer = await net.account(buyerSats);
  const worker = await net.account(100);
  const task = (await net.api("/v1/market/tasks", buyer, { title: "summarise", budget_sats: 500 })).body;
  const quote = (await net.api(`/v1/market/tasks/${task.id}/quotes`, worker, { price_sats: 200 })).body;
  return { buyer, worker, task: task.id as string, quote: quote.id as string };
};
const accept = (c: { buyer: string; task: string; quote: string }) =>
  net.api(`/v1/market/tasks/${c.task}/quotes/${c.quote}/accept`, c.buyer, {});

describe("the market on PostgreSQL behind a gateway", () => {
  it("runs the whole flow over HTTP with its records in market_… tables", async () => {
    const c = await quotedTask();
    expect((await accept(c)).body).toMatchObject({ state: "accepted", escrow: "locked", escrow_sats: 200 });
    expect(await escrowOf(net, c.task)).toBe(200_000);
    const file = Buffer.from("the work");
    const delivered = await net.api(`/v1/market/tasks/${c.task}/deliver`, c.worker, {
      filename: "w.txt",
      content_base64: file.toString("base64"),
    });
    expect(delivered.body).toMatchObject({
      state: "delivered",
      delivery: { sha256: createHash("sha256").update(file).digest("hex") },
    });
    const thread = `/v1/market/tasks/${c.task}/quotes/${c.quote}/messages`;
    expect((await net.api(thread, c.worker, { body: "done" })).status).toBe(201);
    expect((await net.api(thread, c.buyer)).body.messages).toHaveLength(1);
    expect((await net.api(`/v1/market/tasks/${c.task}/confirm`, c.buyer, {})).body).toMatchObject({
      state: "paid",
      escrow: "released",
    });
    expect(await balanceOf(net, c.worker)).toBe(100 - 10 + 200);
    const collected = await net.api("/v1/market/collect", c.worker, { invoice: externalInvoice(150) });
    expect(collected.body).toMatchObject({ state: "paid", amount_sats: 150 });
    expect((await net.api("/v1/market/me", c.worker)).body.collections).toHaveLength(1);

    const rows = await other.query<{ state: string; escrow: string }>(
      "SELECT state, escrow FROM market_tasks WHERE id = $1",
      [c.task],
    );
    expect(rows).toEqual([{ state: "paid", escrow: "settled" }]);
    expect(
      (await other.query("SELECT state FROM market_collections WHERE account_id IS NOT NULL")).map(
        (r) => r.state,
      ),
    ).toEqual(["paid"]);
    expect(existsSync(join(net.dataDir, "market.sqlite"))).toBe(false);
    await expectBooksBalance(net);
  });

  it("10 racing accepts of one quote over HTTP: one 200, nine 409, one escrow", async () => {
    const c = await quotedTask();
    const before = await balanceOf(net, c.buyer);
    const results = await Promise.all(Array.from({ length: 10 }, () => accept(c)));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([200, ...Array(9).fill(409)]);
    for (const r of results.filter((x) => x.status === 409)) expect(r.body.error.type).toBe("invalid_state");
    expect(await escrowOf(net, c.task)).toBe(200_000);
    expect(await balanceOf(net, c.buyer)).toBe(before - 200);
    await expectBooksBalance(net);
  });

  it("an accept in flight in another process is left alone by this one's sweeper, and repaired once it died", async () => {
    const c = await quotedTask();
    const { market } = net.gw.gateway;
    const buyerId = (await net.api("/v1/market/me", c.buyer)).body.account_id as string;
    // The other process claimed the task and is about to lock the escrow when we sweep.
    const theirs = await PgMarketStore.open(other);
    const leases = new PgLeases(other);
    let release!: () => void;
    const dying = new Promise<void>((r) => (release = r));
    let claimed!: () => void;
    const hasClaimed = new Promise<void>((r) => (claimed = r));
    const inFlight = leases.run(acceptLease(c.task), async () => {
      await theirs.beginAccept(c.task, c.quote, buyerId, Date.now());
      claimed();
      await dying;
    });
    await hasClaimed;
    await market.sweep();
    expect((await net.api(`/v1/market/tasks/${c.task}`, c.buyer)).body).toMatchObject({
      state: "accepted",
      escrow: "locking",
    });
    // This process refuses a second accept while that one is in flight.
    const busy = await accept(c);
    expect(busy.status).toBe(409);
    expect(busy.body.error.message).toMatch(/cannot accept a quote: the task is accepted/);

    // The other process dies before reaching the ledger: its lease goes with its connection.
    release();
    await inFlight;
    await leases.close();
    await market.sweep();
    const repaired = (await net.api(`/v1/market/tasks/${c.task}`, c.buyer)).body;
    expect(repaired).toMatchObject({ state: "quoted", escrow: "none" });
    expect(repaired.quotes[0].state).toBe("pending");
    expect((await accept(c)).body).toMatchObject({ state: "accepted", escrow: "locked" });
    await expectBooksBalance(net);
  });

  it("a collect another process is paying is not resolved from under it", async () => {
    const leases = new PgLeases(other);
    const id = "collect-in-flight";
    const { wallet } = net.gw.gateway;
    // A real melt quote nobody has paid yet: asked now, the mint says UNPAID, and a sweeper that
    // believed it would fail the collect while its payer is about to pay.
    const quote = await wallet.meltQuote(net.mint.url, externalInvoice(5));
    let release!: () => void;
    const paying = new Promise<void>((r) => (release = r));
    let started!: () => void;
    const isPaying = new Promise<void>((r) => (started = r));
    const inFlight = leases.run(collectLease(id), async () => {
      await (
        await PgMarketStore.open(other)
      ).addCollection({
        id,
        account_id: "nobody",
        mint: net.mint.url,
        invoice: "lnbc",
        quote: quote.quote,
        amount: 5,
        fee_reserve: 0,
        created_at: Date.now(),
      });
      started();
      await paying;
    });
    await isPaying;
    expect((await net.gw.gateway.market.sweep()).collections).toBe(0);
    const state = () => other.query("SELECT state FROM market_collections WHERE id = $1", [id]);
    expect(await state()).toEqual([{ state: "paying" }]);
    // Its payer is gone without an answer: now the sweeper asks the mint and settles it.
    release();
    await inFlight;
    await leases.close();
    expect((await net.gw.gateway.market.sweep()).collections).toBe(1);
    expect(await state()).toEqual([{ state: "failed" }]);
    await expectBooksBalance(net);
  });

  it("runs the deadline sweeper in one process at a time", async () => {
    const c = await quotedTask();
    await other.query("UPDATE market_tasks SET deadline_at = $1 WHERE id = $2", [Date.now() - HOUR, c.task]);
    const { market } = net.gw.gateway;
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let running!: () => void;
    const isRunning = new Promise<void>((r) => (running = r));
    const theirs = other.exclusively("market-sweep", async () => {
      running();
      await held;
    });
    await isRunning;
    expect(await market.sweep()).toEqual({ expired: 0, released: 0, settled: 0, collections: 0 });
    expect((await net.api(`/v1/market/tasks/${c.task}`)).body.state).toBe("quoted");
    release();
    await theirs;
    expect((await market.sweep()).expired).toBe(1);
    expect((await net.api(`/v1/market/tasks/${c.task}`)).body.state).toBe("expired");
  });
});
