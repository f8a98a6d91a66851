/**
 * AccountStore contract: the same cases on SQLite and PostgreSQL, including two processes taking
 * free requests, promo budget and top-up credits at once (two connections / two pools, one state).
 */
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import {
  type AccountStore,
  FREE_REQUESTS_PER_DAY,
  freeRemaining,
  hashKey,
  SqliteAccountStore,
  utcDay,
} from "../../gateway/payments/accounts.js";
import { copyAccountsFromSqlite, PgAccountStore } from "../../gateway/payments/accounts-pg.js";
import { PgDatabase } from "../../src/shared/postgres.js";
import { testDatabase } from "../support/postgres.js";
import { tempDir } from "../support/cli-process.js";
import { backends, type TwoStores } from "./two-stores.js";
import { join } from "node:path";

const impls = backends<AccountStore>(
  (dir) => new SqliteAccountStore(join(dir, "accounts.sqlite")),
  (db) => PgAccountStore.open(db),
);

describe.each(impls)("AccountStore on $name", (impl) => {
  let s: TwoStores<AccountStore>;
  afterEach(async () => {
    await s?.close();
  });

  it("keys, sessions, children and caps", async () => {
    s = await impl.open();
    const { a } = s;
    const root = await a.register("root");
    expect(root.key).toMatch(/^rc_/);
    expect((await a.byKey(root.key))?.id).toBe(root.id);
    expect(await a.byKey("rc_unknown")).toBeUndefined();
    const child = await a.createChild(root.id, "agent", { perRequestSat: 50, perDaySat: 100 });
    const grandchild = await a.register("sub", child.id, { lifetimeSat: 70 });
    expect((await a.payer(grandchild.id)).id).toBe(root.id);
    expect((await a.children(root.id)).map((c) => c.id)).toEqual([child.id]);
    expect(await a.spendRoom(grandchild.id)).toEqual({ room: 50, reason: "per-request cap" });
    await a.recordSpend(grandchild.id, 40);
    // Spending counts on the key and every ancestor.
    expect(await a.spendRoom(grandchild.id)).toEqual({ room: 30, reason: "lifetime cap" });
    expect(await a.spendRoom(child.id)).toEqual({ room: 50, reason: "per-request cap" });
    await s.b.recordSpend(child.id, 30);
    expect(await a.spendRoom(child.id)).toEqual({ room: 30, reason: "daily cap" });
    const rootRow = (await a.byId(root.id))!;
    expect(rootRow).toMatchObject({ spent_day: utcDay(), spent_day_sat: 70, spent_lifetime_sat: 70 });
    expect(await a.spendRoom(root.id)).toEqual({ room: Number.POSITIVE_INFINITY, reason: undefined });
    await a.setCaps(child.id, { perDaySat: null });
    expect((await s.b.byId(child.id))?.cap_per_day_sat).toBeNull();

    const biz = await a.registerBusiness("acme", "partner");
    const bizRow = (await s.b.byKey(biz.key))!;
    expect(bizRow.tier).toBe("partner");
    expect(freeRemaining(bizRow)).toBe(0);
    expect(await a.takeFree(biz.id)).toBe(false);
    // Made as BSVAPI names them; prepaid (no credit) unless the operator gives a limit.
    expect(biz.key).toMatch(/^bsvapi_sk_acme_/);
    expect(bizRow.credit_limit_sat).toBe(0);
    const metered = await a.registerBusiness("Big Co!", "internal", 5_000);
    expect(metered.key).toMatch(/^bsvapi_sk_big_co_/);
    expect((await s.b.byKey(metered.key))?.credit_limit_sat).toBe(5_000);
    expect(await s.b.setCreditLimit(metered.id, 7_500)).toBe(true);
    expect((await a.byId(metered.id))?.credit_limit_sat).toBe(7_500);
    // Only a business key carries credit: an ordinary key, a child, a session or no key at all do not.
    expect(await a.setCreditLimit(root.id, 100)).toBe(false);
    expect(await a.setCreditLimit((await a.createSession()).id, 100)).toBe(false);
    expect(await a.setCreditLimit("nope", 100)).toBe(false);
    expect((await a.byId(root.id))?.credit_limit_sat).toBe(0);
    const anonymous = await a.registerBusiness(null, "external");
    expect(anonymous.key).toMatch(/^bsvapi_sk_[A-Za-z0-9_-]{32}$/);

    const session = await a.createSession();
    expect(session.key).toMatch(/^sk-/);
    expect((await a.byId(session.id))?.kind).toBe("session");
    expect(await a.takeFree(session.id)).toBe(false);
  });

  it("a cashu token maps to one session; a failed claim forgets it; the first token format stays", async () => {
    s = await impl.open();
    const token = "cashuBexampletoken";
    const first = await s.a.sessionForToken(token);
    expect(first.created).toBe(true);
    expect(await s.b.sessionForToken(token)).toEqual({ id: first.id, created: false });
    await s.a.forgetTokenSession(first.id);
    const again = await s.b.sessionForToken(token);
    expect(again.created).toBe(true);
    expect(await s.a.tokenFormat(again.id)).toBe("B");
    await s.a.noteTokenFormat(again.id, "A");
    await s.b.noteTokenFormat(again.id, "B");
    expect(await s.a.tokenFormat(again.id)).toBe("A");
    // A session that spent is never forgotten (its ledger account has history).
    await s.a.recordSpend(again.id, 1);
    await s.a.forgetTokenSession(again.id);
    expect(await s.b.byId(again.id)).toBeDefined();
  });

  it("racing sessionForToken from two processes creates one session", async () => {
    s = await impl.open();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? s.a : s.b).sessionForToken("cashuAsame")),
    );
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
  });

  it("free requests: 10 a day, given back when unused", async () => {
    s = await impl.open();
    const { id } = await s.a.register(null);
    expect(freeRemaining((await s.a.byId(id))!)).toBe(FREE_REQUESTS_PER_DAY);
    for (let i = 0; i < FREE_REQUESTS_PER_DAY; i++) expect(await s.a.takeFree(id)).toBe(true);
    expect(await s.b.takeFree(id)).toBe(false);
    expect(freeRemaining((await s.b.byId(id))!)).toBe(0);
    await s.b.returnFree(id);
    expect(freeRemaining((await s.a.byId(id))!)).toBe(1);
    expect(await s.a.takeFree(id)).toBe(true);
    expect(await s.a.takeFree(id)).toBe(false);
  });

  it("30 concurrent takeFree across two processes with 10 left: exactly 10 succeed", async () => {
    s = await impl.open();
    const { id } = await s.a.register(null);
    const got = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? s.a : s.b).takeFree(id)));
    expect(got.filter(Boolean)).toHaveLength(10);
    expect((await s.a.byId(id))?.free_used).toBe(10);
  });

  it("the promo budget never goes past its limit, even when two processes take at once", async () => {
    s = await impl.open();
    expect(await s.a.takePromo(1001, 1000)).toBe(false);
    expect(await s.a.takePromo(600, 1000)).toBe(true);
    expect(await s.b.takePromo(500, 1000)).toBe(false);
    await s.b.returnPromo(200, utcDay());
    expect(await s.b.takePromo(600, 1000)).toBe(true); // 400 + 600
    expect(await s.a.takePromo(1, 1000)).toBe(false);
    await s.a.returnPromo(5000, utcDay()); // never below zero
    const got = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 ? s.a : s.b).takePromo(70, 1000)),
    );
    expect(got.filter(Boolean)).toHaveLength(14); // 14 × 70 = 980
    expect(await s.a.takePromo(21, 1000)).toBe(false);
    expect(await s.b.takePromo(20, 1000)).toBe(true);
  });

  it("top-ups: pending by account and age, credited once", async () => {
    s = await impl.open();
    const { id } = await s.a.register(null);
    const other = await s.a.register(null);
    const t = { mint: "http://mint", amount: 500, request: "lnbc…", expiry: 123 };
    await s.a.addTopup({ ...t, quote: "q1", accountId: id });
    await s.b.addTopup({ ...t, quote: "q2", accountId: other.id, expiry: null });
    expect((await s.a.pendingTopups(id)).map((r) => r.quote)).toEqual(["q1"]);
    expect((await s.b.pendingTopups()).map((r) => r.quote).sort()).toEqual(["q1", "q2"]);
    expect(await s.b.pendingTopups(undefined, Date.now() + 60_000)).toEqual([]);
    expect(await s.b.topup("q1")).toMatchObject({
      quote: "q1",
      account_id: id,
      amount: 500,
      expiry: 123,
      state: "pending",
    });
    expect(await s.a.markTopupCredited("q1")).toBe(true);
    expect(await s.b.markTopupCredited("q1")).toBe(false);
    expect((await s.a.topup("q1"))?.state).toBe("credited");
    expect((await s.a.pendingTopups()).map((r) => r.quote)).toEqual(["q2"]);
    expect(await s.a.markTopupCredited("nope")).toBe(false);
  });

  it("20 racing markTopupCredited across two processes: one wins", async () => {
    s = await impl.open();
    const { id } = await s.a.register(null);
    await s.a.addTopup({ quote: "race", accountId: id, mint: "m", amount: 1, request: "r", expiry: null });
    const wins = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? s.a : s.b).markTopupCredited("race")),
    );
    expect(wins.filter(Boolean)).toHaveLength(1);
  });

  it("two processes recording spend at once both count", async () => {
    s = await impl.open();
    const root = await s.a.register(null);
    const child = await s.a.createChild(root.id, null, {});
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? s.a : s.b).recordSpend(child.id, 3)));
    expect(await s.b.byId(root.id)).toMatchObject({ spent_day_sat: 60, spent_lifetime_sat: 60 });
    expect(await s.b.byId(child.id)).toMatchObject({ spent_day_sat: 60, spent_lifetime_sat: 60 });
  });
});

