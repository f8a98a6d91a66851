/**
 * What a heartbeat reads from the ledger costs the same at any size: a provider's earnings come
 * from daily and lifetime running totals written with each settlement, which equal a full
 * recomputation from every entry after any history; and no statement on a request or heartbeat
 * path reads a whole table of the books.
 */
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Accounts, DAY_MS, LedgerStore } from "../../gateway/ledger/index.js";
import { tempDir } from "../support/cli-process.js";
import { scansOfTables } from "../support/query-plan.js";

const MINT = "http://127.0.0.1:3338";
const NODES = ["n1", "n2", "n3"].map(Accounts.provider);
const T0 = Date.UTC(2026, 0, 1);

let store: LedgerStore | undefined;
afterEach(() => {
  store?.close();
  vi.useRealTimers();
});

/** A funded X-Cashu hold settled to `node` (or released, or a free job from promo). */
function job(s: LedgerStore, id: string, node: string, msat: number, how: "paid" | "free" | "released") {
  s.openFundedHold(id, `xcashu:B:${MINT}`, msat, "xcashu", [
    { from: Accounts.ecash(MINT), to: Accounts.hold(id), msat },
  ]);
  const hold = Accounts.hold(id);
  const postings =
    how === "paid"
      ? [
          { from: hold, to: node, msat: Math.ceil(msat * 0.9) },
          { from: hold, to: Accounts.fees, msat: msat - Math.ceil(msat * 0.9) },
        ]
      : how === "free"
        ? [{ from: Accounts.promo, to: node, msat: 1000 }]
        : [];
  s.settleHold(id, postings, Accounts.change(id));
}

describe("ledger at scale", () => {
  it("earnings from running totals equal a full recomputation on a random history", () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            day: fc.integer({ min: 0, max: 5 }),
            ms: fc.integer({ min: 0, max: DAY_MS - 1 }),
            node: fc.integer({ min: 0, max: 2 }),
            msat: fc.integer({ min: 1000, max: 50_000 }),
            how: fc.constantFrom("paid" as const, "free" as const, "released" as const),
            other: fc.boolean(),
          }),
          { maxLength: 30 },
        ),
        (history) => {
          store?.close();
          store = new LedgerStore(join(tempDir(), "ledger.sqlite"));
          history.forEach((h, i) => {
            vi.setSystemTime(T0 + h.day * DAY_MS + h.ms);
            job(store!, `h${i}`, NODES[h.node]!, h.msat, h.how);
            // Credits to a provider that are not earnings (a refund back from a payout) stay out.
            if (h.other)
              store!.transfer("payout_failed", `p${i}`, [
                { from: Accounts.fees, to: NODES[h.node]!, msat: 7 },
              ]);
          });
          for (const node of NODES) {
            expect(store.earned(node)).toBe(store.credited(node));
            for (let d = 0; d <= 6; d++) {
              const since = T0 + d * DAY_MS;
              expect(store.earned(node, since)).toBe(store.credited(node, since));
            }
            // A start that is not a day boundary is recomputed, not approximated.
            expect(store.earned(node, T0 + 1234)).toBe(store.credited(node, T0 + 1234));
          }
        },
      ),
      { numRuns: 50 },
    );
  });

  it("an older file's totals are rebuilt once from its entries", () => {
    const path = join(tempDir(), "ledger.sqlite");
    store = new LedgerStore(path);
    job(store, "a", NODES[0]!, 10_000, "paid");
    job(store, "b", NODES[0]!, 4_000, "free");
    store.db.exec("DELETE FROM earnings_daily; DELETE FROM earnings_total; PRAGMA user_version = 0");
    store.close();
    store = new LedgerStore(path);
    expect(store.earned(NODES[0]!)).toBe(9000 + 1000);
    expect(store.earned(NODES[0]!, Math.floor(Date.now() / DAY_MS) * DAY_MS)).toBe(10_000);
  });

  it("no statement on a request or heartbeat path reads a whole table of the books", () => {
    store = new LedgerStore(join(tempDir(), "ledger.sqlite"));
    for (let i = 0; i < 50; i++) job(store, `j${i}`, NODES[i % 3]!, 5000, i % 7 === 0 ? "released" : "paid");
    store.transfer("deposit", "d1", [{ from: Accounts.ecash(MINT), to: Accounts.user("u"), msat: 100_000 }]);
    store.db.exec("ANALYZE");
    // Account requests, X-Cashu requests, market fees, withdrawals and a heartbeat's earnings.
    store.hold("k1", Accounts.user("u"), 5000, "account");
    store.settleHold("k1", [{ from: Accounts.hold("k1"), to: NODES[0]!, msat: 4000 }], Accounts.user("u"));
    store.withdrawAsChange("w1", Accounts.user("u"), `xcashu:B:${MINT}`, 1000, Accounts.user("u"));
    store.moveAll("escrow_settle", "t1", Accounts.escrow("t1"), Accounts.user("u"));
    store.getHold("k1");
    store.balance(NODES[0]!);
    store.earned(NODES[0]!);
    store.earned(NODES[0]!, Math.floor(Date.now() / DAY_MS) * DAY_MS);
    const hot = store.preparedStatements().filter((s) => !s.includes("FROM ledger_entries e JOIN")); // credited(): the reference
    expect(hot.length).toBeGreaterThan(8);
    expect(
      scansOfTables(store.db, hot, ["ledger_entries", "ledger_tx", "holds", "balances", "earnings_daily"]),
    ).toEqual({});
  });
});
