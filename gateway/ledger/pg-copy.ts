/**
 * `owlrun-mcp gateway migrate-sqlite`, the ledger's part: every row of `<dataDir>/ledger.sqlite`
 * copied into PostgreSQL's `ledger_` tables with ids kept, in one transaction, into an empty
 * target only. The books are checked before (SQLite sums to zero) and after (PostgreSQL sums to
 * zero, holds the same balances, and each balance equals the sum of its entries); any difference
 * rolls the whole copy back.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { PgClient, PgDatabase } from "../../src/shared/postgres.js";
import { LedgerError } from "./errors.js";
import { LEDGER_MIGRATIONS } from "./pg-store.js";
import { imbalanceOf, isDebitNormal } from "./storage.js";
import { LedgerStore } from "./store.js";

export interface LedgerCopyReport {
  tx: number;
  entries: number;
  balances: number;
  holds: number;
  earningsDaily: number;
  earningsTotal: number;
  /** assets minus claims, before (SQLite) and after (PostgreSQL): both 0 */
  imbalanceBeforeMsat: number;
  imbalanceAfterMsat: number;
}

const BATCH = 5000;

interface Table {
  name: string;
  sqlite: string;
  columns: string[];
  types: string[];
}

/** Each SQLite table and its PostgreSQL twin, parents before children (entries reference tx). */
const TABLES: Record<Exclude<keyof LedgerCopyReport, `imbalance${string}`>, Table> = {
  tx: {
    name: "ledger_tx",
    sqlite: "ledger_tx",
    columns: ["id", "kind", "ref", "created_at"],
    types: ["int8", "text", "text", "int8"],
  },
  entries: {
    name: "ledger_entries",
    sqlite: "ledger_entries",
    columns: ["id", "tx_id", "debit", "credit", "msat"],
    types: ["int8", "int8", "text", "text", "int8"],
  },
  balances: {
    name: "ledger_balances",
    sqlite: "balances",
    columns: ["account", "msat"],
    types: ["text", "int8"],
  },
  holds: {
    name: "ledger_holds",
    sqlite: "holds",
    columns: ["id", "account", "msat", "state", "kind", "created_at", "updated_at", "memo"],
    types: ["text", "text", "int8", "text", "text", "int8", "int8", "text"],
  },
  earningsDaily: {
    name: "ledger_earnings_daily",
    sqlite: "earnings_daily",
    columns: ["account", "day", "msat"],
    types: ["text", "int4", "int8"],
  },
  earningsTotal: {
    name: "ledger_earnings_total",
    sqlite: "earnings_total",
    columns: ["account", "msat"],
    types: ["text", "int8"],
  },
};

async function insertRows(c: PgClient, t: Table, rows: Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < rows.length; i += BATCH) {
    const chunk = rows.slice(i, i + BATCH);
    const arrays = t.columns.map((col) => chunk.map((r) => r[col] ?? null));
    const unnest = t.types.map((ty, k) => `$${k + 1}::${ty}[]`).join(", ");
    await c.query(`INSERT INTO ${t.name} (${t.columns.join(", ")}) SELECT * FROM unnest(${unnest})`, arrays);
  }
}

/** Every balance, recomputed from the entries, must equal its row: the books are whole. */
async function checkBalancesFromEntries(c: PgClient): Promise<void> {
  const r = await c.query<{ account: string; msat: number; d: number; cr: number }>(
    `WITH sums AS (
       SELECT account, SUM(d) AS d, SUM(cr) AS cr FROM (
         SELECT debit AS account, msat AS d, 0 AS cr FROM ledger_entries
         UNION ALL SELECT credit, 0, msat FROM ledger_entries) x GROUP BY account)
     SELECT COALESCE(b.account, s.account) AS account, COALESCE(b.msat, 0) AS msat,
            COALESCE(s.d, 0) AS d, COALESCE(s.cr, 0) AS cr
     FROM ledger_balances b FULL JOIN sums s ON s.account = b.account`,
  );
  for (const row of r.rows) {
    const expected = isDebitNormal(row.account) ? row.d - row.cr : row.cr - row.d;
    if (expected !== row.msat)
      throw new LedgerError(`copy: ${row.account} holds ${row.msat} msat but its entries sum to ${expected}`);
  }
}

/**
 * Copies the SQLite ledger of `dataDir` into `database` (migrating the `ledger` component first).
 * Refuses a target that already has books; a data dir without a ledger copies nothing.
 */
export async function copyLedgerFromSqlite(dataDir: string, database: PgDatabase): Promise<LedgerCopyReport> {
  await database.migrate("ledger", LEDGER_MIGRATIONS);
  const path = join(dataDir, "ledger.sqlite");
  const empty = { tx: 0, entries: 0, balances: 0, holds: 0, earningsDaily: 0, earningsTotal: 0 };
  if (!existsSync(path)) return { ...empty, imbalanceBeforeMsat: 0, imbalanceAfterMsat: 0 };
  // Opened as the gateway opens it: an older file gets its earnings totals rebuilt first.
  const store = new LedgerStore(path);
  try {
    const source = store.balances();
    const imbalanceBeforeMsat = imbalanceOf(source);
    if (imbalanceBeforeMsat !== 0)
      throw new LedgerError(`copy: the SQLite books are off by ${imbalanceBeforeMsat} msat; not copying`);
    // One read transaction: every table from the same instant, even if a gateway still writes.
    const data = store.db.transaction(() =>
      Object.fromEntries(
        Object.entries(TABLES).map(([key, t]) => [
          key,
          store.db.prepare(`SELECT ${t.columns.join(", ")} FROM ${t.sqlite} ORDER BY 1`).all(),
        ]),
      ),
    )() as Record<keyof typeof TABLES, Record<string, unknown>[]>;
    return await database.tx(async (c) => {
      // One copy at a time, into empty tables only.
      await c.query("SELECT pg_advisory_xact_lock(hashtext('owlrun:ledger-copy'))");
      const taken = await c.query<{ n: number }>(
        "SELECT (SELECT COUNT(*) FROM ledger_tx) + (SELECT COUNT(*) FROM ledger_balances) + (SELECT COUNT(*) FROM ledger_holds) AS n",
      );
      if (taken.rows[0]!.n > 0)
        throw new LedgerError("copy: the PostgreSQL ledger is not empty; refusing to copy");
      const report = { ...empty };
      for (const [key, t] of Object.entries(TABLES) as [keyof typeof TABLES, Table][]) {
        await insertRows(c, t, data[key]);
        report[key] = data[key].length;
      }
      for (const table of ["ledger_tx", "ledger_entries"])
        await c.query(
          `SELECT setval(pg_get_serial_sequence('${table}', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM ${table}`,
        );
      const after = await c.query<{ account: string; msat: number }>(
        "SELECT account, msat FROM ledger_balances WHERE msat != 0",
      );
      const copied = new Map(after.rows.map((r) => [r.account, r.msat]));
      const imbalanceAfterMsat = imbalanceOf(copied);
      if (
        imbalanceAfterMsat !== 0 ||
        copied.size !== source.size ||
        [...source].some(([a, m]) => copied.get(a) !== m)
      )
        throw new LedgerError("copy: the PostgreSQL balances differ from SQLite's");
      await checkBalancesFromEntries(c);
      return { ...report, imbalanceBeforeMsat, imbalanceAfterMsat };
      // READ COMMITTED: the advisory lock above orders copies; nothing else writes an empty ledger.
    }, "read committed");
  } finally {
    store.close();
  }
}