describe("copyAccountsFromSqlite", () => {
  it("copies every row (ids, counters, caps, top-ups, formats) and a second run changes nothing", async () => {
    const dir = tempDir();
    const sqlite = new SqliteAccountStore(join(dir, "accounts.sqlite"));
    const root = await sqlite.register("root", null, { lifetimeSat: 900 });
    const child = await sqlite.createChild(root.id, "kid", { perDaySat: 40 });
    const biz = await sqlite.registerBusiness("acme", "internal", 12_345);
    await sqlite.recordSpend(child.id, 12);
    await sqlite.takeFree(root.id);
    await sqlite.takeFree(root.id);
    await sqlite.takePromo(77, 1000);
    const session = await sqlite.sessionForToken("cashuAcopied");
    await sqlite.noteTokenFormat(session.id, "A");
    await sqlite.addTopup({ quote: "q", accountId: root.id, mint: "m", amount: 5, request: "r", expiry: 9 });
    await sqlite.addTopup({
      quote: "done",
      accountId: root.id,
      mint: "m",
      amount: 6,
      request: "r",
      expiry: null,
    });
    await sqlite.markTopupCredited("done");
    sqlite.close();

    const db = await testDatabase("copyacct");
    const database = await PgDatabase.open(db.url);
    try {
      const counts = await copyAccountsFromSqlite(dir, database);
      expect(counts).toEqual({ accounts: 4, promo_days: 1, topups: 2, token_formats: 1 });
      expect(await copyAccountsFromSqlite(dir, database)).toEqual(counts);
      const pg = await PgAccountStore.open(database);
      const reopened = new SqliteAccountStore(join(dir, "accounts.sqlite"));
      for (const id of [root.id, child.id, biz.id, session.id])
        expect(await pg.byId(id)).toEqual(await reopened.byId(id));
      reopened.close();
      expect((await pg.byKey(root.key))?.id).toBe(root.id);
      expect((await pg.byKey(biz.key))?.credit_limit_sat).toBe(12_345);
      expect((await pg.payer(child.id)).id).toBe(root.id);
      expect(await pg.sessionForToken("cashuAcopied")).toEqual({ id: session.id, created: false });
      expect(await pg.tokenFormat(session.id)).toBe("A");
      expect(freeRemaining((await pg.byId(root.id))!)).toBe(FREE_REQUESTS_PER_DAY - 2);
      expect(await pg.takePromo(924, 1000)).toBe(false);
      expect(await pg.takePromo(923, 1000)).toBe(true);
      expect((await pg.pendingTopups()).map((t) => t.quote)).toEqual(["q"]);
      expect(await pg.markTopupCredited("done")).toBe(false);
      expect(await pg.spendRoom(child.id)).toEqual({ room: 28, reason: "daily cap" });
    } finally {
      await database.close();
      await db.drop();
    }
  });

  it("a data dir without accounts.sqlite copies nothing", async () => {
    const db = await testDatabase("copyacct");
    const database = await PgDatabase.open(db.url);
    try {
      expect(await copyAccountsFromSqlite(tempDir(), database)).toEqual({
        accounts: 0,
        promo_days: 0,
        topups: 0,
        token_formats: 0,
      });
    } finally {
      await database.close();
      await db.drop();
    }
  });
});

