/**
 * Accounts in PostgreSQL (`acct_…` tables), shared by every gateway process on one database. Each
 * method is one statement, so READ COMMITTED is enough: an `UPDATE … WHERE <limit not reached>`
 * that finds its row locked by another process waits, then re-checks the condition on the row as
 * that process left it (free-tier counters and the promo budget never pass their limits).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { join } from "node:path";
import type { PgDatabase } from "../../src/shared/index.js";
import { copyTable, openSqliteForCopy } from "../sqlite-copy.js";
import {
  type AccountKind,
  type AccountRow,
  type AccountStore,
  type BusinessTier,
  type Caps,
  checkCreditLimit,
  newBusinessKey,
  FREE_REQUESTS_PER_DAY,
  hashKey,
  type NewTopup,
  type SessionPrefix,
  roomOf,
  SqliteAccountStore,
  type TopupRow,
  utcDay,
} from "./accounts.js";

const MIGRATIONS = [
  {
    version: 1,
    sql: `
CREATE TABLE acct_accounts (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, name TEXT, parent_id TEXT,
  created_at BIGINT NOT NULL, free_day TEXT, free_used INTEGER NOT NULL DEFAULT 0,
  cap_per_request_sat BIGINT, cap_per_day_sat BIGINT, cap_lifetime_sat BIGINT,
  spent_day TEXT, spent_day_sat BIGINT NOT NULL DEFAULT 0, spent_lifetime_sat BIGINT NOT NULL DEFAULT 0,
  tier TEXT);
CREATE INDEX acct_accounts_parent ON acct_accounts (parent_id, created_at);
CREATE TABLE acct_promo_days (day TEXT PRIMARY KEY, sats BIGINT NOT NULL);
CREATE TABLE acct_topups (
  quote TEXT PRIMARY KEY, account_id TEXT NOT NULL, mint TEXT NOT NULL, amount BIGINT NOT NULL,
  request TEXT NOT NULL, expiry BIGINT, state TEXT NOT NULL, created_at BIGINT NOT NULL);
-- Every authenticated request looks for its account's pending top-ups; the poll for all of them.
CREATE INDEX acct_topups_pending ON acct_topups (account_id, created_at) WHERE state = 'pending';
CREATE INDEX acct_topups_pending_all ON acct_topups (created_at) WHERE state = 'pending';
CREATE TABLE acct_token_formats (account_id TEXT PRIMARY KEY, format TEXT NOT NULL);`,
  },
  {
    // Metered business keys: existing keys are prepaid (limit 0).
    version: 2,
    sql: "ALTER TABLE acct_accounts ADD COLUMN credit_limit_sat BIGINT NOT NULL DEFAULT 0;",
  },
];

const ACCOUNT_COLUMNS = [
  "id",
  "kind",
  "key_hash",
  "name",
  "parent_id",
  "created_at",
  "free_day",
  "free_used",
  "cap_per_request_sat",
  "cap_per_day_sat",
  "cap_lifetime_sat",
  "spent_day",
  "spent_day_sat",
  "spent_lifetime_sat",
  "tier",
  "credit_limit_sat",
] as const;

/** key → root in one statement (depth-bounded: a corrupted parent loop cannot spin forever). */
const CHAIN = `WITH RECURSIVE chain AS (
  SELECT a.*, 0 AS depth FROM acct_accounts a WHERE a.id = $1
  UNION ALL
  SELECT p.*, c.depth + 1 FROM acct_accounts p JOIN chain c ON p.id = c.parent_id WHERE c.depth < 64)`;

const newKey = (prefix: string) => `${prefix}${randomBytes(24).toString("base64url")}`;

const strip = (r: AccountRow & { depth?: number }): AccountRow => {
  const { depth: _depth, ...row } = r;
  return row;
};

export class PgAccountStore implements AccountStore {
  private constructor(private readonly db: PgDatabase) {}

  static async open(db: PgDatabase): Promise<PgAccountStore> {
    await db.migrate("accounts", MIGRATIONS);
    return new PgAccountStore(db);
  }

