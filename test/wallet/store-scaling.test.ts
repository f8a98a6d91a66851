/**
 * The wallet store answers its hot questions from indexes and running counts: the denomination
 * counts and balances kept by triggers equal a full recount of the proofs after any history, and
 * no statement a request runs reads the whole proofs or reservations table. Finished operations
 * leave no counter ranges behind.
 */
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { currentOp, EcashStore, type StoredProof } from "../../src/shared/ecash/index.js";
import { tempDir } from "../support/cli-process.js";
import { scansOfTables } from "../support/query-plan.js";

const MINTS = ["http://127.0.0.1:1/a", "http://127.0.0.1:1/b"];
let n = 0;
const proof = (mint: string, amount: number): StoredProof => ({
  secret: `s${n++}`,
  mint,
  keyset_id: "00aa",
  amount,
  c: "02",
  dleq: null,
});

/** What the counts must say, recounted from every proof. */
function recount(store: EcashStore) {
  const denominations = (mint: string) =>
    store.db
      .prepare(
        "SELECT amount, COUNT(*) AS n FROM proofs WHERE mint = ? AND state = 'available' GROUP BY amount ORDER BY amount DESC",
      )
      .all(mint);
  const balance = (mint?: string) =>
    (
      store.db
        .prepare(
          "SELECT COALESCE(SUM(amount), 0) AS v FROM proofs WHERE state != 'spent' AND (? IS NULL OR mint = ?)",
        )
        .get(mint ?? null, mint ?? null) as { v: number }
    ).v;
  const byMint = Object.fromEntries(
    (
      store.db
        .prepare("SELECT mint, SUM(amount) AS v FROM proofs WHERE state = 'available' GROUP BY mint")
        .all() as { mint: string; v: number }[]
    ).map((r) => [r.mint, r.v]),
  );
  return { denominations, balance, byMint };
}

function expectCountsMatch(store: EcashStore) {
  const ref = recount(store);
  for (const mint of MINTS) {
    expect(store.denominations(mint)).toEqual(ref.denominations(mint));
    expect(store.balance(mint)).toBe(ref.balance(mint));
  }
  expect(store.balance()).toBe(ref.balance());
  expect(store.balancesByMint()).toEqual(ref.byMint);
}

const action = fc.oneof(
  fc.record({
    t: fc.constant("add" as const),
    mint: fc.integer({ min: 0, max: 1 }),
    amounts: fc.array(fc.constantFrom(1, 2, 4, 8, 16, 32), { minLength: 1, maxLength: 6 }),
  }),
  fc.record({
    t: fc.constant("reserve" as const),
    mint: fc.integer({ min: 0, max: 1 }),
    amount: fc.integer({ min: 1, max: 60 }),
  }),
  fc.record({
    t: fc.constant("exact" as const),
    mint: fc.integer({ min: 0, max: 1 }),
    amount: fc.integer({ min: 1, max: 60 }),
  }),
  fc.record({ t: fc.constant("finish" as const), pick: fc.nat(), spent: fc.boolean() }),
  fc.record({ t: fc.constant("mark" as const), pick: fc.nat(), spent: fc.boolean() }),
  fc.record({
    t: fc.constant("swap" as const),
    pick: fc.nat(),
    keep: fc.array(fc.constantFrom(1, 2, 4), { maxLength: 3 }),
  }),
);

let store: EcashStore | undefined;
afterEach(() => store?.close());

describe("wallet store at scale", () => {
  it("denomination counts and balances equal a full recount after any history", () => {
    fc.assert(
      fc.property(fc.array(action, { maxLength: 40 }), (actions) => {
        store?.close();
        store = new EcashStore(join(tempDir(), "w.sqlite"));
        const ops: string[] = [];
        let k = 0;
        for (const a of actions) {
          if (a.t === "add") store.addProofs(a.amounts.map((x) => proof(MINTS[a.mint]!, x)));
          else if (a.t === "reserve") {
            const op = `op${k++}`;
            if (store.reserveProofs(MINTS[a.mint]!, a.amount, op)) ops.push(op);
          } else if (a.t === "exact") store.spendExact(MINTS[a.mint]!, a.amount, () => true);
          else if (a.t === "finish" && ops.length > 0) store.finishOp(ops[a.pick % ops.length]!, a.spent);
          else if (a.t === "swap" && ops.length > 0) {
            const op = ops[a.pick % ops.length]!;
            store.finishSwap(
              op,
              a.keep.map((x) => proof(MINTS[0]!, x)),
            );
          } else if (a.t === "mark") {
            const all = store.db.prepare("SELECT secret FROM proofs ORDER BY secret").all() as {
              secret: string;
            }[];
            if (all.length > 0)
              store.markProof(all[a.pick % all.length]!.secret, a.spent ? "spent" : "available");
          }
          expectCountsMatch(store);
        }
      }),
      { numRuns: 60 },
    );
  });

  it("an older file's counts are rebuilt once from its proofs", () => {
    const path = join(tempDir(), "w.sqlite");
    store = new EcashStore(path);
    store.addProofs([proof(MINTS[0]!, 4), proof(MINTS[0]!, 4), proof(MINTS[1]!, 1)]);
    // A file written before the counts existed: counts missing, version 0.
    store.db.exec("DELETE FROM proof_counts; PRAGMA user_version = 0");
    store.close();
    store = new EcashStore(path);
    expectCountsMatch(store);
    expect(store.denominations(MINTS[0]!)).toEqual([{ amount: 4, n: 2 }]);
  });

  it("finished operations leave no counter ranges; open ones are found by op", async () => {
    store = new EcashStore(join(tempDir(), "w.sqlite"));
    const counters = store.counterSource(MINTS[0]!);
    await currentOp.run("done", () => counters.reserve("00aa", 3));
    await currentOp.run("open", () => counters.reserve("00aa", 2));
    store.addProofs([proof(MINTS[0]!, 2)], "done");
    expect(store.unresolvedReservations().map((r) => r.op)).toEqual(["open"]);
    expect(store.reservationsOf("open")).toMatchObject([{ start: 3, count: 2 }]);
    expect(store.reservationsOf("done")).toEqual([]);
    const next = await counters.reserve("00aa", 1);
    expect(next.start).toBe(5); // the counter never goes back over a deleted range
  });

  it("no statement on a request path reads the whole proofs or reservations table", async () => {
    store = new EcashStore(join(tempDir(), "w.sqlite"));
    const mint = MINTS[0]!;
    store.addProofs(Array.from({ length: 200 }, (_, i) => proof(mint, 2 ** (i % 6))));
    store.db.exec("ANALYZE");
    // What receive, pay, payChange and a failed or lost swap run.
    const counters = store.counterSource(mint);
    await currentOp.run("r1", () => counters.reserve("00aa", 4));
    await counters.advanceToAtLeast("00aa", 10);
    store.denominations(mint);
    store.addProofs([proof(mint, 1)], "r1");
    store.spendExact(mint, 3, () => undefined);
    store.reserveProofs(mint, 5, "p1");
    store.finishSwap("p1", [proof(mint, 1)]);
    store.reserveProofs(mint, 7, "p2");
    store.finishOp("p2", false);
    store.resolveOp("p2");
    store.reservationsOf("p2");
    store.spentBy("p2");
    store.balance(mint);
    store.hasProof("s1");
    store.markProof("s1", "spent");
    const statements = store.preparedStatements();
    expect(statements.length).toBeGreaterThan(12);
    expect(scansOfTables(store.db, statements, ["proofs", "reservations"])).toEqual({});
  });
});
