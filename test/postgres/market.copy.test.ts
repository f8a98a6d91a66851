/**
 * `migrate-sqlite`, the market's part: a market filled through the SQLite store reads the same
 * through the PostgreSQL store after the copy (ids, states, deliveries byte for byte, message ids),
 * keeps working there (new message ids follow the copied ones, transitions apply), and a second
 * copy onto the filled target is refused without writing anything.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  copyMarketFromSqlite,
  type MarketStore,
  PgMarketStore,
  SqliteMarketStore,
} from "../../gateway/market/index.js";
import { PgDatabase } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";

const T0 = Date.UTC(2026, 11, 6, 1, 0, 0);
const HOUR = 3_600_000;

/** Everything a store can tell about one account's market, in a comparable form. */
async function snapshot(store: MarketStore, taskIds: string[]) {
  const tasks = await Promise.all(taskIds.map((id) => store.mustTask(id)));
  const quotes = (await Promise.all(taskIds.map((id) => store.quotesOf(id)))).flat();
  const messages = (await Promise.all(quotes.map((q) => store.messages(q.id)))).flat();
  const deliveries = await Promise.all(taskIds.map((id) => store.delivery(id)));
  return {
    tasks,
    quotes,
    messages,
    deliveries: deliveries.map((d) => d && { ...d, content: d.content.toString("hex") }),
    collections: await store.collectionsOf("worker-1", 10),
    escrowed: await store.escrowedBy("buyer-1"),
  };
}

describe("copyMarketFromSqlite", () => {
  let db: { url: string; drop(): Promise<void> };
  let pg: PgDatabase;
  beforeAll(async () => {
    db = await testDatabase("marketcopy");
    pg = await PgDatabase.open(db.url, { max: 4 });
  });
  afterAll(async () => {
    await pg.close();
    await db.drop();
  });

  it("copies every row with its id and refuses to copy over a filled market", async () => {
    const dir = tempDir("owlrun-market-copy-");
    const sqlite = new SqliteMarketStore(join(dir, "market.sqlite"));
    const ids: string[] = [];
    const task = async (n: number) => {
      const t = await sqlite.createTask(
        {
          id: `task-${n}`,
          buyerId: "buyer-1",
          title: `t${n}`,
          description: "d",
          budgetSats: 100 * n,
          feeSats: 3,
          deadlineAt: T0 + 24 * HOUR,
        },
        T0 + n,
      );
      ids.push(t.id);
      return t.id;
    };
    const quote = (taskId: string, worker: string, price: number) =>
      sqlite.addQuote(
        taskId,
        { id: `q-${taskId}-${worker}`, workerId: worker, priceSats: price, description: "q", feeSats: 1 },
        T0 + 100,
      );
    await task(1); // open
    const quoted = await task(2);
    await quote(quoted, "worker-1", 50);
    const locked = await task(3);
    const q3 = await quote(locked, "worker-1", 70);
    await quote(locked, "worker-2", 90);
    await sqlite.beginAccept(locked, q3.id, "buyer-1", T0 + 200);
    await sqlite.finishAccept(locked, T0 + 201);
    const m1 = await sqlite.addMessage(q3.id, "buyer-1", "hello", T0 + 150);
    await sqlite.addMessage(q3.id, "worker-1", "hi", T0 + 151);
    const done = await task(4);
    const q4 = await quote(done, "worker-1", 40);
    await sqlite.beginAccept(done, q4.id, "buyer-1", T0 + 200);
    await sqlite.finishAccept(done, T0 + 201);
    const file = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 256));
    await sqlite.deliver(
      done,
      "worker-1",
      { filename: "f.bin", content: file, sha256: "h", notes: null },
      HOUR,
      T0 + 300,
    );
    await sqlite.transition(done, "confirm", { account: "buyer-1" }, T0 + 400);
    await sqlite.markSettled(done, T0 + 401);
    await sqlite.addCollection({
      id: "col-1",
      account_id: "worker-1",
      mint: "http://mint",
      invoice: "lnbc",
      quote: "mq",
      amount: 30,
      fee_reserve: 2,
      created_at: T0 + 500,
    });
    await sqlite.finishCollection("col-1", "paid", { fee: 1, preimage: "00" });
    const before = await snapshot(sqlite, ids);
    await sqlite.close();

    expect(await copyMarketFromSqlite(dir, pg)).toEqual({
      tasks: 4,
      quotes: 4,
      messages: 2,
      deliveries: 1,
      collections: 1,
    });
    const store = await PgMarketStore.open(pg);
    expect(await snapshot(store, ids)).toEqual(before);
    expect(before.escrowed).toBe(70);

    // The copied market keeps working: message ids continue past the copied ones, rules still hold.
    const next = await store.addMessage(q3.id, "worker-1", "after the move", T0 + 600);
    expect(next.id).toBeGreaterThan(m1.id + 1);
    await expect(
      store.addQuote(
        quoted,
        { id: "dup", workerId: "worker-1", priceSats: 1, description: "", feeSats: 1 },
        T0 + 700,
      ),
    ).rejects.toThrow(/already quoted/);
    expect(
      await store.deliver(
        locked,
        "worker-1",
        { filename: "x", content: Buffer.from("x"), sha256: "h", notes: null },
        HOUR,
        T0 + 700,
      ),
    ).toMatchObject({ state: "delivered" });

    await expect(copyMarketFromSqlite(dir, pg)).rejects.toThrow(/not empty/);
    expect((await pg.query<{ n: number }>("SELECT COUNT(*) AS n FROM market_tasks"))[0]!.n).toBe(4);
  });

  it("copies nothing from a data dir whose market never opened", async () => {
    expect(await copyMarketFromSqlite(tempDir("owlrun-market-copy-empty-"), pg)).toEqual({
      tasks: 0,
      quotes: 0,
      messages: 0,
      deliveries: 0,
      collections: 0,
    });
  });
});
