/**
 * `owlrun-mcp gateway migrate-sqlite --from <data dir> --database-url …`: moves a stopped SQLite
 * gateway (`<data>/gateway`) and its bundled mint (`<data>/mint`) into PostgreSQL.
 *
 * All or nothing: every component's copy step runs inside ONE PostgreSQL transaction
 * (`PgDatabase.atomically`), so a failure anywhere — a refused check, a broken connection, a
 * killed process — leaves the target exactly as it was, and running again is always safe. (The
 * alternative, resumable per-component copies, would leave a target a gateway could start on
 * half-filled; the books are only whole when every store is.) A target that already holds a
 * gateway is refused, so a second run after success copies nothing.
 *
 * Checked before: no process has the SQLite files open, the SQLite ledger sums to zero, no wallet
 * operation is in flight, and the ecash asset equals the wallet's proofs. Checked after, inside
 * the transaction: row counts per table equal SQLite's, the PostgreSQL books equal SQLite's
 * account by account, the pool holds the same proofs, and the files are still not in use.
 */
import { join } from "node:path";
import type { PgClient, PgDatabase } from "../src/shared/index.js";
import { copyJobLogFromSqlite } from "./api/joblog.js";
import { copyBroadcastsFromSqlite } from "./broadcasts/index.js";
import { copyLedgerFromSqlite, imbalanceOf } from "./ledger/index.js";
import { copyMarketFromSqlite } from "./market/index.js";
import {
  ecashOf,
  GATEWAY_DATA_TABLES,
  MigrationRefusedError,
  type ProofStateRow,
  readSqliteBooks,
  refuseIfInUse,
  refuseOpenBooks,
  type SqliteBooks,
  sqliteCounts,
  sqliteFilesOf,
} from "./migrate-checks.js";
import { copyMintFromSqlite } from "./mint/index.js";
import { copyAccountsFromSqlite } from "./payments/accounts-pg.js";
import { copyOneShotFromSqlite, copyPoolFromSqlite } from "./payments/copy-sqlite.js";
import { copyPayoutsFromSqlite } from "./payments/payout-store.js";
import { copyRoutingFromSqlite } from "./routing/index.js";

export { MigrationRefusedError } from "./migrate-checks.js";

export interface MigrationReport {
  /** rows per PostgreSQL table (each equal to its SQLite table's) */
  rows: { table: string; rows: number }[];
  /** ledger accounts compared one by one */
  accounts: number;
  /** the ecash asset, equal to the pool's unspent proofs before and after */
  ecashMsat: number;
  /** the pool's proofs ready to spend */
  proofs: number;
  /** holds still open (requests in flight when the gateway stopped; the sweeper settles them) */
  openHolds: number;
}

/** Moves the SQLite gateway of `root` into `database`; throws without writing anything on any mismatch. */
export async function migrateSqliteGateway(root: string, database: PgDatabase): Promise<MigrationReport> {
  const gatewayDir = join(root, "gateway");
  const files = sqliteFilesOf(root);
  if (!files.some((f) => f.endsWith("ledger.sqlite")))
    throw new MigrationRefusedError(
      `no SQLite gateway in ${root} (expected ${join(gatewayDir, "ledger.sqlite")})`,
    );
  refuseIfInUse(files);
  const books = readSqliteBooks(gatewayDir);
  refuseOpenBooks(books);
  const expected = sqliteCounts(root);

  return database.atomically(async (db) => {
    // One migration at a time; a second waits, then finds the gateway and refuses.
    await db.query("SELECT pg_advisory_xact_lock(hashtext('owlrun:migrate-sqlite'))");
    await refuseOccupiedTarget(db, books);
    await copyLedgerFromSqlite(gatewayDir, db);
    await copyPoolFromSqlite(gatewayDir, db);
    await copyOneShotFromSqlite(gatewayDir, db);
    await copyAccountsFromSqlite(gatewayDir, db);
    await copyRoutingFromSqlite(gatewayDir, db);
    await copyPayoutsFromSqlite(gatewayDir, db);
    await copyBroadcastsFromSqlite(gatewayDir, db);
    await copyJobLogFromSqlite(gatewayDir, db);
    await copyMarketFromSqlite(gatewayDir, db);
    await copyMintFromSqlite(root, db);

    const rows: MigrationReport["rows"] = [];
    for (const [pair, want] of expected) {
      const [got] = await db.query<{ n: number }>(
        `SELECT COUNT(*) AS n FROM ${pair.pg}${pair.pgWhere ? ` WHERE ${pair.pgWhere}` : ""}`,
      );
      if (got!.n !== want)
        throw new MigrationRefusedError(
          `${pair.pg} has ${got!.n} rows after the copy, SQLite's ${pair.sqlite} has ${want}; nothing committed`,
        );
      const label = pair.pgWhere ? `${pair.pg} (${pair.sqlite})` : pair.pg;
      rows.push({ table: label, rows: want });
    }
    const checked = await checkPgBooks(db, books);
    // A gateway started on the SQLite files during the copy would have written what we did not copy.
    refuseIfInUse(files);
    return { rows, ...checked };
  });
}

