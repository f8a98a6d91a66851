/**
 * `migrate-sqlite`, the ledger's part: books written through the SQLite ledger read the same
 * through the PostgreSQL one after the copy (balances, holds, statements, earnings), balance
 * before and after, and keep working (ids continue). A non-empty target or books that do not
 * balance are refused with nothing written.
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Accounts, copyLedgerFromSqlite, Ledger } from "../../gateway/ledger/index.js";
import { PgDatabase } from "../../src/shared/postgres.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";

const MINT = "http://127.0.0.1:3338";
const alice = Accounts.user("alice");
const bob = Accounts.user("bob");

/** A gateway's history in one SQLite ledger: every kind of move, with holds in every state. */
async function fillSqlite(dir: string): Promise<void> {
  const l = Ledger.open(dir);
  await l.deposit(alice, 100_000, MINT, "d1");
  await l.deposit(bob, 20_000, MINT, "d2");
  for (let i = 0; i < 12; i++) {
    await l.hold(`h${i}`, alice, 5_000, "chat", `job ${i}`);
    if (i % 3 === 0) await l.releaseHold(`h${i}`, alice);
    else if (i % 3 === 1)
      await l.settleJob(
        `h${i}`,
        { chargedMsat: 3_000, providerId: `n${i % 2}`, providerSharePct: 95 },
        alice,
      );
    // i % 3 === 2: left active, as a running job
  }
  await l.holdClaimedEcash("x1", MINT, 9_000, "B", "cashu job");
  await l.settleJob(
    "x1",
    { chargedMsat: 2_000, providerId: "n0", providerSharePct: 95 },
    Accounts.change("x1"),
  );
  await l.reserveCashuHold("x2", MINT, "A");
  await l.hold("free1", bob, 0, "free");
  await l.settleJob("free1", { chargedMsat: 2_000, providerId: "n1", providerSharePct: 95, free: true }, bob);
  await l.withdrawAsChange("wd1", bob, 4_000, MINT);
  await l.lockEscrow("task1", bob, 6_000);
  await l.settleEscrow("task1", alice);
  await l.reservePayout(Accounts.provider("n0"), "p1", 2_000);
  await l.completePayout(Accounts.provider("n0"), "p1", MINT, 1_500, 100);
  await l.compact();
  await l.close();
}

