/**
 * The proof pool picks denominations from counts (cost independent of the pool's size), pays exact
 * change without a swap, and stores what the spent proofs became in the same transaction.
 */
import { join } from "node:path";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import {
  EcashStore,
  POOL_STOCK,
  selectDenominations,
  stockingSplit,
  type StoredProof,
} from "../../src/shared/ecash/index.js";
import { tempDir } from "../support/cli-process.js";

const MINT = "http://127.0.0.1:1/mint";
let n = 0;
const proof = (amount: number): StoredProof => ({
  secret: `s${n++}`,
  mint: MINT,
  keyset_id: "00aa",
  amount,
  c: "02",
  dleq: null,
});

/** The reference: the greedy search over every proof, one by one (the pool's former algorithm). */
function greedy(amounts: number[], amount: number): number[] | undefined {
  const pool = [...amounts].sort((a, b) => b - a);
  const exact: number[] = [];
  let left = amount;
  for (const a of pool) {
    if (a <= left) {
      exact.push(a);
      left -= a;
      if (left === 0) return exact;
    }
  }
  const single = [...pool].reverse().find((a) => a >= amount);
  if (single) return [single];
  const picked: number[] = [];
  let sum = 0;
  for (const a of pool) {
    picked.push(a);
    sum += a;
    if (sum >= amount) return picked;
  }
  return undefined;
}

let store: EcashStore | undefined;
afterEach(() => store?.close());

describe("proof pool", () => {
  it("selecting by denomination counts picks what the proof-by-proof greedy search picks", () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(1, 2, 4, 8, 16, 32, 64), { maxLength: 40 }),
        fc.integer({ min: 1, max: 300 }),
        (amounts, amount) => {
          const counts = new Map<number, number>();
          for (const a of amounts) counts.set(a, (counts.get(a) ?? 0) + 1);
          const pool = [...counts].sort((a, b) => b[0] - a[0]).map(([a, c]) => ({ amount: a, n: c }));
          const plan = selectDenominations(pool, amount);
          const flat = plan?.flatMap((d) => Array<number>(d.n).fill(d.amount));
          expect(flat).toEqual(greedy(amounts, amount));
        },
      ),
    );
  });

  it("spendExact pays exact change in one transaction, and leaves the pool untouched when recording fails", () => {
    store = new EcashStore(join(tempDir(), "w.sqlite"));
    store.addProofs([proof(8), proof(4), proof(2), proof(2), proof(1)]);
    expect(store.spendExact(MINT, 7, () => "x")).toBe("x"); // 4+2+1 = 7: exact
    expect(store.balance(MINT)).toBe(17 - 7);
    expect(store.spendExact(MINT, 16, () => "x")).toBeUndefined(); // 8+2 = 10 only: not exact
    expect(store.balance(MINT)).toBe(10);
    expect(() =>
      store!.spendExact(MINT, 8, () => {
        throw new Error("disk full");
      }),
    ).toThrow("disk full");
    expect(store.balance(MINT)).toBe(10); // rolled back: nothing spent without its record
    const spent = store.spendExact(MINT, 10, (ps) => ps.map((p) => p.amount).sort((a, b) => a - b));
    expect(spent).toEqual([2, 8]);
    expect(store.balance(MINT)).toBe(0);
  });

  it("receiving into an empty pool splits so that any change up to the amount is paid exactly", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 0, max: 5000 }), (amount, c) => {
        const change = c % (amount + 1);
        const out = stockingSplit([], amount);
        expect(out.reduce((s, a) => s + a, 0)).toBe(amount);
        for (const a of out) expect(Math.log2(a) % 1).toBe(0);
        const counts = new Map<number, number>();
        for (const a of out) counts.set(a, (counts.get(a) ?? 0) + 1);
        const pool = [...counts].sort((x, y) => y[0] - x[0]).map(([a, n]) => ({ amount: a, n }));
        if (change === 0) return;
        const plan = selectDenominations(pool, change)!;
        expect(plan.reduce((s, d) => s + d.amount * d.n, 0)).toBe(change);
      }),
    );
  });

  it("a stocked pool receives in the plain binary split (no extra outputs)", () => {
    const stocked = [64, 32, 16, 8, 4, 2, 1].map((a) => ({ amount: a, n: POOL_STOCK }));
    expect(stockingSplit(stocked, 10).sort((a, b) => a - b)).toEqual([2, 8]);
    expect(stockingSplit([{ amount: 8, n: 5 }], 8).sort((a, b) => a - b)).toEqual([1, 1, 2, 4]);
  });
});
