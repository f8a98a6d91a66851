/**
 * `owlrun-mcp gateway migrate-sqlite`, the mint's part: every row of `<data>/mint/mint.sqlite`
 * into the mint's PostgreSQL tables, ids and states kept. Idempotent: rows already there (by
 * primary key) are left alone, so a copy that stopped half-way can simply run again. The master
 * secret stays a file; its fingerprint is recorded, and a database begun with another secret is
 * refused.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { PgDatabase } from "../../src/shared/index.js";
import { loadOrCreateMasterSecret, MasterSecretMismatchError, masterFingerprint } from "./keys.js";
import { MINT_MIGRATIONS } from "./pg-schema.js";

/** SQLite table → its PostgreSQL table and the columns copied as they are. */
const TABLES = [
  {
    from: "keysets",
    to: "mint_keysets",
    key: "id",
    cols: ["id", "unit", "derivation_index", "active", "input_fee_ppk", "final_expiry", "created_at"],
  },
  {
    from: "promises",
    to: "mint_promises",
    key: "b_",
    cols: ["b_", "amount", "keyset_id", "c_", "dleq_e", "dleq_s", "created_at"],
  },
  {
    from: "mint_quotes",
    to: "mint_mint_quotes",
    key: "quote",
    cols: [
      "quote",
      "method",
      "request",
      "payment_hash",
      "unit",
      "amount",
      "state",
      "description",
      "pubkey",
      "created_at",
      "expiry",
      "paid_at",
      "issued_at",
    ],
  },
  {
    from: "melt_quotes",
    to: "mint_melt_quotes",
    key: "quote",
    cols: [
      "quote",
      "method",
      "request",
      "payment_hash",
      "unit",
      "amount",
      "fee_reserve",
      "state",
      "created_at",
      "expiry",
      "paid_at",
      "fee_paid",
      "preimage",
      "internal_mint_quote",
      "inputs_total",
      "input_fee",
      "blank_outputs",
      "change",
    ],
  },
  { from: "cached_responses", to: "mint_cached_responses", key: "key", cols: ["key", "body", "created_at"] },
] as const;

const PROOF_COLS = ["y", "amount", "keyset_id", "secret", "c", "witness", "melt_quote", "created_at"];

export interface MintCopyCounts {
  keysets: number;
  promises: number;
  mint_quotes: number;
  melt_quotes: number;
  cached_responses: number;
  proofs_spent: number;
  proofs_pending: number;
}

/** Rows per INSERT: well under PostgreSQL's 65535 parameters. */
const BATCH = 500;

async function insertRows(
  database: PgDatabase,
  table: string,
  key: string,
  cols: readonly string[],
  rows: Record<string, unknown>[],
  extra: Record<string, unknown> = {},
): Promise<void> {
  const names = [...cols, ...Object.keys(extra)];
  for (let i = 0; i < rows.length; i += BATCH) {
    const chunk = rows.slice(i, i + BATCH);
    const params: unknown[] = [];
    const tuples = chunk.map((row) => {
      const values = [...cols.map((c) => row[c] ?? null), ...Object.values(extra)];
      const start = params.length;
      params.push(...values);
      return `(${values.map((_, j) => `$${start + j + 1}`).join(", ")})`;
    });
    await database.query(
      `INSERT INTO ${table} (${names.join(", ")}) VALUES ${tuples.join(", ")} ON CONFLICT (${key}) DO NOTHING`,
      params,
    );
  }
}

/**
 * Copies the bundled mint of `dataDir` (the gateway's or `owlrun-mcp mint`'s data dir; the mint's
 * files are in `<dataDir>/mint/`) into `database`. Returns the rows read from SQLite per table (all
 * of them are in PostgreSQL afterwards). A data dir without a mint copies nothing.
 */
export async function copyMintFromSqlite(dataDir: string, database: PgDatabase): Promise<MintCopyCounts> {
  const dir = join(dataDir, "mint");
  const file = join(dir, "mint.sqlite");
  const counts: MintCopyCounts = {
    keysets: 0,
    promises: 0,
    mint_quotes: 0,
    melt_quotes: 0,
    cached_responses: 0,
    proofs_spent: 0,
    proofs_pending: 0,
  };
  if (!existsSync(file)) return counts;
  await database.migrate("mint", MINT_MIGRATIONS);
  const mine = masterFingerprint(loadOrCreateMasterSecret(dir));
  await database.query(
    "INSERT INTO mint_master (id, fingerprint, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
    [mine, Math.floor(Date.now() / 1000)],
  );
  const recorded = await database.query<{ fingerprint: string }>("SELECT fingerprint FROM mint_master");
  if (recorded[0]?.fingerprint !== mine) throw new MasterSecretMismatchError();

  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const has = (t: string) =>
      !!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(t);
    for (const t of TABLES) {
      if (!has(t.from)) continue;
      const rows = db.prepare(`SELECT * FROM ${t.from}`).all() as Record<string, unknown>[];
      await insertRows(database, t.to, t.key, t.cols, rows);
      counts[t.from] = rows.length;
    }
    // Spent and pending proofs share one table (one key space for Y) in PostgreSQL.
    for (const [from, state, count] of [
      ["proofs_used", "SPENT", "proofs_spent"],
      ["proofs_pending", "PENDING", "proofs_pending"],
    ] as const) {
      if (!has(from)) continue;
      const rows = db.prepare(`SELECT * FROM ${from}`).all() as Record<string, unknown>[];
      await insertRows(database, "mint_proofs", "y", PROOF_COLS, rows, { state });
      counts[count] = rows.length;
    }
    // The active keyset is SQLite's (a mint started on PostgreSQL before the copy may have made its own keyset 0 active).
    const active = db.prepare("SELECT id, unit FROM keysets WHERE active = 1").all() as {
      id: string;
      unit: string;
    }[];
    for (const k of active) {
      await database.query(
        "UPDATE mint_keysets SET active = CASE WHEN id = $1 THEN 1 ELSE 0 END WHERE unit = $2",
        [k.id, k.unit],
      );
    }
  } finally {
    db.close();
  }
  return counts;
}