describe("copyLedgerFromSqlite", () => {
  let db: { url: string; drop(): Promise<void> };
  let pg: PgDatabase;
  beforeEach(async () => {
    db = await testDatabase("ledgercopy");
    pg = await PgDatabase.open(db.url, { max: 4 });
  });
  afterEach(async () => {
    await pg.close();
    await db.drop();
  });

  it("copies every row with ids kept; the books read the same and balance before and after", async () => {
    const dir = tempDir();
    await fillSqlite(dir);
    const sqlite = Ledger.open(dir);
    const before = await sqlite.audit();
    expect(before.imbalanceMsat).toBe(0);

    const report = await copyLedgerFromSqlite(dir, pg);
    const file = new Database(join(dir, "ledger.sqlite"), { readonly: true });
    const count = (t: string) => (file.prepare(`SELECT COUNT(*) AS n FROM ${t}`).get() as { n: number }).n;
    expect(report).toEqual({
      tx: count("ledger_tx"),
      entries: count("ledger_entries"),
      balances: count("balances"),
      holds: count("holds"),
      earningsDaily: count("earnings_daily"),
      earningsTotal: count("earnings_total"),
      imbalanceBeforeMsat: 0,
      imbalanceAfterMsat: 0,
    });
    expect(report.holds).toBe(16);
    file.close();

    const copied = Ledger.open("", pg);
    const after = await copied.audit();
    expect(after.balances).toEqual(before.balances);
    expect(after.imbalanceMsat).toBe(0);
    expect(after.ecashMsat).toBe(before.ecashMsat);
    for (const id of ["h0", "h1", "h2", "x1", "x2", "free1", "wd1"])
      expect(await copied.getHold(id)).toEqual(await sqlite.getHold(id));
    // Holds opened in the same millisecond may list in either order.
    const byId = (hs: { id: string }[]) => hs.sort((x, y) => x.id.localeCompare(y.id));
    expect(byId(await copied.activeHolds())).toEqual(byId(await sqlite.activeHolds()));
    expect(byId(await copied.settledCashuHolds())).toEqual(byId(await sqlite.settledCashuHolds()));
    for (const account of [alice, bob, Accounts.provider("n0"), Accounts.ecash(MINT), Accounts.fees])
      expect(await copied.entries(account, 0, Date.now() + 1)).toEqual(
        await sqlite.entries(account, 0, Date.now() + 1),
      );
    for (const node of ["n0", "n1"]) {
      expect(await copied.earned(node)).toBe(await sqlite.earned(node));
      expect(await copied.earned(node, Math.floor(Date.now() / 86_400_000) * 86_400_000)).toBe(
        await sqlite.earned(node, Math.floor(Date.now() / 86_400_000) * 86_400_000),
      );
    }

    // The copy keeps working: running holds end, reserved ids fund, new ids follow the old ones.
    expect(
      await copied.settleJob("h2", { chargedMsat: 2_000, providerId: "n1", providerSharePct: 95 }, alice),
    ).toBe(true);
    expect(await copied.fundCashuHold("x2", MINT, 3_000)).toBe("funded");
    expect(await copied.deposit(alice, 1_000, MINT, "d1")).toBe(false);
    expect(await copied.deposit(alice, 1_000, MINT, "d3")).toBe(true);
    const d3 = await pg.query<{ id: number }>(
      "SELECT id FROM ledger_tx WHERE kind = 'deposit' AND ref = 'd3'",
    );
    expect(d3[0]!.id).toBeGreaterThan(report.tx);
    const n = (await pg.query<{ n: number }>("SELECT COUNT(*) AS n FROM ledger_tx"))[0]!.n;
    expect((await copied.audit()).imbalanceMsat).toBe(0);
    await sqlite.close();

    // A second copy finds books in PostgreSQL and refuses, changing nothing.
    await expect(copyLedgerFromSqlite(dir, pg)).rejects.toThrow(/not empty/);
    expect((await pg.query<{ n: number }>("SELECT COUNT(*) AS n FROM ledger_tx"))[0]!.n).toBe(n);
  });

  it("refuses SQLite books that do not balance and writes nothing", async () => {
    const dir = tempDir();
    await fillSqlite(dir);
    const file = new Database(join(dir, "ledger.sqlite"));
    file.prepare("UPDATE balances SET msat = msat + 1 WHERE account = ?").run(alice);
    file.close();
    await expect(copyLedgerFromSqlite(dir, pg)).rejects.toThrow(/off by/);
    expect((await pg.query<{ n: number }>("SELECT COUNT(*) AS n FROM ledger_balances"))[0]!.n).toBe(0);
  });

  it("refuses a balance that its entries do not add up to, rolling the whole copy back", async () => {
    const dir = tempDir();
    await fillSqlite(dir);
    // Sums to zero, but two accounts no longer match their entries.
    const file = new Database(join(dir, "ledger.sqlite"));
    file.prepare("UPDATE balances SET msat = msat + 1000 WHERE account = ?").run(alice);
    file.prepare("UPDATE balances SET msat = msat - 1000 WHERE account = ?").run(bob);
    file.close();
    await expect(copyLedgerFromSqlite(dir, pg)).rejects.toThrow(/entries sum to/);
    expect((await pg.query<{ n: number }>("SELECT COUNT(*) AS n FROM ledger_tx"))[0]!.n).toBe(0);
  });

  it("copies nothing from a data dir without a ledger", async () => {
    const report = await copyLedgerFromSqlite(tempDir(), pg);
    expect(report.tx + report.entries + report.balances + report.holds).toBe(0);
  });
});
