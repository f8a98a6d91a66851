/**
 * The gateway's ecash pool, the same cases against SQLite (`GatewayEcashStore`) and PostgreSQL
 * (`PgGatewayPool`). "Another process" is a second store on the same file (SQLite) or a second
 * connection pool on the same database (PostgreSQL): races between them must never reserve a proof
 * twice, hand out a counter twice, or pay a change id twice.
 */
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { currentOp, selectDenominations, type StoredProof } from "../../src/shared/ecash/index.js";
import { PgDatabase } from "../../src/shared/index.js";
import type { GatewayPool } from "../../gateway/payments/pool.js";
import { PgGatewayPool } from "../../gateway/payments/pool-pg.js";
import { GatewayEcashStore } from "../../gateway/payments/wallet.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";

const MINT = "http://127.0.0.1:1/mint";
const OTHER = "http://127.0.0.1:2/mint";
let n = 0;
const proof = (amount: number, mint = MINT): StoredProof => ({
  secret: `s${n++}-${Math.random().toString(36).slice(2)}`,
  mint,
  keyset_id: "00aa",
  amount,
  c: "02ab",
  dleq: amount % 2 ? '{"e":"1","s":"2"}' : null,
});
const sum = (ps: { amount: number }[]) => ps.reduce((s, p) => s + p.amount, 0);

interface Setup {
  /** the first process's pool */
  pool: GatewayPool;
  /** another process on the same storage */
  other(): Promise<GatewayPool>;
  close(): Promise<void>;
}

const implementations: ["sqlite" | "postgres", () => Promise<Setup>][] = [
  [
    "sqlite",
    async () => {
      const path = join(tempDir(), "wallet.sqlite");
      const stores = [new GatewayEcashStore(path)];
      return {
        pool: stores[0]!,
        other: async () => {
          stores.push(new GatewayEcashStore(path));
          return stores.at(-1)!;
        },
        close: async () => stores.forEach((s) => s.db.open && s.close()),
      };
    },
  ],
  [
    "postgres",
    async () => {
      const database = await testDatabase("pool");
      const dbs = [await PgDatabase.open(database.url, { max: 6 })];
      const pools = [await PgGatewayPool.open(dbs[0]!)];
      return {
        pool: pools[0]!,
        other: async () => {
          dbs.push(await PgDatabase.open(database.url, { max: 6 }));
          pools.push(await PgGatewayPool.open(dbs.at(-1)!));
          return pools.at(-1)!;
        },
        close: async () => {
          await Promise.all(pools.map((p) => p.close()));
          await Promise.all(dbs.map((d) => d.close()));
          await database.drop();
        },
      };
    },
  ],
];

