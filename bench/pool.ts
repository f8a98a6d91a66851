/**
 * The gateway pool's store work per payment, SQLite beside PostgreSQL, in one run (no mint: only
 * what the stores do). Two kinds of step, each against a pool stocked with 1- and 2-sat proofs:
 *   exact   spendExact of 3 sats with a change id (what paying change without a swap writes)
 *   swap    reserveProofs of 5 sats, then finishSwap keeping one new proof (a swap's two writes)
 * Layouts: SQLite (one process, calls are synchronous), PostgreSQL with one pool and BENCH_POOL_C
 * concurrent callers, and with two pools (two processes' worth) sharing those callers. Reported:
 * steps/s and p50/p99 latency. PostgreSQL is the embedded cluster of the tests (fsync off), so its
 * figures are the locking and round trips, not disk.
 *
 *   BENCH_POOL_N=2000 BENCH_POOL_C=8 tsx bench/pool.ts
 */
import { randomBytes, randomUUID } from "node:crypto";
import { join } from "node:path";
import type { StoredProof } from "../src/shared/ecash/index.js";
import { PgDatabase } from "../src/shared/index.js";
import type { GatewayPool } from "../gateway/payments/pool.js";
import { PgGatewayPool } from "../gateway/payments/pool-pg.js";
import { GatewayEcashStore } from "../gateway/payments/wallet.js";
import { tempDir } from "../test/support/cli-process.js";
import { createDatabase, startPostgres } from "../test/support/postgres-server.js";
import { pct, saveSection } from "./results.js";

const N = Number(process.env.BENCH_POOL_N ?? 2000);
const C = Number(process.env.BENCH_POOL_C ?? 8);
const MINT = "http://127.0.0.1:1/mint";

const proof = (amount: number): StoredProof => ({
  secret: randomBytes(32).toString("hex"),
  mint: MINT,
  keyset_id: "00ad268c4d1f5826",
  amount,
  c: `02${randomBytes(32).toString("hex")}`,
  dleq: null,
});

type Step = (pool: GatewayPool) => Promise<unknown>;
const steps: Record<string, Step> = {
  exact: async (pool) => pool.spendExact(MINT, 3, (ps) => `token:${ps.length}`, randomUUID()),
  swap: async (pool) => {
    const op = randomUUID();
    await pool.reserveProofs(MINT, 5, op);
    await pool.finishSwap(op, [proof(1)]);
  },
};

/** Runs N steps over `pools`, `concurrency` callers in all; steps/s and latency percentiles. */
async function measure(pools: GatewayPool[], step: Step, concurrency: number) {
  const latencies: number[] = [];
  let next = 0;
  const started = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      const pool = pools[worker % pools.length]!;
      while (next++ < N) {
        const t = process.hrtime.bigint();
        await step(pool);
        latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return {
    steps_per_s: Math.round(N / seconds),
    p50_ms: Number(pct(latencies, 50).toFixed(3)),
    p99_ms: Number(pct(latencies, 99).toFixed(3)),
  };
}

async function stock(pool: GatewayPool) {
  // Enough for every step: 3 sats per exact step, 5 per swap step, in 1s and 2s.
  for (let i = 0; i < 8; i++) await pool.addProofs(Array.from({ length: N }, (_, k) => proof(1 + (k % 2))));
}

const server = await startPostgres();
const results: Record<string, unknown> = { n: N, concurrency: C };
try {
  for (const [name, step] of Object.entries(steps)) {
    const sqlite = new GatewayEcashStore(join(tempDir(), "wallet.sqlite"));
    await stock(sqlite);
    results[`${name}_sqlite`] = await measure([sqlite], step, 1);
    sqlite.close();
    for (const processes of [1, 2]) {
      const database = await createDatabase(server.adminUrl, "bench");
      const dbs = await Promise.all(
        Array.from({ length: processes }, () => PgDatabase.open(database.url, { max: C + 1 })),
      );
      const pools = await Promise.all(dbs.map((db) => PgGatewayPool.open(db)));
      await stock(pools[0]!);
      results[`${name}_postgres_${processes}p`] = await measure(pools, step, C);
      await Promise.all(pools.map((p) => p.close()));
      await Promise.all(dbs.map((db) => db.close()));
      await database.drop();
    }
  }
  console.table(results);
  saveSection("pool", results);
} finally {
  await server.stop();
}