describe("accounts.sqlite from before metered business keys", () => {
  it("gets credit_limit_sat on open (its keys prepaid), and copies to PostgreSQL with limit 0", async () => {
    const dir = tempDir();
    const file = join(dir, "accounts.sqlite");
    // The schema as it was before business keys had a credit limit (tier already there).
    const old = new Database(file);
    old.exec(`CREATE TABLE accounts (
      id TEXT PRIMARY KEY, kind TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, name TEXT, parent_id TEXT,
      created_at INTEGER NOT NULL, free_day TEXT, free_used INTEGER NOT NULL DEFAULT 0,
      cap_per_request_sat INTEGER, cap_per_day_sat INTEGER, cap_lifetime_sat INTEGER,
      spent_day TEXT, spent_day_sat INTEGER NOT NULL DEFAULT 0, spent_lifetime_sat INTEGER NOT NULL DEFAULT 0,
      tier TEXT);
      CREATE TABLE promo_days (day TEXT PRIMARY KEY, sats INTEGER NOT NULL);
      CREATE TABLE topups (
        quote TEXT PRIMARY KEY, account_id TEXT NOT NULL, mint TEXT NOT NULL, amount INTEGER NOT NULL,
        request TEXT NOT NULL, expiry INTEGER, state TEXT NOT NULL, created_at INTEGER NOT NULL);
      CREATE TABLE token_formats (account_id TEXT PRIMARY KEY, format TEXT NOT NULL);`);
    old
      .prepare(
        "INSERT INTO accounts (id, kind, key_hash, name, created_at, tier) VALUES (?, 'rc', ?, 'acme', 1, 'partner')",
      )
      .run("old-biz", hashKey("rc_oldbusinesskey"));
    old.close();

    const db = await testDatabase("copyacct");
    const database = await PgDatabase.open(db.url);
    try {
      // Copied first, from the file as it was (no such column there): the key arrives prepaid.
      expect((await copyAccountsFromSqlite(dir, database)).accounts).toBe(1);
      const pg = await PgAccountStore.open(database);
      expect(await pg.byKey("rc_oldbusinesskey")).toMatchObject({
        id: "old-biz",
        tier: "partner",
        credit_limit_sat: 0,
      });
      // Opened by the gateway: the column is added, the old rc_ business key still works.
      const sqlite = new SqliteAccountStore(file);
      expect(await sqlite.byKey("rc_oldbusinesskey")).toMatchObject({ tier: "partner", credit_limit_sat: 0 });
      expect(await sqlite.setCreditLimit("old-biz", 300)).toBe(true);
      expect((await sqlite.byId("old-biz"))?.credit_limit_sat).toBe(300);
      sqlite.close();
    } finally {
      await database.close();
      await db.drop();
    }
  });
});
