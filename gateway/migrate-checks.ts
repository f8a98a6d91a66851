/**
 * The checks around `owlrun-mcp gateway migrate-sqlite`: that no process has the SQLite files open,
 * that the SQLite books close before anything is copied, and which SQLite table lands in which
 * PostgreSQL table (so the counts can be compared afterwards, independently of the copy steps).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { AppError } from "../src/shared/index.js";
import { imbalanceOf } from "./ledger/index.js";

/** The migration stopped before committing anything: the message says why and what to do. */
export class MigrationRefusedError extends AppError {
  constructor(message: string) {
    super(message, "migration_refused", 409);
  }
}

/** A SQLite table, its PostgreSQL twin, and the filters that make their rows the same set. */
export interface TablePair {
  /** relative to the `--from` data dir */
  file: string;
  sqlite: string;
  pg: string;
  sqliteWhere?: string;
  pgWhere?: string;
}

const gw = (file: string) => join("gateway", file);
const pairs = (file: string, tables: [sqlite: string, pg: string][]): TablePair[] =>
  tables.map(([sqlite, pg]) => ({ file, sqlite, pg }));

/** Every table the copy steps move, by file. */
export const TABLE_PAIRS: readonly TablePair[] = [
  ...pairs(gw("ledger.sqlite"), [
    ["ledger_tx", "ledger_tx"],
    ["ledger_entries", "ledger_entries"],
    ["balances", "ledger_balances"],
    ["holds", "ledger_holds"],
    ["earnings_daily", "ledger_earnings_daily"],
    ["earnings_total", "ledger_earnings_total"],
  ]),
  ...pairs(gw("wallet/wallet.sqlite"), [
    ["proofs", "pool_proofs"],
    ["counters", "pool_counters"],
    ["change", "pool_change"],
  ]),
  // Ranges a finished operation resolved are history the pool does not keep.
  {
    file: gw("wallet/wallet.sqlite"),
    sqlite: "reservations",
    sqliteWhere: "resolved = 0",
    pg: "pool_reservations",
  },
  ...pairs(gw("payments.sqlite"), [
    ["oneshot", "oneshot_credentials"],
    ["topup_claims", "oneshot_topup_claims"],
  ]),
  ...pairs(gw("accounts.sqlite"), [
    ["accounts", "acct_accounts"],
    ["promo_days", "acct_promo_days"],
    ["topups", "acct_topups"],
    ["token_formats", "acct_token_formats"],
  ]),
  ...pairs(gw("routing.sqlite"), [
    ["provider_keys", "routing_provider_keys"],
    ["nodes", "routing_nodes"],
    ["disputes", "routing_disputes"],
    ["free_jobs", "routing_free_jobs"],
    ["failures", "routing_failures"],
    ["node_days", "routing_node_days"],
  ]),
  ...pairs(gw("payouts.sqlite"), [["payouts", "payouts_journal"]]),
  ...pairs(gw("broadcasts.sqlite"), [["broadcasts", "broadcasts_messages"]]),
  ...pairs(gw("jobs.sqlite"), [["jobs", "joblog_jobs"]]),
  ...pairs(gw("market.sqlite"), [
    ["tasks", "market_tasks"],
    ["quotes", "market_quotes"],
    ["messages", "market_messages"],
    ["deliveries", "market_deliveries"],
    ["collections", "market_collections"],
  ]),
  ...pairs(join("mint", "mint.sqlite"), [
    ["keysets", "mint_keysets"],
    ["promises", "mint_promises"],
    ["mint_quotes", "mint_mint_quotes"],
    ["melt_quotes", "mint_melt_quotes"],
    ["cached_responses", "mint_cached_responses"],
  ]),
  // Spent and pending proofs share one PostgreSQL table, told apart by state.
  { file: join("mint", "mint.sqlite"), sqlite: "proofs_used", pg: "mint_proofs", pgWhere: "state = 'SPENT'" },
  {
    file: join("mint", "mint.sqlite"),
    sqlite: "proofs_pending",
    pg: "mint_proofs",
    pgWhere: "state = 'PENDING'",
  },
];

/**
 * Tables that hold a gateway's data (not what a bare start writes, such as the mint's keysets):
 * a target with a row in any of them already holds a gateway.
 */
export const GATEWAY_DATA_TABLES = [
  "ledger_tx",
  "ledger_balances",
  "pool_proofs",
  "pool_change",
  "acct_accounts",
  "oneshot_credentials",
  "routing_provider_keys",
  "routing_nodes",
  "market_tasks",
  "mint_promises",
  "mint_proofs",
  "payouts_journal",
  "joblog_jobs",
] as const;

/** Every SQLite file of the data dir a gateway (and its bundled mint) writes. */
export function sqliteFilesOf(root: string): string[] {
  const files: string[] = [];
  const gatewayDir = join(root, "gateway");
  if (existsSync(gatewayDir))
    for (const f of readdirSync(gatewayDir)) if (f.endsWith(".sqlite")) files.push(join(gatewayDir, f));
  for (const f of [join(gatewayDir, "wallet", "wallet.sqlite"), join(root, "mint", "mint.sqlite")])
    if (existsSync(f)) files.push(f);
  return files;
}

