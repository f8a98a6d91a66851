/**
 * The ledger's contract, run unchanged on both stores: SQLite (the embedded default, one file) and
 * PostgreSQL (several gateway processes on one database). "Two processes" are two `Ledger`s: two
 * connections to one SQLite file, or two `PgDatabase` pools on one database. Whatever the
 * interleaving: no hold overdraws, a (kind, ref) applies once, a hold ends once, a reserved id is
 * taken once, and the books sum to zero; earnings running totals equal a recomputation.
 */
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  Accounts,
  DAY_MS,
  HoldExistsError,
  InsufficientBalanceError,
  Ledger,
  LedgerStore,
  type LedgerStorage,
  PgLedgerStore,
  SqliteLedgerStorage,
} from "../../gateway/ledger/index.js";
import { PgDatabase } from "../../src/shared/postgres.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";

const MINT = "http://127.0.0.1:3338";
const alice = Accounts.user("alice");
const bob = Accounts.user("bob");

interface Books {
  /** two processes' views of the same books */
  a: Ledger;
  b: Ledger;
  /** the store under `a`, for what the facade does not expose (earnings recomputation) */
  storage: LedgerStorage;
  close(): Promise<void>;
}

const backends: [string, () => Promise<Books>][] = [
  [
    "sqlite",
    async () => {
      const dir = tempDir();
      const a = Ledger.open(dir);
      const b = Ledger.open(dir);
      const storage = new SqliteLedgerStorage(new LedgerStore(join(dir, "ledger.sqlite")));
      return {
        a,
        b,
        storage,
        async close() {
          await Promise.all([a.close(), b.close(), storage.close()]);
        },
      };
    },
  ],
  [
    "postgres",
    async () => {
      const db = await testDatabase("ledger");
      const pa = await PgDatabase.open(db.url, { max: 10 });
      const pb = await PgDatabase.open(db.url, { max: 10 });
      const a = Ledger.open("", pa);
      const b = Ledger.open("", pb);
      // Both "processes" migrate at once, as two gateways starting together would.
      await Promise.all([a.ready(), b.ready()]);
      return {
        a,
        b,
        storage: new PgLedgerStore(pa),
        async close() {
          await Promise.all([a.close(), b.close()]);
          await Promise.all([pa.close(), pb.close()]);
          await db.drop();
        },
      };
    },
  ],
];

/** Settles of outcomes of racing calls: how many resolved to each value, how many threw what. */
async function outcomes<T>(calls: Promise<T>[]) {
  const settled = await Promise.allSettled(calls);
  const values = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
  const errors = settled.flatMap((s) => (s.status === "rejected" ? [s.reason as unknown] : []));
  return { values, errors };
}

/** `metered`: user accounts allowed below zero (what they owe), each down to its own −limit. */
async function expectBooksClosed(
  l: Ledger,
  metered: Record<string, number> = {},
): Promise<Map<string, number>> {
  const audit = await l.audit();
  expect(audit.imbalanceMsat).toBe(0);
  for (const [account, msat] of audit.balances)
    if (!account.startsWith("asset:") && !account.startsWith("equity:"))
      expect(msat).toBeGreaterThanOrEqual(-(metered[account] ?? 0));
  return audit.balances;
}

