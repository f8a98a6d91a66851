/**
 * `migrate-sqlite` for the pool and the one-shot credentials: a SQLite gateway's rows, filled
 * through its stores, read back through the PostgreSQL stores with ids, states and counters kept;
 * a second copy adds nothing, and a database holding another wallet's seed is refused.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { currentOp, loadOrCreateSeed, type StoredProof } from "../../src/shared/ecash/index.js";
import { PgDatabase } from "../../src/shared/index.js";
import { copyOneShotFromSqlite, copyPoolFromSqlite } from "../../gateway/payments/copy-sqlite.js";
import { OneShotStore } from "../../gateway/payments/oneshot.js";
import { PgOneShotStore } from "../../gateway/payments/oneshot-pg.js";
import { PgGatewayPool } from "../../gateway/payments/pool-pg.js";
import { GatewayEcashStore } from "../../gateway/payments/wallet.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";

const MINT = "http://127.0.0.1:1/mint";
let n = 0;
const proof = (amount: number): StoredProof => ({
  secret: `copy${n++}`,
  mint: MINT,
  keyset_id: "00aa",
  amount,
  c: "02cd",
  dleq: amount === 1 ? '{"e":"a","s":"b"}' : null,
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function database(): Promise<PgDatabase> {
  const d = await testDatabase("copy");
  const db = await PgDatabase.open(d.url, { max: 4 });
  cleanups.push(async () => {
    await db.close();
    await d.drop();
  });
  return db;
}

describe("copying a SQLite gateway's pool and one-shot credentials into PostgreSQL", () => {
  it("keeps every proof, counter, open range, change token and the seed", async () => {
    const dataDir = tempDir();
    const walletDir = join(dataDir, "wallet");
    mkdirSync(walletDir, { recursive: true });
    const seed = loadOrCreateSeed(walletDir);
    const sqlite = new GatewayEcashStore(join(walletDir, "wallet.sqlite"));
    sqlite.addProofs([proof(8), proof(4), proof(2), proof(1), proof(1)]);
    sqlite.reserveProofs(MINT, 4, "in-flight"); // a crash left it reserved
    sqlite.spendExact(MINT, 3, () => "change-token", "change-id");
    const counters = sqlite.counterSource(MINT);
    await currentOp.run("open-range", () => counters.reserve("00aa", 5));
    await currentOp.run("done-range", () => counters.reserve("00aa", 2));
    sqlite.resolveOp("done-range");
    sqlite.getChange("change-id"); // fetched: its time is kept
    sqlite.addProofs([proof(16)], "claim:xcashu:B:hold-1"); // claimed, its hold not funded yet
    const before = {
      balance: sqlite.balance(MINT),
      byMint: sqlite.balancesByMint(),
      denominations: sqlite.denominations(MINT),
      reserved: sqlite.reservedProofs().map((p) => [p.secret, p.op]),
    };
    sqlite.close();

    const db = await database();
    expect(await copyPoolFromSqlite(dataDir, db)).toEqual({
      seed: 1,
      proofs: 6,
      counters: 1,
      reservations: 1,
      change: 1,
      claims: 1,
    });
    const pool = await PgGatewayPool.open(db);
    cleanups.push(async () => pool.close());
    expect(await pool.seed()).toEqual(seed);
    expect(await pool.balance(MINT)).toBe(before.balance);
    expect(await pool.balancesByMint()).toEqual(before.byMint);
    expect(await pool.denominations(MINT)).toEqual(before.denominations);
    expect((await pool.reservedProofs()).map((p) => [p.secret, p.op])).toEqual(before.reserved);
    expect(await pool.hasProof("copy0")).toBe(true);
    expect((await pool.reserveProofs(MINT, 1, "x"))![0]).toMatchObject({ dleq: '{"e":"a","s":"b"}' });
    expect(await pool.findChange("change-id")).toEqual({ token: "change-token" });
    expect(await pool.unfundedClaims()).toEqual([{ op: "claim:xcashu:B:hold-1", mint: MINT, sat: 16 }]);
    expect((await pool.unresolvedReservations()).map((r) => [r.op, r.start, r.count])).toEqual([
      ["open-range", 0, 5],
    ]);
    // The counter continues where SQLite stopped; new ranges get new ids.
    const next = await currentOp.run("new", () => pool.counterSource(MINT).reserve("00aa", 1));
    expect(next.start).toBe(7);
    const [copied] = await pool.reservationsOf("open-range");
    const [fresh] = await pool.reservationsOf("new");
    expect(fresh!.id).toBeGreaterThan(copied!.id);
    // Idempotent: a second run copies nothing and moves no counter back.
    expect(await copyPoolFromSqlite(dataDir, db)).toEqual({
      seed: 0,
      proofs: 0,
      counters: 0,
      reservations: 0,
      change: 0,
      claims: 0,
    });
    expect(await pool.balance(MINT)).toBe(before.balance);
    expect((await pool.counterSource(MINT).reserve("00aa", 0)).start).toBe(8);
    // Fetched change keeps its fetch time: retention forgets it (and the spent proofs) as SQLite would.
    expect(await pool.compact(Date.now() + 60_000)).toBe(2 + 1);
    expect(await pool.findChange("change-id")).toBeUndefined();
  });

  it("refuses a database that holds another wallet's seed", async () => {
    const db = await database();
    const pool = await PgGatewayPool.open(db);
    cleanups.push(async () => pool.close());
    await pool.seed(); // another gateway started on this database first
    const dataDir = tempDir();
    mkdirSync(join(dataDir, "wallet"), { recursive: true });
    writeFileSync(join(dataDir, "wallet", "wallet-seed"), `${"ab".repeat(64)}\n`);
    const sqlite = new GatewayEcashStore(join(dataDir, "wallet", "wallet.sqlite"));
    sqlite.addProofs([proof(2)]);
    sqlite.close();
    await expect(copyPoolFromSqlite(dataDir, db)).rejects.toThrow(/another gateway wallet's seed/);
    expect(await pool.balance()).toBe(0); // nothing copied
  });

  it("copies one-shot credentials and top-up claims with their states", async () => {
    const dataDir = tempDir();
    const sqlite = new OneShotStore(join(dataDir, "payments.sqlite"));
    sqlite.add({
      id: "l402:p",
      kind: "l402",
      amount_sat: 21,
      route: "/v1/chat",
      state: "pending",
      mint: MINT,
      quote: "q",
    });
    sqlite.add({
      id: "bsv:t",
      kind: "bsv",
      amount_sat: 50,
      route: null,
      state: "paid",
      mint: null,
      quote: null,
    });
    sqlite.move("bsv:t", "paid", "in_use");
    sqlite.addTopupClaim({
      payment_hash: "aa".repeat(32),
      quote: "q2",
      mint: MINT,
      amount_sat: 500,
      account_id: null,
      claim_hash: null,
    });
    sqlite.markClaimed("aa".repeat(32), "acct");
    sqlite.addTopupClaim({
      payment_hash: "bb".repeat(32),
      quote: "q3",
      mint: MINT,
      amount_sat: 9,
      account_id: "k",
      claim_hash: null,
    });
    const rows = ["l402:p", "bsv:t"].map((id) => sqlite.get(id)!);
    sqlite.close();

    const db = await database();
    expect(await copyOneShotFromSqlite(dataDir, db)).toEqual({ credentials: 2, topupClaims: 2 });
    expect(await copyOneShotFromSqlite(dataDir, db)).toEqual({ credentials: 0, topupClaims: 0 });
    const store = await PgOneShotStore.open(db);
    for (const row of rows) {
      const { updated_at: _u, ...kept } = row as typeof row & { updated_at: number };
      expect(await store.get(row.id)).toEqual(kept);
    }
    expect(await store.move("bsv:t", "in_use", "spent")).toBe(true);
    expect(await store.claimedTopups()).toMatchObject([
      { payment_hash: "aa".repeat(32), account_id: "acct" },
    ]);
    expect(await store.topupClaim("bb".repeat(32))).toMatchObject({ state: "pending", account_id: "k" });
  });

  it("copies nothing from a data dir without those files", async () => {
    const db = await database();
    expect(await copyPoolFromSqlite(tempDir(), db)).toEqual({
      seed: 0,
      proofs: 0,
      counters: 0,
      reservations: 0,
      change: 0,
      claims: 0,
    });
    expect(await copyOneShotFromSqlite(tempDir(), db)).toEqual({ credentials: 0, topupClaims: 0 });
  });
});
