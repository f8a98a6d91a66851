/**
 * `owlrun-mcp gateway migrate-sqlite`, the market's part: every row of `<data dir>/market.sqlite`
 * into the `market_…` tables, ids kept (message ids too, and their sequence moved past them), in one
 * transaction, so a failed copy leaves nothing behind. A target that already holds market rows is
 * refused rather than merged: two markets' tasks would not match one ledger's escrow.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import type { PgClient, PgDatabase } from "../../src/shared/index.js";
import { MARKET_MIGRATIONS } from "./pg-store.js";

export interface MarketCopyCounts {
  tasks: number;
  quotes: number;
  messages: number;
  deliveries: number;
  collections: number;
}

/** Source table → target table and columns, in an order that keeps references resolvable. */
const TABLES: readonly { from: keyof MarketCopyCounts; to: string; columns: readonly string[] }[] = [
  {
    from: "tasks",
    to: "market_tasks",
    columns: [
      "id",
      "buyer_id",
      "title",
      "description",
      "budget_sats",
      "state",
      "fee_sats",
      "quote_id",
      "worker_id",
      "price_sats",
      "escrow",
      "deadline_at",
      "review_ends_at",
      "dispute_reason",
      "created_at",
      "updated_at",
      "delivered_at",
      "closed_at",
    ],
  },
  {
    from: "quotes",
    to: "market_quotes",
    columns: [
      "id",
      "task_id",
      "worker_id",
      "price_sats",
      "description",
      "state",
      "fee_sats",
      "created_at",
      "updated_at",
    ],
  },
  { from: "messages", to: "market_messages", columns: ["id", "quote_id", "author_id", "body", "created_at"] },
  {
    from: "deliveries",
    to: "market_deliveries",
    columns: ["task_id", "worker_id", "filename", "content", "size_bytes", "sha256", "notes", "created_at"],
  },
  {
    from: "collections",
    to: "market_collections",
    columns: [
      "id",
      "account_id",
      "mint",
      "invoice",
      "quote",
      "amount",
      "fee_reserve",
      "state",
      "fee",
      "preimage",
      "error",
      "created_at",
      "updated_at",
    ],
  },
];

export async function copyMarketFromSqlite(dataDir: string, database: PgDatabase): Promise<MarketCopyCounts> {
  const counts: MarketCopyCounts = { tasks: 0, quotes: 0, messages: 0, deliveries: 0, collections: 0 };
  await database.migrate("market", MARKET_MIGRATIONS);
  const path = join(dataDir, "market.sqlite");
  if (!existsSync(path)) return counts; // this gateway never opened its market
  const source = new Database(path, { readonly: true, fileMustExist: true });
  try {
    // READ COMMITTED: the target is checked empty and filled in one transaction; a second copy
    // running at once fails on the primary keys and rolls back whole.
    await database.tx(async (c) => {
      await refuseNonEmpty(c);
      for (const t of TABLES) counts[t.from] = await copyTable(source, c, t.from, t.to, t.columns);
      await c.query(
        "SELECT setval(pg_get_serial_sequence('market_messages', 'id'), GREATEST((SELECT MAX(id) FROM market_messages), 1), (SELECT COUNT(*) > 0 FROM market_messages))",
      );
    });
  } finally {
    source.close();
  }
  return counts;
}

async function refuseNonEmpty(c: PgClient): Promise<void> {
  for (const t of TABLES) {
    const { rows } = await c.query(`SELECT 1 FROM ${t.to} LIMIT 1`);
    if (rows.length)
      throw new Error(`the PostgreSQL market is not empty (${t.to} has rows); refusing to copy over it`);
  }
}

/** Row by row (a delivery may be megabytes): the source is read with an iterator, not at once. */
async function copyTable(
  source: Database.Database,
  c: PgClient,
  from: string,
  to: string,
  columns: readonly string[],
): Promise<number> {
  const insert = `INSERT INTO ${to} (${columns.join(", ")}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(", ")})`;
  let n = 0;
  for (const row of source.prepare(`SELECT ${columns.join(", ")} FROM ${from}`).iterate() as Iterable<
    Record<string, unknown>
  >) {
    await c.query(
      insert,
      columns.map((k) => row[k]),
    );
    n++;
  }
  return n;
}
