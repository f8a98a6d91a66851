/**
 * `owlrun-mcp gateway migrate-sqlite`, for the pool and the one-shot credentials: every row of the
 * SQLite files copied into PostgreSQL with its ids, states and counters kept. Idempotent: rows
 * already there are left alone (a second run copies nothing), counters only move forward. Each
 * copy is one transaction, so a failed run leaves the database as it was.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { PgClient, PgDatabase } from "../../src/shared/index.js";
import { ONESHOT_MIGRATIONS } from "./oneshot-pg.js";
import { POOL_MIGRATIONS } from "./pool-pg-schema.js";

export interface PoolCopyReport {
  seed: number;
  proofs: number;
  counters: number;
  reservations: number;
  change: number;
  /** claims stored in the pool whose owner the ledger had not credited yet (recovery credits them) */
  claims: number;
}

export interface OneShotCopyReport {
  credentials: number;
  topupClaims: number;
}

const BATCH = 2000;

function readAll<T>(path: string, sql: string): T[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all() as T[];
  } finally {
    db.close();
  }
}

/**
 * Inserts `rows` into `table` in batches (`INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING`);
 * returns how many were new. `types` are the PostgreSQL array types of `columns`.
 */
async function copyRows(
  c: PgClient,
  table: string,
  columns: string[],
  types: string[],
  rows: Record<string, unknown>[],
  conflict: string,
): Promise<number> {
  let added = 0;
  for (let i = 0; i < rows.length; i += BATCH) {
    const batch = rows.slice(i, i + BATCH);
    const arrays = columns.map((col) => batch.map((r) => r[col] ?? null));
    const unnest = types.map((t, k) => `$${k + 1}::${t}[]`).join(", ");
    const res = await c.query(
      `INSERT INTO ${table} (${columns.join(", ")}) SELECT * FROM unnest(${unnest}) ON CONFLICT (${conflict}) DO NOTHING`,
      arrays,
    );
    added += res.rowCount ?? 0;
  }
  return added;
}

/**
 * Copies `<dataDir>/wallet/` (wallet.sqlite and the seed) into the pool tables. Refuses a database
 * that already holds another wallet's seed: two wallets' counters and ranges cannot be merged.
 */
export async function copyPoolFromSqlite(dataDir: string, database: PgDatabase): Promise<PoolCopyReport> {
  const dir = join(dataDir, "wallet");
  const path = join(dir, "wallet.sqlite");
  const seedPath = join(dir, "wallet-seed");
  const report: PoolCopyReport = { seed: 0, proofs: 0, counters: 0, reservations: 0, change: 0, claims: 0 };
  await database.migrate("pool", POOL_MIGRATIONS);
  if (!existsSync(path) && !existsSync(seedPath)) return report;
  const seed = existsSync(seedPath) ? readFileSync(seedPath, "utf8").trim() : undefined;
  const proofs = existsSync(path) ? readAll<Record<string, unknown>>(path, "SELECT * FROM proofs") : [];
  const counters = existsSync(path) ? readAll<Record<string, unknown>>(path, "SELECT * FROM counters") : [];
  const reservations = existsSync(path)
    ? readAll<Record<string, unknown>>(path, "SELECT * FROM reservations WHERE resolved = 0")
    : [];
  const hasChange =
    existsSync(path) &&
    readAll(path, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'change'").length > 0;
  const change = hasChange ? readAll<Record<string, unknown>>(path, "SELECT * FROM change") : [];
  const hasClaims =
    existsSync(path) &&
    readAll(path, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'claims_unfunded'").length >
      0;
  const claims = hasClaims ? readAll<Record<string, unknown>>(path, "SELECT * FROM claims_unfunded") : [];
  // READ COMMITTED: a copy runs while no gateway uses the database; the transaction makes it all or nothing.
  await database.tx(async (c) => {
    if (seed !== undefined) {
      const ins = await c.query(
        "INSERT INTO pool_seed (id, seed) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
        [seed],
      );
      report.seed = ins.rowCount ?? 0;
      const held = await c.query<{ seed: string }>("SELECT seed FROM pool_seed WHERE id = 1");
      if (held.rows[0]!.seed !== seed)
        throw new Error(
          "the database already holds another gateway wallet's seed; refusing to mix two wallets",
        );
    }
    report.proofs = await copyRows(
      c,
      "pool_proofs",
      ["secret", "mint", "keyset_id", "amount", "c", "dleq", "state", "op", "created_at"],
      ["text", "text", "text", "bigint", "text", "text", "text", "text", "bigint"],
      proofs,
      "secret",
    );
    for (const row of counters) {
      const res = await c.query(
        `INSERT INTO pool_counters (keyset_id, next) VALUES ($1, $2)
         ON CONFLICT (keyset_id) DO UPDATE SET next = GREATEST(pool_counters.next, excluded.next)
         WHERE pool_counters.next < excluded.next`,
        [row.keyset_id, row.next],
      );
      report.counters += res.rowCount ?? 0;
    }
    report.reservations = await copyRows(
      c,
      "pool_reservations",
      ["id", "mint", "keyset_id", "start", "count", "op", "created_at"],
      ["bigint", "text", "text", "bigint", "int", "text", "bigint"],
      reservations,
      "id",
    );
    // New ranges get ids after the copied ones.
    await c.query(
      "SELECT setval(pg_get_serial_sequence('pool_reservations', 'id'), GREATEST((SELECT MAX(id) FROM pool_reservations), 1))",
    );
    report.change = await copyRows(
      c,
      "pool_change",
      ["id", "mint", "amount", "token", "created_at", "fetched_at", "checked_at"],
      ["text", "text", "bigint", "text", "bigint", "bigint", "bigint"],
      change.map((r) => ({ checked_at: 0, ...r })),
      "id",
    );
    // No owner: whichever process starts next credits them.
    report.claims = await copyRows(
      c,
      "pool_claims_unfunded",
      ["op", "mint", "sat", "created_at"],
      ["text", "text", "bigint", "bigint"],
      claims,
      "op",
    );
  });
  return report;
}

/** Copies `<dataDir>/payments.sqlite` (one-shot credentials, top-up claims) into the oneshot tables. */
export async function copyOneShotFromSqlite(
  dataDir: string,
  database: PgDatabase,
): Promise<OneShotCopyReport> {
  const path = join(dataDir, "payments.sqlite");
  const report: OneShotCopyReport = { credentials: 0, topupClaims: 0 };
  await database.migrate("oneshot", ONESHOT_MIGRATIONS);
  if (!existsSync(path)) return report;
  const credentials = readAll<Record<string, unknown>>(path, "SELECT * FROM oneshot");
  const claims = readAll<Record<string, unknown>>(path, "SELECT * FROM topup_claims");
  // READ COMMITTED: as above, all or nothing.
  await database.tx(async (c) => {
    report.credentials = await copyRows(
      c,
      "oneshot_credentials",
      ["id", "kind", "amount_sat", "route", "state", "mint", "quote", "created_at", "updated_at"],
      ["text", "text", "bigint", "text", "text", "text", "text", "bigint", "bigint"],
      credentials,
      "id",
    );
    report.topupClaims = await copyRows(
      c,
      "oneshot_topup_claims",
      ["payment_hash", "quote", "mint", "amount_sat", "account_id", "state", "created_at", "claim_hash"],
      ["text", "text", "text", "bigint", "text", "text", "bigint", "text"],
      claims,
      "payment_hash",
    );
  });
  return report;
}
