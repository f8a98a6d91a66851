/**
 * The payout journal: one row per payout with its melt quote, written before any payment leaves.
 * `SqlitePayoutStore` (`payouts.sqlite`) is the embedded default; `PgPayoutStore` (`payouts_…`
 * tables) is shared by several gateway processes, which then run payouts under one lease so a
 * payout is started (and an open one resolved) by one process only.
 */
import { join } from "node:path";
import type { PgDatabase } from "../../src/shared/index.js";
import { type Db, openDatabase } from "../../src/shared/sqlite.js";
import { copyTable, openSqliteForCopy } from "../sqlite-copy.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS payouts (
  id TEXT PRIMARY KEY, node_id TEXT NOT NULL, address TEXT NOT NULL, mint TEXT NOT NULL, amount INTEGER NOT NULL,
  fee_reserve INTEGER NOT NULL, invoice TEXT NOT NULL, quote TEXT NOT NULL, state TEXT NOT NULL, fee INTEGER,
  preimage TEXT, error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS payouts_node ON payouts (node_id, created_at);
`;

const MIGRATIONS = [
  {
    version: 1,
    sql: `
CREATE TABLE payouts_journal (
  id TEXT PRIMARY KEY, node_id TEXT NOT NULL, address TEXT NOT NULL, mint TEXT NOT NULL, amount BIGINT NOT NULL,
  fee_reserve BIGINT NOT NULL, invoice TEXT NOT NULL, quote TEXT NOT NULL, state TEXT NOT NULL, fee BIGINT,
  preimage TEXT, error TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX payouts_journal_node ON payouts_journal (node_id, created_at);
CREATE INDEX payouts_journal_open ON payouts_journal (created_at) WHERE state = 'paying';`,
  },
];

const COLUMNS = [
  "id",
  "node_id",
  "address",
  "mint",
  "amount",
  "fee_reserve",
  "invoice",
  "quote",
  "state",
  "fee",
  "preimage",
  "error",
  "created_at",
  "updated_at",
] as const;

export interface PayoutRow {
  id: string;
  node_id: string;
  address: string;
  mint: string;
  amount: number;
  fee_reserve: number;
  invoice: string;
  quote: string;
  state: "paying" | "paid" | "failed";
  fee: number | null;
  preimage: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
}

export type NewPayout = Pick<
  PayoutRow,
  "id" | "node_id" | "address" | "mint" | "amount" | "fee_reserve" | "invoice" | "quote"
>;
export type PayoutEnd = Partial<Pick<PayoutRow, "state" | "fee" | "preimage" | "error">>;

export interface PayoutStore {
  /** Journals a payout as "paying" (before its amount is set aside and the melt sent). */
  add(p: NewPayout): Promise<void>;
  /** Records how it ended. */
  update(id: string, fields: PayoutEnd): Promise<void>;
  get(id: string): Promise<PayoutRow | undefined>;
  history(nodeId: string, limit?: number): Promise<PayoutRow[]>;
  /** Payouts still "paying" (a lost answer, a PENDING melt, a restart). */
  open(): Promise<PayoutRow[]>;
  /**
   * Runs payout work only where no other process runs it now (undefined when one does): starting a
   * payout and resolving an open one are one process's job at a time. SQLite: one process, runs `fn`.
   */
  exclusively<T>(fn: () => Promise<T>): Promise<T | undefined>;
  close(): void;
}

const endFields = (fields: PayoutEnd) =>
  (Object.keys(fields) as (keyof PayoutEnd)[]).filter((k) =>
    ["state", "fee", "preimage", "error"].includes(k),
  );

export class SqlitePayoutStore implements PayoutStore {
  private readonly db: Db;

  constructor(path: string) {
    this.db = openDatabase(path, SCHEMA);
  }

  async add(p: NewPayout): Promise<void> {
    const now = Date.now();
    this.db
      .prepare(
        `INSERT INTO payouts (id, node_id, address, mint, amount, fee_reserve, invoice, quote, state, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'paying', ?, ?)`,
      )
      .run(p.id, p.node_id, p.address, p.mint, p.amount, p.fee_reserve, p.invoice, p.quote, now, now);
  }

  async update(id: string, fields: PayoutEnd): Promise<void> {
    const sets = endFields(fields).map((k) => `${k} = @${k}`);
    this.db
      .prepare(`UPDATE payouts SET ${sets.join(", ")}, updated_at = @now WHERE id = @id`)
      .run({ ...fields, id, now: Date.now() });
  }

  async get(id: string): Promise<PayoutRow | undefined> {
    return this.db.prepare("SELECT * FROM payouts WHERE id = ?").get(id) as PayoutRow | undefined;
  }

  async history(nodeId: string, limit = 20): Promise<PayoutRow[]> {
    return this.db
      .prepare("SELECT * FROM payouts WHERE node_id = ? ORDER BY created_at DESC LIMIT ?")
      .all(nodeId, limit) as PayoutRow[];
  }

  async open(): Promise<PayoutRow[]> {
    return this.db.prepare("SELECT * FROM payouts WHERE state = 'paying'").all() as PayoutRow[];
  }

  exclusively<T>(fn: () => Promise<T>): Promise<T | undefined> {
    return fn();
  }

  close(): void {
    this.db.close();
  }
}

export class PgPayoutStore implements PayoutStore {
  private constructor(private readonly db: PgDatabase) {}

  static async open(db: PgDatabase): Promise<PgPayoutStore> {
    await db.migrate("payouts", MIGRATIONS);
    return new PgPayoutStore(db);
  }

  async add(p: NewPayout): Promise<void> {
    const now = Date.now();
    await this.db.query(
      `INSERT INTO payouts_journal (id, node_id, address, mint, amount, fee_reserve, invoice, quote, state, created_at,
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'paying', $9, $9)`,
      [p.id, p.node_id, p.address, p.mint, p.amount, p.fee_reserve, p.invoice, p.quote, now],
    );
  }

  async update(id: string, fields: PayoutEnd): Promise<void> {
    const keys = endFields(fields);
    const sets = keys.map((k, i) => `${k} = $${i + 3}`);
    await this.db.query(
      `UPDATE payouts_journal SET ${[...sets, "updated_at = $2"].join(", ")} WHERE id = $1`,
      [id, Date.now(), ...keys.map((k) => fields[k] ?? null)],
    );
  }

  async get(id: string): Promise<PayoutRow | undefined> {
    return (await this.db.query<PayoutRow>("SELECT * FROM payouts_journal WHERE id = $1", [id]))[0];
  }

  history(nodeId: string, limit = 20): Promise<PayoutRow[]> {
    return this.db.query<PayoutRow>(
      "SELECT * FROM payouts_journal WHERE node_id = $1 ORDER BY created_at DESC LIMIT $2",
      [nodeId, limit],
    );
  }

  open(): Promise<PayoutRow[]> {
    return this.db.query<PayoutRow>("SELECT * FROM payouts_journal WHERE state = 'paying'");
  }

  exclusively<T>(fn: () => Promise<T>): Promise<T | undefined> {
    return this.db.exclusively("owlrun:payouts", fn);
  }

  close(): void {
    // The pool belongs to the composition root.
  }
}

export async function openPayoutStore(dataDir: string, database?: PgDatabase): Promise<PayoutStore> {
  return database ? PgPayoutStore.open(database) : new SqlitePayoutStore(join(dataDir, "payouts.sqlite"));
}

/** `gateway migrate-sqlite`: every payout of `<dataDir>/payouts.sqlite` (ids and states kept). */
export async function copyPayoutsFromSqlite(
  dataDir: string,
  database: PgDatabase,
): Promise<{ payouts: number }> {
  await database.migrate("payouts", MIGRATIONS);
  const sqlite = openSqliteForCopy(join(dataDir, "payouts.sqlite"));
  if (!sqlite) return { payouts: 0 };
  try {
    return { payouts: await database.tx((c) => copyTable(c, sqlite, "payouts", "payouts_journal", COLUMNS)) };
  } finally {
    sqlite.close();
  }
}