describe.each(backends)("ledger contract on %s", (_name, openBooks) => {
  let books: Books;
  beforeEach(async () => {
    books = await openBooks();
  });
  afterEach(async () => {
    vi.useRealTimers();
    await books.close();
  });

  it("applies a transfer once per (kind, ref) and refuses an overdraft without changing anything", async () => {
    const { a, b } = books;
    expect(await a.deposit(alice, 50_000, MINT, "t1")).toBe(true);
    expect(await b.deposit(alice, 50_000, MINT, "t1")).toBe(false);
    await expect(b.withdraw(alice, 60_000, MINT, "w1")).rejects.toBeInstanceOf(InsufficientBalanceError);
    expect(await a.balance(alice)).toBe(50_000);
    // The refused withdrawal left no trace: its ref is still free.
    expect(await a.withdraw(alice, 20_000, MINT, "w1")).toBe(true);
    expect(await b.balance(alice)).toBe(30_000);
    expect(await b.balance(Accounts.ecash(MINT))).toBe(30_000);
    await expect(a.transfer("x", null, [{ from: alice, to: bob, msat: -1 }])).rejects.toThrow(
      /invalid amount/,
    );
    await expectBooksClosed(a);
  });

  it("holds (balance - held >= hold), settles once with the split, releases the rest", async () => {
    const { a, b } = books;
    await a.deposit(alice, 10_000, MINT, "t");
    await a.hold("h1", alice, 8_000, "chat", "job 1");
    await expect(b.hold("h2", alice, 3_000, "chat")).rejects.toBeInstanceOf(InsufficientBalanceError);
    expect(await b.getHold("h2")).toBeUndefined();
    await expect(b.hold("h1", alice, 1_000, "chat")).rejects.toBeInstanceOf(HoldExistsError);
    const job = { chargedMsat: 3_000, providerId: "node1", providerSharePct: 95 };
    expect(await b.settleJob("h1", job, alice, "done")).toBe(true);
    expect(await a.settleJob("h1", job, alice)).toBe(false);
    expect(await a.releaseHold("h1", alice)).toBe(false);
    expect(await a.balance(alice)).toBe(7_000);
    expect(await a.balance(Accounts.provider("node1"))).toBe(2_850);
    expect(await a.balance(Accounts.fees)).toBe(150);
    const hold = (await a.getHold("h1"))!;
    expect(hold).toMatchObject({
      id: "h1",
      account: alice,
      msat: 8_000,
      state: "settled",
      kind: "chat",
      memo: "done",
    });
    expect(await a.earned("node1")).toBe(2_850);
    await a.hold("h3", alice, 7_000, "chat");
    expect(await a.activeHolds()).toMatchObject([{ id: "h3", state: "active" }]);
    expect(await b.releaseHold("h3", alice)).toBe(true);
    expect((await a.getHold("h3"))!.state).toBe("released");
    expect(await a.balance(alice)).toBe(7_000);
    expect(await a.activeHolds()).toEqual([]);
    await expectBooksClosed(a);
  });

  it("X-Cashu: reserves an id once, funds it once, turns a late fund into change, frees a refused claim", async () => {
    const { a, b } = books;
    await a.reserveCashuHold("r1", MINT, "B", "m");
    await expect(b.reserveCashuHold("r1", MINT, "B")).rejects.toBeInstanceOf(HoldExistsError);
    expect(await a.holdFunded("r1")).toBe(false);
    expect(await b.fundCashuHold("r1", MINT, 20_000)).toBe("funded");
    expect(await a.fundCashuHold("r1", MINT, 20_000)).toBe("already");
    expect(await a.holdFunded("r1")).toBe(true);
    await a.settleJob(
      "r1",
      { chargedMsat: 2_000, providerId: "n", providerSharePct: 95 },
      Accounts.change("r1"),
    );
    expect(await a.balance(Accounts.change("r1"))).toBe(18_000);
    // A reservation the sweeper ended before its claim was known: the money is owed as change.
    await a.reserveCashuHold("r2", MINT, "A");
    expect(await a.releaseHold("r2", Accounts.ecash(MINT))).toBe(true);
    expect(await b.fundCashuHold("r2", MINT, 5_000)).toBe("change");
    expect(await a.balance(Accounts.change("r2"))).toBe(5_000);
    // A refused claim frees the id; a funded one is never dropped.
    await a.reserveCashuHold("r3", MINT, "B");
    await b.dropReservation("r3");
    expect(await a.getHold("r3")).toBeUndefined();
    await a.reserveCashuHold("r3", MINT, "B");
    await a.dropReservation("r1");
    expect(await a.getHold("r1")).toBeDefined();
    expect((await a.settledCashuHolds()).map((h) => h.id).sort()).toEqual(["r1", "r2"]);
    await a.holdClaimedEcash("x", MINT, 4_000, "A");
    expect(await a.balance(Accounts.hold("x"))).toBe(4_000);
    expect(await a.balance(Accounts.ecash(MINT))).toBe(29_000);
    await expectBooksClosed(a);
  });

  it("free jobs, withdrawals as change, escrow, payouts and statements", async () => {
    const { a, b } = books;
    await a.hold("f", alice, 0, "free");
    await a.settleJob("f", { chargedMsat: 2_000, providerId: "n", providerSharePct: 95, free: true }, alice);
    expect(await a.balance(Accounts.promo)).toBe(-1_000);
    await a.deposit(alice, 30_000, MINT, "d");
    await expect(a.withdrawAsChange("w", alice, 40_000, MINT)).rejects.toBeInstanceOf(
      InsufficientBalanceError,
    );
    await a.withdrawAsChange("w", alice, 10_000, MINT);
    expect(await b.getHold("w")).toMatchObject({ state: "settled", kind: "withdraw", memo: alice });
    expect(await b.balance(Accounts.change("w"))).toBe(10_000);
    expect(await a.lockEscrow("task", alice, 15_000)).toBe(true);
    expect(await b.lockEscrow("task", alice, 15_000)).toBe(false);
    expect(await b.settleEscrow("task", bob)).toBe(true);
    expect(await a.settleEscrow("task", alice)).toBe(false);
    expect(await a.balance(bob)).toBe(15_000);
    expect(await a.reservePayout(bob, "p1", 10_000)).toBe(true);
    expect(await b.completePayout(bob, "p1", MINT, 8_000, 500)).toBe(true);
    expect(await a.completePayout(bob, "p1", MINT, 8_000, 500)).toBe(false);
    expect(await a.balance(bob)).toBe(6_500);
    expect(await a.reservePayout(bob, "p2", 6_000)).toBe(true);
    expect(await b.failPayout(bob, "p2")).toBe(true);
    expect(await a.failPayout(bob, "p2")).toBe(false);
    expect(await a.balance(bob)).toBe(6_500);
    const lines = await b.entries(bob, 0, Date.now() + 1);
    expect(lines.map((l) => [l.kind, l.msat])).toEqual([
      ["escrow_settle", 15_000],
      ["payout_reserve", -10_000],
      ["payout_done", 1_500],
      ["payout_reserve", -6_000],
      ["payout_failed", 6_000],
    ]);
    const mintLines = await a.entries(Accounts.ecash(MINT), 0, Date.now() + 1);
    expect(mintLines.map((l) => l.msat)).toEqual([30_000, -8_500]);
    // Emptied per-request rows (escrow, payouts, the free hold) go; no balance changes.
    const before = await a.audit();
    expect(await a.compact()).toBeGreaterThanOrEqual(3);
    expect((await b.audit()).balances).toEqual(before.balances);
    await expectBooksClosed(a);
  });

  it("50 holds racing on one account from two processes: exactly as many as the balance covers", async () => {
    const { a, b } = books;
    await a.deposit(alice, 30_500, MINT, "t");
    const { values, errors } = await outcomes(
      Array.from({ length: 50 }, (_, i) => (i % 2 ? a : b).hold(`h${i}`, alice, 1_000, "chat")),
    );
    expect(values).toHaveLength(30);
    expect(errors).toHaveLength(20);
    for (const e of errors) expect(e).toBeInstanceOf(InsufficientBalanceError);
    expect(await a.balance(alice)).toBe(500);
    expect(await a.activeHolds()).toHaveLength(30);
    await expectBooksClosed(b);
  });

  it("a metered account holds on credit down to −limit and no further; paying in reduces what it owes", async () => {
    const { a, b } = books;
    await a.deposit(alice, 2_000, MINT, "t");
    // 2 000 of balance + 5 000 of credit: 7 000 may be held, not 7 001.
    await expect(a.hold("over", alice, 7_001, "chat", undefined, 5_000)).rejects.toBeInstanceOf(
      InsufficientBalanceError,
    );
    expect(await a.getHold("over")).toBeUndefined();
    await b.hold("h1", alice, 6_000, "chat", undefined, 5_000);
    expect(await a.balance(alice)).toBe(-4_000);
    await expect(a.hold("h2", alice, 1_001, "chat", undefined, 5_000)).rejects.toBeInstanceOf(
      InsufficientBalanceError,
    );
    // Without credit (a prepaid key) nothing more is held from a negative account, not even 1 msat.
    await expect(a.hold("h3", alice, 1, "chat")).rejects.toBeInstanceOf(InsufficientBalanceError);
    // Credit is for holds only: transfers and withdrawals never draw on it.
    await expect(a.withdraw(alice, 1, MINT, "w")).rejects.toBeInstanceOf(InsufficientBalanceError);
    await a.settleJob("h1", { chargedMsat: 3_000, providerId: "n1", providerSharePct: 90 }, alice);
    expect(await b.balance(alice)).toBe(-1_000);
    // A top-up pays the debt first (it is the same account): 1 500 in → 500 over zero.
    await b.deposit(alice, 1_500, MINT, "t2");
    expect(await a.balance(alice)).toBe(500);
    await expectBooksClosed(a);
  });

  it("50 metered holds racing from two processes never take the account below −limit", async () => {
    const { a, b } = books;
    await a.deposit(alice, 2_500, MINT, "t");
    const limit = 28_000; // 2 500 + 28 000 covers 30 holds of 1 000 (and 500 over)
    const { values, errors } = await outcomes(
      Array.from({ length: 50 }, (_, i) =>
        (i % 2 ? a : b).hold(`m${i}`, alice, 1_000, "chat", undefined, limit),
      ),
    );
    expect(values).toHaveLength(30);
    expect(errors).toHaveLength(20);
    for (const e of errors) expect(e).toBeInstanceOf(InsufficientBalanceError);
    expect(await a.balance(alice)).toBe(-27_500);
    expect(await b.activeHolds()).toHaveLength(30);
    await expectBooksClosed(b, { [alice]: limit });
  });

  it("metered holds racing on an account with no history yet (no balance row to lock) stop at −limit", async () => {
    const { a, b } = books;
    const { values, errors } = await outcomes(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b).hold(`f${i}`, bob, 1_000, "chat", undefined, 5_500),
      ),
    );
    expect(values).toHaveLength(5);
    expect(errors).toHaveLength(15);
    for (const e of errors) expect(e).toBeInstanceOf(InsufficientBalanceError);
    expect(await a.balance(bob)).toBe(-5_000);
    await expectBooksClosed(b, { [bob]: 5_500 });
  });

  it("20 racing settles and releases of one hold: one wins, the provider is paid once", async () => {
    const { a, b } = books;
    await a.deposit(alice, 10_000, MINT, "t");
    await a.hold("h", alice, 10_000, "chat");
    const job = { chargedMsat: 4_000, providerId: "node", providerSharePct: 95 };
    const { values, errors } = await outcomes(
      Array.from({ length: 20 }, (_, i) =>
        i % 4 === 3 ? (i % 2 ? a : b).releaseHold("h", alice) : (i % 2 ? a : b).settleJob("h", job, alice),
      ),
    );
    expect(errors).toEqual([]);
    expect(values.filter(Boolean)).toHaveLength(1);
    const paid = await a.balance(Accounts.provider("node"));
    expect([0, 3_800]).toContain(paid);
    expect(await a.balance(alice)).toBe(paid ? 6_000 : 10_000);
    expect(await a.earned("node")).toBe(paid);
    await expectBooksClosed(a);
  });

  it("racing reservations, funds, transfers and escrow locks of one id: each happens once", async () => {
    const { a, b } = books;
    const both = (i: number) => (i % 2 ? a : b);
    const reserved = await outcomes(
      Array.from({ length: 20 }, (_, i) => both(i).reserveCashuHold("r", MINT, "B")),
    );
    expect(reserved.values).toHaveLength(1);
    for (const e of reserved.errors) expect(e).toBeInstanceOf(HoldExistsError);
    const funded = await outcomes(
      Array.from({ length: 20 }, (_, i) => both(i).fundCashuHold("r", MINT, 7_000)),
    );
    expect(funded.values.filter((v) => v === "funded")).toHaveLength(1);
    expect(funded.values.filter((v) => v === "already")).toHaveLength(19);
    const deposits = await outcomes(
      Array.from({ length: 20 }, (_, i) => both(i).deposit(alice, 9_000, MINT, "once")),
    );
    expect(deposits.values.filter(Boolean)).toHaveLength(1);
    const locks = await outcomes(
      Array.from({ length: 20 }, (_, i) => both(i).lockEscrow("task", alice, 9_000)),
    );
    expect(locks.values.filter(Boolean)).toHaveLength(1);
    const ends = await outcomes(
      Array.from({ length: 20 }, (_, i) => both(i).settleEscrow("task", i % 3 ? bob : alice)),
    );
    expect(ends.values.filter(Boolean)).toHaveLength(1);
    expect((await a.balance(alice)) + (await a.balance(bob))).toBe(9_000);
    expect(await a.balance(Accounts.hold("r"))).toBe(7_000);
    expect(await a.balance(Accounts.ecash(MINT))).toBe(16_000);
    await expectBooksClosed(a);
  });

  it("a random concurrent workload from two processes keeps every account whole and the books at zero", async () => {
    const { a, b } = books;
    const users = ["u0", "u1", "u2"].map(Accounts.user);
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    let deposited = 0;
    for (const u of users) {
      await a.deposit(u, 40_000, MINT, `seed-${u}`);
      deposited += 40_000;
    }
    // Each worker: hold, then settle or release; workers on both processes at once.
    const worker = async (w: number) => {
      for (let i = 0; i < 15; i++) {
        const l = (w + i) % 2 ? a : b;
        const user = users[rand(users.length)]!;
        const id = `w${w}-${i}`;
        try {
          await l.hold(id, user, (rand(7) + 2) * 1000, "chat");
        } catch (err) {
          expect(err).toBeInstanceOf(InsufficientBalanceError);
          continue;
        }
        const other = (w + i) % 2 ? b : a;
        if (rand(3))
          await other.settleJob(
            id,
            { chargedMsat: 2_000, providerId: `p${rand(3)}`, providerSharePct: 95 },
            user,
          );
        else await other.releaseHold(id, user);
      }
    };
    await Promise.all([0, 1, 2, 3, 4, 5].map(worker));
    const balances = await expectBooksClosed(a);
    expect((await a.audit()).ecashMsat).toBe(deposited);
    expect(await a.activeHolds()).toEqual([]);
    let earned = 0;
    for (const p of ["p0", "p1", "p2"]) earned += await b.earned(p);
    let providers = 0;
    for (const [account, msat] of balances) if (account.startsWith("provider:")) providers += msat;
    expect(earned).toBe(providers);
  });

  it("earnings running totals equal a full recomputation from the entries on a random history", async () => {
    const { a, storage } = books;
    const T0 = Date.UTC(2026, 0, 1);
    vi.useFakeTimers({ toFake: ["Date"] });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            day: fc.integer({ min: 0, max: 5 }),
            ms: fc.integer({ min: 0, max: DAY_MS - 1 }),
            node: fc.integer({ min: 0, max: 2 }),
            msat: fc.integer({ min: 2_000, max: 50_000 }),
            how: fc.constantFrom("paid" as const, "free" as const, "released" as const),
            other: fc.boolean(),
          }),
          { maxLength: 20 },
        ),
        async (history) => {
          // Each run its own nodes, so one database serves every run.
          const r = run++;
          const nodes = [0, 1, 2].map((n) => `r${r}n${n}`);
          for (const [i, h] of history.entries()) {
            vi.setSystemTime(T0 + h.day * DAY_MS + h.ms);
            const id = `r${r}h${i}`;
            const node = nodes[h.node]!;
            await a.holdClaimedEcash(id, MINT, h.msat, "B");
            if (h.how === "released") await a.releaseHold(id, Accounts.change(id));
            else
              await a.settleJob(
                id,
                { chargedMsat: h.msat, providerId: node, providerSharePct: 95, free: h.how === "free" },
                Accounts.change(id),
              );
            // Credits to a provider that are not earnings (a payout coming back) stay out.
            if (h.other)
              await a.transfer("payout_failed", `${id}-p`, [
                { from: Accounts.fees, to: Accounts.provider(node), msat: 7 },
              ]);
          }
          for (const node of nodes.map(Accounts.provider)) {
            expect(await storage.earned(node)).toBe(await storage.credited(node));
            for (let d = 0; d <= 6; d++) {
              const since = T0 + d * DAY_MS;
              expect(await storage.earned(node, since)).toBe(await storage.credited(node, since));
            }
            expect(await storage.earned(node, T0 + 1234)).toBe(await storage.credited(node, T0 + 1234));
          }
        },
      ),
      { numRuns: 15 },
    );
    vi.useRealTimers();
    await expectBooksClosed(a);
  });
});