/**
 * Refuses while any process has one of the files open. A WAL connection holds a shared lock on its
 * database file for as long as it is open, so an exclusive lock taken without waiting succeeds only
 * when no gateway, mint or CLI command has the file open (released at once; the schema is untouched).
 */
export function refuseIfInUse(files: readonly string[]): void {
  for (const file of files) {
    const db = new Database(file, { fileMustExist: true, timeout: 0 });
    try {
      db.pragma("locking_mode = EXCLUSIVE");
      db.exec("BEGIN EXCLUSIVE");
      db.exec("ROLLBACK");
    } catch (err) {
      if ((err as { code?: string }).code === "SQLITE_BUSY")
        throw new MigrationRefusedError(
          `${file} is open in another process: stop the SQLite gateway (and any owlrun-mcp command on this data dir) before migrating`,
        );
      throw err;
    } finally {
      db.close();
    }
  }
}

function readOnly<T>(file: string, fn: (db: Database.Database) => T): T {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return fn(db);
  } finally {
    db.close();
  }
}

function hasTable(db: Database.Database, table: string): boolean {
  return !!db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(table);
}

/** Rows of each pair's SQLite table (0 when the file or the table does not exist). */
export function sqliteCounts(root: string): Map<TablePair, number> {
  const counts = new Map<TablePair, number>();
  for (const p of TABLE_PAIRS) {
    const file = join(root, p.file);
    counts.set(
      p,
      existsSync(file)
        ? readOnly(file, (db) =>
            hasTable(db, p.sqlite)
              ? (
                  db
                    .prepare(
                      `SELECT COUNT(*) AS n FROM ${p.sqlite}${p.sqliteWhere ? ` WHERE ${p.sqliteWhere}` : ""}`,
                    )
                    .get() as { n: number }
                ).n
              : 0,
          )
        : 0,
    );
  }
  return counts;
}

/** The gateway's books as its SQLite files hold them. */
export interface SqliteBooks {
  /** every balance row, zero ones included */
  balances: Map<string, number>;
  imbalanceMsat: number;
  /** the ledger's ecash asset (sum of `asset:ecash:*`) */
  ecashMsat: number;
  /** the wallet's proofs by state: count and sats */
  proofs: Map<string, { count: number; sat: number }>;
  /** the wallet seed (undefined when the wallet was never created) */
  seed: string | undefined;
}

export function readSqliteBooks(gatewayDir: string): SqliteBooks {
  const ledgerFile = join(gatewayDir, "ledger.sqlite");
  const rows = existsSync(ledgerFile)
    ? readOnly(ledgerFile, (db) => db.prepare("SELECT account, msat FROM balances").all() as BalanceRow[])
    : [];
  const balances = new Map(rows.map((r) => [r.account, r.msat]));
  const walletFile = join(gatewayDir, "wallet", "wallet.sqlite");
  const proofRows = existsSync(walletFile)
    ? readOnly(
        walletFile,
        (db) =>
          db
            .prepare(
              "SELECT state, COUNT(*) AS count, COALESCE(SUM(amount), 0) AS sat FROM proofs GROUP BY state",
            )
            .all() as ProofStateRow[],
      )
    : [];
  return {
    balances,
    imbalanceMsat: imbalanceOf(balances),
    ecashMsat: ecashOf(balances),
    proofs: new Map(proofRows.map((r) => [r.state, { count: r.count, sat: r.sat }])),
    seed: readSeed(gatewayDir),
  };
}

interface BalanceRow {
  account: string;
  msat: number;
}
export interface ProofStateRow {
  state: string;
  count: number;
  sat: number;
}

export function ecashOf(balances: Map<string, number>): number {
  let msat = 0;
  for (const [account, v] of balances) if (account.startsWith("asset:ecash:")) msat += v;
  return msat;
}

function readSeed(gatewayDir: string): string | undefined {
  const file = join(gatewayDir, "wallet", "wallet-seed");
  return existsSync(file) ? readFileSync(file, "utf8").trim() : undefined;
}

/** The books must close before a copy: balanced, nothing in flight, the asset exactly the proofs. */
export function refuseOpenBooks(books: SqliteBooks): void {
  if (books.imbalanceMsat !== 0)
    throw new MigrationRefusedError(
      `the SQLite ledger does not balance (assets minus claims = ${books.imbalanceMsat} msat); nothing copied`,
    );
  const reserved = books.proofs.get("reserved");
  if (reserved && reserved.count > 0)
    throw new MigrationRefusedError(
      `the SQLite wallet has ${reserved.count} proofs (${reserved.sat} sat) reserved by an operation that never finished: start the SQLite gateway once so it repairs them, stop it, then migrate`,
    );
  const availableMsat = (books.proofs.get("available")?.sat ?? 0) * 1000;
  if (books.ecashMsat !== availableMsat)
    throw new MigrationRefusedError(
      `the SQLite ledger's ecash asset (${books.ecashMsat} msat) differs from the wallet's proofs (${availableMsat} msat); nothing copied`,
    );
}