  private async insert(
    kind: AccountKind,
    keyHash: string,
    name: string | null,
    parentId: string | null,
    caps: Caps = {},
    tier: BusinessTier | null = null,
    creditLimitSat = 0,
  ): Promise<string> {
    const id = randomUUID();
    await this.db.query(
      `INSERT INTO acct_accounts (id, kind, key_hash, name, parent_id, created_at, cap_per_request_sat,
         cap_per_day_sat, cap_lifetime_sat, tier, credit_limit_sat)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        id,
        kind,
        keyHash,
        name,
        parentId,
        Date.now(),
        caps.perRequestSat ?? null,
        caps.perDaySat ?? null,
        caps.lifetimeSat ?? null,
        tier,
        creditLimitSat,
      ],
    );
    return id;
  }

  async registerBusiness(
    name: string | null,
    tier: BusinessTier,
    creditLimitSat = 0,
  ): Promise<{ id: string; key: string }> {
    checkCreditLimit(creditLimitSat);
    const key = newBusinessKey(name);
    return { id: await this.insert("rc", hashKey(key), name, null, {}, tier, creditLimitSat), key };
  }

  async setCreditLimit(id: string, creditLimitSat: number): Promise<boolean> {
    checkCreditLimit(creditLimitSat);
    const done = await this.db.query(
      `UPDATE acct_accounts SET credit_limit_sat = $2
       WHERE id = $1 AND tier IS NOT NULL AND parent_id IS NULL RETURNING id`,
      [id, creditLimitSat],
    );
    return done.length === 1;
  }

  async register(
    name: string | null,
    parentId: string | null = null,
    caps: Caps = {},
  ): Promise<{ id: string; key: string }> {
    const key = newKey("rc_");
    return { id: await this.insert("rc", hashKey(key), name, parentId, caps), key };
  }

  createChild(parentId: string, name: string | null, caps: Caps): Promise<{ id: string; key: string }> {
    return this.register(name, parentId, caps);
  }

  async setCaps(id: string, caps: Caps): Promise<void> {
    await this.db.query(
      "UPDATE acct_accounts SET cap_per_request_sat = $1, cap_per_day_sat = $2, cap_lifetime_sat = $3 WHERE id = $4",
      [caps.perRequestSat ?? null, caps.perDaySat ?? null, caps.lifetimeSat ?? null, id],
    );
  }

  async children(parentId: string): Promise<AccountRow[]> {
    return this.db.query<AccountRow>(
      "SELECT * FROM acct_accounts WHERE parent_id = $1 ORDER BY created_at, id",
      [parentId],
    );
  }

  private async chain(id: string): Promise<AccountRow[]> {
    const rows = await this.db.query<AccountRow>(`${CHAIN} SELECT * FROM chain ORDER BY depth`, [id]);
    return rows.map(strip);
  }

  async payer(id: string): Promise<AccountRow> {
    const chain = await this.chain(id);
    return chain[chain.length - 1]!;
  }

  async createSession(prefix: SessionPrefix = "sk-"): Promise<{ id: string; key: string }> {
    const key = newKey(prefix);
    return { id: await this.insert("session", hashKey(key), null, null), key };
  }

  async sessionForToken(token: string): Promise<{ id: string; created: boolean }> {
    const keyHash = hashKey(token);
    // A second process inserting the same token waits on the unique key, then does nothing: one
    // session, created (and claimed) once.
    const made = await this.db.query<{ id: string }>(
      `INSERT INTO acct_accounts (id, kind, key_hash, created_at) VALUES ($1, 'session', $2, $3)
       ON CONFLICT (key_hash) DO NOTHING RETURNING id`,
      [randomUUID(), keyHash, Date.now()],
    );
    if (made[0]) return { id: made[0].id, created: true };
    const row = await this.db.query<{ id: string }>("SELECT id FROM acct_accounts WHERE key_hash = $1", [
      keyHash,
    ]);
    return { id: row[0]!.id, created: false };
  }

  async forgetTokenSession(id: string): Promise<void> {
    await this.db.query("DELETE FROM acct_accounts WHERE id = $1 AND spent_lifetime_sat = 0", [id]);
  }

  async byKey(key: string): Promise<AccountRow | undefined> {
    return (
      await this.db.query<AccountRow>("SELECT * FROM acct_accounts WHERE key_hash = $1", [hashKey(key)])
    )[0];
  }

  async byId(id: string): Promise<AccountRow | undefined> {
    return (await this.db.query<AccountRow>("SELECT * FROM acct_accounts WHERE id = $1", [id]))[0];
  }

  async takeFree(id: string): Promise<boolean> {
    const rows = await this.db.query(
      `UPDATE acct_accounts
         SET free_used = CASE WHEN free_day = $2 THEN free_used + 1 ELSE 1 END, free_day = $2
       WHERE id = $1 AND kind = 'rc' AND tier IS NULL AND (free_day IS DISTINCT FROM $2 OR free_used < $3)
       RETURNING id`,
      [id, utcDay(), FREE_REQUESTS_PER_DAY],
    );
    return rows.length === 1;
  }

  async returnFree(id: string): Promise<void> {
    await this.db.query(
      "UPDATE acct_accounts SET free_used = GREATEST(0, free_used - 1) WHERE id = $1 AND free_day = $2",
      [id, utcDay()],
    );
  }

  async takePromo(sats: number, budgetSat: number): Promise<boolean> {
    // The day's row is inserted or, when it exists, locked and re-checked against the budget.
    const rows = await this.db.query(
      `INSERT INTO acct_promo_days AS p (day, sats) SELECT $1, $2::bigint WHERE $2::bigint <= $3::bigint
       ON CONFLICT (day) DO UPDATE SET sats = p.sats + excluded.sats WHERE p.sats + excluded.sats <= $3::bigint
       RETURNING sats`,
      [utcDay(), sats, budgetSat],
    );
    return rows.length === 1;
  }

  async returnPromo(sats: number, day: string): Promise<void> {
    if (sats <= 0) return;
    await this.db.query("UPDATE acct_promo_days SET sats = GREATEST(0, sats - $1) WHERE day = $2", [
      sats,
      day,
    ]);
  }

  async spendRoom(id: string): Promise<{ room: number; reason?: string }> {
    return roomOf(await this.chain(id));
  }

  async recordSpend(id: string, sats: number): Promise<void> {
    // One UPDATE of the whole chain: each row's new totals are computed from the row as it is when
    // locked, so two processes recording at once both count.
    await this.db.query(
      `${CHAIN}
       UPDATE acct_accounts
         SET spent_day_sat = CASE WHEN spent_day = $2 THEN spent_day_sat + $3 ELSE $3 END, spent_day = $2,
             spent_lifetime_sat = spent_lifetime_sat + $3
       WHERE id IN (SELECT id FROM chain)`,
      [id, utcDay(), sats],
    );
  }

  async noteTokenFormat(id: string, format: "A" | "B"): Promise<void> {
    await this.db.query(
      "INSERT INTO acct_token_formats (account_id, format) VALUES ($1, $2) ON CONFLICT DO NOTHING",
      [id, format],
    );
  }

  async tokenFormat(id: string): Promise<"A" | "B"> {
    const rows = await this.db.query<{ format: "A" | "B" }>(
      "SELECT format FROM acct_token_formats WHERE account_id = $1",
      [id],
    );
    return rows[0]?.format ?? "B";
  }

  async addTopup(t: NewTopup): Promise<void> {
    await this.db.query(
      `INSERT INTO acct_topups (quote, account_id, mint, amount, request, expiry, state, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)`,
      [t.quote, t.accountId, t.mint, t.amount, t.request, t.expiry, Date.now()],
    );
  }

  async pendingTopups(accountId?: string, sinceMs = 0): Promise<TopupRow[]> {
    return accountId
      ? this.db.query<TopupRow>(
          "SELECT * FROM acct_topups WHERE state = 'pending' AND created_at >= $1 AND account_id = $2",
          [sinceMs, accountId],
        )
      : this.db.query<TopupRow>("SELECT * FROM acct_topups WHERE state = 'pending' AND created_at >= $1", [
          sinceMs,
        ]);
  }

  async topup(quote: string): Promise<TopupRow | undefined> {
    return (await this.db.query<TopupRow>("SELECT * FROM acct_topups WHERE quote = $1", [quote]))[0];
  }

  async markTopupCredited(quote: string): Promise<boolean> {
    // Row lock + re-check: of processes racing, exactly one sees 'pending'.
    const rows = await this.db.query(
      "UPDATE acct_topups SET state = 'credited' WHERE quote = $1 AND state = 'pending' RETURNING quote",
      [quote],
    );
    return rows.length === 1;
  }

  close(): void {
    // The pool belongs to the composition root.
  }
}

/** The gateway's account store: PostgreSQL when the operator gave a database, else `accounts.sqlite`. */
export async function openAccountStore(dataDir: string, database?: PgDatabase): Promise<AccountStore> {
  return database ? PgAccountStore.open(database) : new SqliteAccountStore(join(dataDir, "accounts.sqlite"));
}

/** `gateway migrate-sqlite`: every row of `<dataDir>/accounts.sqlite` into the acct_ tables. */
export async function copyAccountsFromSqlite(
  dataDir: string,
  database: PgDatabase,
): Promise<{ accounts: number; promo_days: number; topups: number; token_formats: number }> {
  await database.migrate("accounts", MIGRATIONS);
  const path = join(dataDir, "accounts.sqlite");
  const sqlite = openSqliteForCopy(path);
  if (!sqlite) return { accounts: 0, promo_days: 0, topups: 0, token_formats: 0 };
  try {
    // Files from before business keys have no tier column, from before metered keys no credit
    // limit (their keys have none: the defaults).
    const cols = new Set(
      (sqlite.prepare("PRAGMA table_info(accounts)").all() as { name: string }[]).map((c) => c.name),
    );
    const columns = ACCOUNT_COLUMNS.filter((c) => cols.has(c));
    // One transaction: a copy that fails leaves nothing half-written (nothing is read: READ COMMITTED).
    return await database.tx(async (c) => ({
      accounts: await copyTable(c, sqlite, "accounts", "acct_accounts", columns),
      promo_days: await copyTable(c, sqlite, "promo_days", "acct_promo_days", ["day", "sats"]),
      topups: await copyTable(c, sqlite, "topups", "acct_topups", [
        "quote",
        "account_id",
        "mint",
        "amount",
        "request",
        "expiry",
        "state",
        "created_at",
      ]),
      token_formats: await copyTable(c, sqlite, "token_formats", "acct_token_formats", [
        "account_id",
        "format",
      ]),
    }));
  } finally {
    sqlite.close();
  }
}
