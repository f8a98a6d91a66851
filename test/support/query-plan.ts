/**
 * `EXPLAIN QUERY PLAN` of a statement's text, with every parameter bound to NULL (the plan does
 * not depend on the values): the steps that read a whole table instead of searching an index.
 */
import type Database from "better-sqlite3";

export function fullScans(db: Database.Database, sql: string): string[] {
  const named = [...new Set(sql.match(/@\w+/g) ?? [])].map((n) => n.slice(1));
  const positional = (sql.match(/\?/g) ?? []).length;
  const stmt = db.prepare(`EXPLAIN QUERY PLAN ${sql}`);
  const params: unknown[] = Array<null>(positional).fill(null);
  if (named.length > 0) params.push(Object.fromEntries(named.map((n) => [n, null])));
  const rows = stmt.all(...params) as { detail: string }[];
  // "SCAN t" reads every row; "SCAN t USING [COVERING] INDEX i" reads every index entry: both grow.
  return rows.map((r) => r.detail).filter((d) => /^SCAN /.test(d));
}

/** Each statement's full scans of the named tables, `{ sql: scans }` for those that have any. */
export function scansOfTables(
  db: Database.Database,
  statements: string[],
  tables: string[],
): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const sql of statements) {
    const bad = fullScans(db, sql).filter((d) => tables.some((t) => new RegExp(`^SCAN ${t}\\b`).test(d)));
    if (bad.length > 0) out[sql] = bad;
  }
  return out;
}
