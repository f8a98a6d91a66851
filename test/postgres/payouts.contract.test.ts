/**
 * Payout journal contract on SQLite and PostgreSQL, the one-process-at-a-time lease that starts
 * payouts (PostgreSQL: two pools, one runs, the other is told no), and the copy.
 */
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  copyPayoutsFromSqlite,
  type NewPayout,
  type PayoutStore,
  PgPayoutStore,
  SqlitePayoutStore,
} from "../../gateway/payments/payout-store.js";
import { PgDatabase } from "../../src/shared/postgres.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";
import { backends, type TwoStores } from "./two-stores.js";

const impls = backends<PayoutStore>(
  (dir) => new SqlitePayoutStore(join(dir, "payouts.sqlite")),
  (db) => PgPayoutStore.open(db),
);

const payout = (id: string, nodeId = "n1"): NewPayout => ({
  id,
  node_id: nodeId,
  address: "alice@example.com",
  mint: "http://mint",
  amount: 990,
  fee_reserve: 10,
  invoice: "lnbc…",
  quote: `quote-${id}`,
});

describe.each(impls)("PayoutStore on $name", (impl) => {
  let s: TwoStores<PayoutStore>;
  afterEach(async () => {
    await s?.close();
  });

  it("journals a payout, ends it, lists open ones and a node's history", async () => {
    s = await impl.open();
    await s.a.add(payout("p1"));
    await s.b.add(payout("p2", "n2"));
    expect(await s.b.get("p1")).toMatchObject({ state: "paying", amount: 990, fee: null, quote: "quote-p1" });
    expect((await s.a.open()).map((p) => p.id).sort()).toEqual(["p1", "p2"]);
    await s.b.update("p1", { state: "paid", fee: 3, preimage: "ab" });
    await s.a.update("p2", { state: "failed", error: "no route" });
    expect(await s.a.open()).toEqual([]);
    expect(await s.a.get("p1")).toMatchObject({ state: "paid", fee: 3, preimage: "ab", error: null });
    expect((await s.b.history("n2"))[0]).toMatchObject({ id: "p2", state: "failed", error: "no route" });
    expect(await s.b.history("n1", 0)).toEqual([]);
    expect(await s.a.get("nope")).toBeUndefined();
  });
});

it("on PostgreSQL a payout run is started by one process at a time", async () => {
  const db = await testDatabase("payouts");
  const one = await PgDatabase.open(db.url, { max: 2 });
  const two = await PgDatabase.open(db.url, { max: 2 });
  try {
    const [a, b] = await Promise.all([PgPayoutStore.open(one), PgPayoutStore.open(two)]);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const first = a.exclusively(async () => {
      await held;
      return "ran";
    });
    await new Promise((r) => setTimeout(r, 100));
    expect(await b.exclusively(async () => "also ran")).toBeUndefined();
    release();
    expect(await first).toBe("ran");
    expect(await b.exclusively(async () => "ran later")).toBe("ran later");
  } finally {
    await one.close();
    await two.close();
    await db.drop();
  }
});

it("copyPayoutsFromSqlite keeps every payout with its state; a second run changes nothing", async () => {
  const dir = tempDir();
  const sqlite = new SqlitePayoutStore(join(dir, "payouts.sqlite"));
  await sqlite.add(payout("p1"));
  await sqlite.add(payout("p2"));
  await sqlite.update("p1", { state: "paid", fee: 2, preimage: "cd" });
  const before = [await sqlite.get("p1"), await sqlite.get("p2")];
  sqlite.close();
  const db = await testDatabase("payouts");
  const database = await PgDatabase.open(db.url);
  try {
    expect(await copyPayoutsFromSqlite(dir, database)).toEqual({ payouts: 2 });
    expect(await copyPayoutsFromSqlite(dir, database)).toEqual({ payouts: 2 });
    const pg = await PgPayoutStore.open(database);
    expect([await pg.get("p1"), await pg.get("p2")]).toEqual(before);
    expect((await pg.open()).map((p) => p.id)).toEqual(["p2"]);
  } finally {
    await database.close();
    await db.drop();
  }
});