/** Refuses a target that holds a gateway already, saying so when it is this very gateway. */
async function refuseOccupiedTarget(db: PgDatabase, books: SqliteBooks): Promise<void> {
  const occupied: string[] = [];
  for (const table of GATEWAY_DATA_TABLES) {
    const [exists] = await db.query<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [table]);
    if (!exists?.t) continue;
    const any = await db.query(`SELECT 1 FROM ${table} LIMIT 1`);
    if (any.length) occupied.push(table);
  }
  if (!occupied.length) return;
  const [seedTable] = await db.query<{ t: string | null }>("SELECT to_regclass('pool_seed')::text AS t");
  const [seed] = seedTable?.t
    ? await db.query<{ seed: string }>("SELECT seed FROM pool_seed WHERE id = 1")
    : [];
  if (books.seed !== undefined && seed?.seed === books.seed)
    throw new MigrationRefusedError(
      "this gateway was already migrated into that database (same wallet seed); nothing copied. Start it with --database-url",
    );
  throw new MigrationRefusedError(
    `the target database already holds a gateway (rows in ${occupied.join(", ")}); migrate into an empty database`,
  );
}

/** The PostgreSQL books equal the SQLite books account by account, and the pool the same proofs. */
async function checkPgBooks(db: PgDatabase, books: SqliteBooks): Promise<Omit<MigrationReport, "rows">> {
  return db.tx(async (c: PgClient) => {
    const r = await c.query<{ account: string; msat: number }>("SELECT account, msat FROM ledger_balances");
    const pg = new Map(r.rows.map((row) => [row.account, row.msat]));
    for (const [account, msat] of books.balances)
      if (pg.get(account) !== msat)
        throw new MigrationRefusedError(
          `ledger account ${account}: ${pg.get(account) ?? "missing"} msat in PostgreSQL, ${msat} in SQLite; nothing committed`,
        );
    if (pg.size !== books.balances.size || imbalanceOf(pg) !== 0)
      throw new MigrationRefusedError("the PostgreSQL ledger differs from SQLite's; nothing committed");
    const proofs = await c.query<ProofStateRow>(
      "SELECT state, COUNT(*) AS count, COALESCE(SUM(amount), 0) AS sat FROM pool_proofs GROUP BY state",
    );
    const pgProofs = new Map(proofs.rows.map((p) => [p.state, p]));
    for (const state of new Set([...books.proofs.keys(), ...pgProofs.keys()])) {
      const a = books.proofs.get(state) ?? { count: 0, sat: 0 };
      const b = pgProofs.get(state) ?? { count: 0, sat: 0 };
      if (a.count !== b.count || a.sat !== b.sat)
        throw new MigrationRefusedError(
          `pool proofs "${state}": ${b.count} (${b.sat} sat) in PostgreSQL, ${a.count} (${a.sat} sat) in SQLite; nothing committed`,
        );
    }
    const ecashMsat = ecashOf(pg);
    const available = pgProofs.get("available") ?? { count: 0, sat: 0 };
    if (ecashMsat !== available.sat * 1000)
      throw new MigrationRefusedError(
        `the PostgreSQL ecash asset (${ecashMsat} msat) differs from the pool's proofs (${available.sat * 1000} msat); nothing committed`,
      );
    const holds = await c.query<{ n: number }>(
      "SELECT COUNT(*) AS n FROM ledger_holds WHERE state = 'active'",
    );
    return { accounts: pg.size, ecashMsat, proofs: available.count, openHolds: holds.rows[0]!.n };
  });
}

/** The report an operator reads. */
export function formatMigrationReport(r: MigrationReport): string {
  const width = Math.max(...r.rows.map((x) => x.table.length));
  const lines = r.rows.filter((x) => x.rows > 0).map((x) => `  ${x.table.padEnd(width)}  ${x.rows}`);
  return [
    "copied (rows per table, each equal to SQLite's; empty tables not listed):",
    ...lines,
    `books: ${r.accounts} ledger accounts equal in PostgreSQL and SQLite, sum zero in both`,
    `ecash: asset ${r.ecashMsat / 1000} sat = ${r.proofs} pool proofs, before and after`,
    ...(r.openHolds
      ? [`open holds: ${r.openHolds} (requests in flight at the stop; settled by the sweeper)`]
      : []),
    "done: start the gateway with --database-url on the same data dir (keep <data>/mint/master-secret)",
    "",
  ].join("\n");
}
