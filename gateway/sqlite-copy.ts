/**
 * The shared step of `owlrun-mcp gateway migrate-sqlite` for the gateway's smaller stores: every row
 * of a SQLite table inserted into its PostgreSQL table with the same column names, ids and counters
 * kept. `ON CONFLICT DO NOTHING` makes a second run a no-op (rows already copied stay as they are).
 */
import { existsSync } from "node:fs";
import Database from "better-sqlite3";
import type { PgClient } from "../src/shared/index.js";

const BATCH = 500;

/** Opens a SQLite file read-only, or undefined when the store was never created. */
export function openSqliteForCopy(path: string): Database.Database | undefined {
  if (!existsSync(path)) return undefined;
  return new Database(path, { readonly: true, fileMustExist: true });
}

/** Copies `columns` of every row of `from` into `to`; returns how many rows the SQLite table has. */
export async function copyTable(
  client: PgClient,
  sqlite: Database.Database,
  from: string,
  to: string,
  columns: readonly string[],
): Promise<number> {
  const rows = sqlite
    .prepare(`SELECT ${columns.join(", ")} FROM ${from}`)
    .raw()
    .all() as unknown[][];
  for (let i = 0; i < rows.length; i += BATCH) {
    const batch = rows.slice(i, i + BATCH);
    const values = batch.map(
      (_, r) => `(${columns.map((__, c) => `$${r * columns.length + c + 1}`).join(", ")})`,
    );
    await client.query(
      `INSERT INTO ${to} (${columns.join(", ")}) VALUES ${values.join(", ")} ON CONFLICT DO NOTHING`,
      batch.flat(),
    );
  }
  return rows.length;
}