describe.each(implementations)("gateway ecash pool on %s", (name, make) => {
  let setup: Setup | undefined;
  afterEach(async () => {
    await setup?.close();
    setup = undefined;
  });
  const open = async () => (setup = await make());

  it("keeps balances and denominations per mint; a proof is stored once", async () => {
    const { pool } = await open();
    const a = [proof(8), proof(4), proof(2), proof(2), proof(1)];
    await pool.addProofs([...a, proof(16, OTHER)]);
    await pool.addProofs([a[0]!]);
    expect(await pool.balance(MINT)).toBe(17);
    expect(await pool.balance()).toBe(33);
    expect(await pool.balancesByMint()).toEqual({ [MINT]: 17, [OTHER]: 16 });
    expect(await pool.denominations(MINT)).toEqual([
      { amount: 8, n: 1 },
      { amount: 4, n: 1 },
      { amount: 2, n: 2 },
      { amount: 1, n: 1 },
    ]);
    expect(await pool.hasProof(a[1]!.secret)).toBe(true);
    expect(await pool.hasProof("nope")).toBe(false);
  });

  it("reserves for one op, then spends or frees what it reserved", async () => {
    const { pool } = await open();
    await pool.addProofs([proof(8), proof(4), proof(2), proof(1)]);
    const picked = (await pool.reserveProofs(MINT, 6, "op1"))!;
    expect(picked.map((p) => p.amount).sort()).toEqual([2, 4]);
    expect(picked[0]).toMatchObject({ mint: MINT, keyset_id: "00aa", c: "02ab" });
    expect(await pool.balance(MINT)).toBe(15); // reserved still counts
    expect(await pool.balancesByMint()).toEqual({ [MINT]: 9 }); // spendable does not
    expect(await pool.spentBy("op1")).toBe(6);
    await pool.finishOp("op1", false);
    expect(await pool.balancesByMint()).toEqual({ [MINT]: 15 });
    expect(await pool.reserveProofs(MINT, 100, "too-much")).toBeUndefined();
    const all = (await pool.reserveProofs(MINT, 13, "op2"))!;
    expect(sum(all)).toBeGreaterThanOrEqual(13);
    await pool.finishOp("op2", true);
    expect(await pool.balance(MINT)).toBe(15 - sum(all));
    expect(await pool.reservedProofs()).toEqual([]);
  });

  it("plans every amount as the denomination search over the whole pool does", async () => {
    const { pool } = await open();
    const amounts = [1, 1, 1, 2, 2, 4, 8, 8, 8, 16, 32, 64, 64];
    await pool.addProofs(amounts.map((a) => proof(a)));
    const counts = await pool.denominations(MINT);
    for (let amount = 1; amount <= 220; amount += 3) {
      const want = selectDenominations(counts, amount)?.flatMap((d) => Array<number>(d.n).fill(d.amount));
      const got = await pool.reserveProofs(MINT, amount, `plan${amount}`);
      expect(got?.map((p) => p.amount).sort((x, y) => y - x)).toEqual(want);
      await pool.finishOp(`plan${amount}`, false);
    }
  });

  it("pays exact change without a swap, or not at all", async () => {
    const { pool } = await open();
    await pool.addProofs([proof(8), proof(4), proof(2), proof(2), proof(1)]);
    const token = await pool.spendExact(MINT, 7, (ps) => `t:${sum(ps)}:${ps.length}`);
    expect(token).toBe("t:7:3");
    expect(await pool.balance(MINT)).toBe(10);
    expect(await pool.spendExact(MINT, 16, () => "x")).toBeUndefined(); // 8+2 only: not exact
    expect(await pool.balance(MINT)).toBe(10);
    await expect(
      Promise.resolve().then(() =>
        pool.spendExact(MINT, 8, () => {
          throw new Error("encoding failed");
        }),
      ),
    ).rejects.toThrow("encoding failed");
    expect(await pool.balance(MINT)).toBe(10); // rolled back: nothing spent without its token
  });

  it("stores change once per id, with the spend; any process reads it and marks it fetched", async () => {
    const { pool, other } = await open();
    await pool.addProofs([proof(4), proof(4), proof(2), proof(1)]);
    expect(await pool.spendExact(MINT, 4, () => "first", "c1")).toBe("first");
    // The same id again: nothing more is spent, the stored token is the answer.
    expect(await pool.spendExact(MINT, 4, () => "second", "c1")).toBe("first");
    expect(await pool.balance(MINT)).toBe(7);
    const second = await other();
    expect(await second.findChange("c1")).toEqual({ token: "first" });
    expect(await second.getChange("c1")).toEqual({ id: "c1", mint: MINT, amount: 4, token: "first" });
    expect(await pool.getChange("missing")).toBeUndefined();
  });

  it("finishes a swap in one step; a change id paid meanwhile keeps the swap's proofs in the pool", async () => {
    const { pool, other } = await open();
    await pool.addProofs([proof(8), proof(8)]);
    const counters = pool.counterSource(MINT);
    await currentOp.run("swap1", () => counters.reserve("00aa", 3));
    await pool.reserveProofs(MINT, 8, "swap1");
    const sent = [proof(4), proof(1)];
    const stored = await pool.finishSwap("swap1", [proof(2), proof(1)], {
      id: "c2",
      mint: MINT,
      amount: 5,
      token: "swap-token",
      proofs: sent,
    });
    expect(stored).toBe("swap-token");
    expect(await pool.balance(MINT)).toBe(8 + 3);
    expect(await pool.reservationsOf("swap1")).toEqual([]);
    expect(await pool.reservedProofs()).toEqual([]);
    // A second swap for the same id (another process got there first): its sent proofs stay ours.
    const again = await other();
    await again.reserveProofs(MINT, 8, "swap2");
    const late = [proof(4), proof(1)];
    expect(
      await again.finishSwap("swap2", [proof(2), proof(1)], {
        id: "c2",
        mint: MINT,
        amount: 5,
        token: "late-token",
        proofs: late,
      }),
    ).toBe("swap-token");
    expect(await pool.balance(MINT)).toBe(3 + 3 + 5);
    expect(await pool.hasProof(late[0]!.secret)).toBe(true);
    expect(await pool.findChange("c2")).toEqual({ token: "swap-token" });
  });

  it("reserves counter ranges per keyset, records them for crash repair, resolves them", async () => {
    const { pool, other } = await open();
    const proc = await other();
    const counters = proc.counterSource(MINT);
    expect(await counters.reserve("k1", 0)).toEqual({ start: 0, count: 0 });
    expect(await currentOp.run("a", () => counters.reserve("k1", 3))).toEqual({ start: 0, count: 3 });
    expect(await currentOp.run("b", () => counters.reserve("k1", 2))).toEqual({ start: 3, count: 2 });
    expect(await counters.reserve("k2", 4)).toEqual({ start: 0, count: 4 });
    expect(await counters.reserve("k1", 0)).toEqual({ start: 5, count: 0 });
    await counters.advanceToAtLeast("k1", 3); // never backwards
    expect(await counters.reserve("k1", 0)).toEqual({ start: 5, count: 0 });
    await counters.advanceToAtLeast("k1", 20);
    expect(await counters.reserve("k1", 1)).toEqual({ start: 20, count: 1 });
    // Once that process is gone, another sees every range it left open (crash repair runs wherever
    // a process starts).
    await proc.close();
    const second = pool;
    const open1 = await second.unresolvedReservations();
    expect(open1.map((r) => [r.op, r.keyset_id, r.start, r.count])).toEqual([
      ["a", "k1", 0, 3],
      ["b", "k1", 3, 2],
      [null, "k2", 0, 4],
      [null, "k1", 20, 1],
    ]);
    expect(open1[0]).toMatchObject({ mint: MINT });
    expect((await second.reservationsOf("b")).map((r) => r.start)).toEqual([3]);
    await second.addProofs([proof(2)], "a"); // storing a's outputs resolves a
    await second.resolveOp("b");
    await second.resolveReservation(open1[2]!.id);
    expect((await pool.unresolvedReservations()).map((r) => r.start)).toEqual([20]);
  });

  it("restores a claim's ranges: proofs, range and claim record in one step, each sat counted once", async () => {
    const { pool, other } = await open();
    const crashed = await other();
    const op = "claim:user:acct:00000000-0000-0000-0000-000000000000";
    await currentOp.run(op, async () => {
      await crashed.counterSource(MINT).reserve("00aa", 2);
      await crashed.counterSource(MINT).reserve("00aa", 3);
    });
    await currentOp.run("not-a-claim", () => crashed.counterSource(MINT).reserve("00aa", 1));
    await crashed.close(); // the claiming process is gone, its ranges open
    const [first, second, plain] = await pool.unresolvedReservations();
    const a = [proof(4), proof(1)];
    const b = [proof(8), proof(2), proof(1)];
    expect(await pool.restoreRange(first!, a)).toBe(5);
    // A restart that dies here has the first range's value recorded for the op already.
    expect(await pool.unfundedClaims([op])).toEqual([{ op, mint: MINT, sat: 5 }]);
    // Proofs stored already (by an earlier restore or another process) add nothing.
    expect(await pool.restoreRange(second!, [a[0]!, ...b])).toBe(11);
    expect(await pool.restoreRange(plain!, [proof(16)])).toBe(16);
    expect(await pool.unresolvedReservations()).toEqual([]);
    expect(await pool.balance(MINT)).toBe(32);
    // One record for the op with the value of both ranges; the non-claim op has none.
    expect(await pool.unfundedClaims([op])).toEqual([{ op, mint: MINT, sat: 16 }]);
    await pool.claimFunded(op);
    await pool.addProofs([proof(1)]); // SQLite drops funded records with its next write
    expect(await pool.unfundedClaims([op])).toEqual([]);
  });

  it.runIf(name === "postgres")(
    "a claim restored by a live process is its own: another process's recovery does not list it",
    async () => {
      const { pool, other } = await open();
      const op = "claim:xcashu:B:11111111-1111-1111-1111-111111111111";
      await currentOp.run(op, () => pool.counterSource(MINT).reserve("00aa", 1));
      const [range] = await pool.reservationsOf(op);
      expect(await pool.restoreRange(range!, [proof(8)])).toBe(8);
      const starting = await other();
      expect(await starting.unfundedClaims()).toEqual([]);
      await pool.close(); // gone before crediting it: now anyone's recovery credits it
      expect(await starting.unfundedClaims()).toEqual([{ op, mint: MINT, sat: 8 }]);
    },
  );

  it("repairs a crash from another process: reserved proofs are found and settled", async () => {
    const { pool, other } = await open();
    const ps = [proof(4), proof(2), proof(1)];
    await pool.addProofs(ps);
    const crashed = await other();
    await crashed.reserveProofs(MINT, 6, "crashed");
    await crashed.close(); // the process is gone
    const survivor = pool;
    const reserved = await survivor.reservedProofs();
    expect(reserved.map((p) => p.amount).sort()).toEqual([2, 4]);
    await survivor.markProof(reserved[0]!.secret, "available");
    await survivor.markProof(reserved[1]!.secret, "spent");
    expect(await survivor.reservedProofs()).toEqual([]);
    expect(await pool.balance(MINT)).toBe(7 - reserved[1]!.amount);
    expect(await pool.spentBy("crashed")).toBe(reserved[1]!.amount); // a spent proof keeps its op
  });

  it.runIf(name === "postgres")(
    "a process starting next to a live one leaves the live one's swaps and ranges alone",
    async () => {
      const { pool, other } = await open();
      await pool.addProofs([proof(4), proof(2)]);
      await pool.reserveProofs(MINT, 4, "live-swap");
      await currentOp.run("live-swap", () => pool.counterSource(MINT).reserve("00aa", 2));
      const starting = await other();
      expect(await starting.reservedProofs()).toEqual([]);
      expect(await starting.unresolvedReservations()).toEqual([]);
      // Its own ranges are its own business too, until it is gone.
      await currentOp.run("mine", () => starting.counterSource(MINT).reserve("00aa", 1));
      expect(await pool.unresolvedReservations()).toEqual([]);
      await pool.close();
      expect((await starting.reservedProofs()).map((p) => p.op)).toEqual(["live-swap"]);
      expect((await starting.unresolvedReservations()).map((r) => r.op)).toEqual(["live-swap"]);
    },
  );

  it("forgets old spent proofs and fetched change, keeps everything that holds value", async () => {
    const { pool } = await open();
    await pool.addProofs([proof(4), proof(2), proof(1), proof(8)]);
    await pool.spendExact(MINT, 6, () => "fetched", "f");
    await pool.spendExact(MINT, 1, () => "unfetched", "u");
    await pool.reserveProofs(MINT, 8, "open-op");
    await pool.getChange("f");
    const later = Date.now() + 60_000;
    expect(await pool.compact(later)).toBe(2 + 1 + 1); // two spent proofs for f, one for u, change f
    expect(await pool.findChange("f")).toBeUndefined();
    expect(await pool.findChange("u")).toEqual({ token: "unfetched" });
    expect(await pool.spentBy("open-op")).toBe(8);
    expect(await pool.compact(later)).toBe(0);
  });

  it("two processes racing 50 reservations never reserve one proof twice", async () => {
    const { pool, other } = await open();
    const second = await other();
    const amounts = [1, 2, 4, 8, 16];
    const stock = Array.from({ length: 120 }, (_, i) => proof(amounts[i % amounts.length]!));
    await pool.addProofs(stock);
    const total = sum(stock); // 24 * 31 = 744
    const asks = Array.from({ length: 50 }, (_, i) => 1 + ((i * 7) % 23)); // 1..23 sats, ~600 in all
    const results = await Promise.all(
      asks.map(async (amount, i) => ({
        amount,
        op: `race${i}`,
        got: await (i % 2 ? second : pool).reserveProofs(MINT, amount, `race${i}`),
      })),
    );
    const seen = new Map<string, string>();
    let reserved = 0;
    for (const r of results) {
      if (!r.got) continue;
      expect(sum(r.got)).toBeGreaterThanOrEqual(r.amount);
      for (const p of r.got) {
        expect(seen.get(p.secret)).toBeUndefined();
        seen.set(p.secret, r.op);
      }
      reserved += sum(r.got);
      expect(await pool.spentBy(r.op)).toBe(sum(r.got)); // what the store recorded is what it answered
    }
    expect(results.filter((r) => r.got).length).toBeGreaterThan(40);
    expect(await pool.balance(MINT)).toBe(total);
    expect((await pool.balancesByMint())[MINT] ?? 0).toBe(total - reserved);
  });

  it("two processes racing exact payments and one change id: paid once, sums right", async () => {
    const { pool, other } = await open();
    const second = await other();
    await pool.addProofs(Array.from({ length: 40 }, () => proof(1)));
    const tokens = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? second : pool).spendExact(MINT, 2, () => `token${i}`, "same-id"),
      ),
    );
    expect(new Set(tokens).size).toBe(1);
    expect(await pool.balance(MINT)).toBe(38);
    const many = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? second : pool).spendExact(MINT, 2, () => `t${i}`)),
    );
    expect(many.filter((t) => t !== undefined).length).toBe(19); // 38 sats: 19 payments of 2
    expect(await pool.balance(MINT)).toBe(0);
  });

  it("two processes racing counter reservations on one keyset never share a counter", async () => {
    const { pool, other } = await open();
    const second = await other();
    const sizes = Array.from({ length: 50 }, (_, i) => 1 + (i % 5));
    const ranges = await Promise.all(
      sizes.map((k, i) =>
        currentOp.run(`r${i}`, () => (i % 2 ? second : pool).counterSource(MINT).reserve("k1", k)),
      ),
    );
    const used = ranges.flatMap((r) => Array.from({ length: r.count }, (_, j) => r.start + j));
    const total = sizes.reduce((s, k) => s + k, 0);
    expect(new Set(used).size).toBe(total);
    expect(Math.max(...used)).toBe(total - 1);
    // Every range is recorded: once both processes are gone, a third finds all 50 to repair.
    await pool.close();
    await second.close();
    expect((await (await other()).unresolvedReservations()).length).toBe(50);
  });
});
