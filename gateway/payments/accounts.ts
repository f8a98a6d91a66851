/**
 * Prepaid accounts: RouteCat `rc_` keys (free tier 10 requests/day, reset at midnight UTC),
 * Routstr `sk-` session keys made from deposited ecash, and raw cashu tokens used as the Bearer key
 * (the token becomes a session on first use). Keys are stored hashed and shown once.
 * Balances live in the ledger (`user:<id>`); this store knows identities, quotas and caps.
 *
 * `AccountStore` is the async interface (each method one atomic step); `SqliteAccountStore` is the
 * embedded default (`accounts.sqlite`), `PgAccountStore` (accounts-pg.ts) the one several gateway
 * processes share.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { SqliteStore } from "../../src/shared/sqlite.js";
import { type BusinessTier, checkCreditLimit, newBusinessKey } from "./business.js";

export {
  BUSINESS_TIERS,
  type BusinessTier,
  checkCreditLimit,
  DEFAULT_TIER_DISCOUNT_PCT,
  MAX_CREDIT_LIMIT_SAT,
  newBusinessKey,
} from "./business.js";

export const FREE_REQUESTS_PER_DAY = 10;

export type AccountKind = "rc" | "session";

export interface AccountRow {
  id: string;
  kind: AccountKind;
  name: string | null;
  parent_id: string | null;
  created_at: number;
  free_day: string | null;
  free_used: number;
  cap_per_request_sat: number | null;
  cap_per_day_sat: number | null;
  cap_lifetime_sat: number | null;
  spent_day: string | null;
  spent_day_sat: number;
  spent_lifetime_sat: number;
  /** a business key's tier; null for ordinary keys */
  tier: BusinessTier | null;
  /**
   * How far a business key may spend on credit (metered: billed on its monthly statement), in
   * sats; 0 = prepaid, as every other key.
   */
  credit_limit_sat: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS accounts (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, key_hash TEXT NOT NULL UNIQUE, name TEXT, parent_id TEXT,
  created_at INTEGER NOT NULL, free_day TEXT, free_used INTEGER NOT NULL DEFAULT 0,
  cap_per_request_sat INTEGER, cap_per_day_sat INTEGER, cap_lifetime_sat INTEGER,
  spent_day TEXT, spent_day_sat INTEGER NOT NULL DEFAULT 0, spent_lifetime_sat INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS promo_days (day TEXT PRIMARY KEY, sats INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS topups (
  quote TEXT PRIMARY KEY, account_id TEXT NOT NULL, mint TEXT NOT NULL, amount INTEGER NOT NULL,
  request TEXT NOT NULL, expiry INTEGER, state TEXT NOT NULL, created_at INTEGER NOT NULL);
-- Every authenticated request looks for its account's pending top-ups: only pending rows, by account.
CREATE INDEX IF NOT EXISTS topups_pending ON topups (account_id, created_at) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS token_formats (account_id TEXT PRIMARY KEY, format TEXT NOT NULL);
`;

export const hashKey = (key: string) => createHash("sha256").update(key).digest("hex");
export const utcDay = (t = Date.now()) => new Date(t).toISOString().slice(0, 10);
/** Session key prefixes: Routstr names its keys sk-, 402ai its prepaid tokens abl_. */
export type SessionPrefix = "sk-" | "abl_";

const newKey = (prefix: string) => `${prefix}${randomBytes(24).toString("base64url")}`;

export interface Caps {
  perRequestSat?: number | null;
  perDaySat?: number | null;
  lifetimeSat?: number | null;
}

export interface TopupRow {
  quote: string;
  account_id: string;
  mint: string;
  amount: number;
  request: string;
  expiry: number | null;
  state: string;
  created_at: number;
}

export interface NewTopup {
  quote: string;
  accountId: string;
  mint: string;
  amount: number;
  request: string;
  expiry: number | null;
}

/** Free requests of today's quota this key has left (0 for sessions and business keys). */
export function freeRemaining(a: AccountRow): number {
  if (a.kind !== "rc" || a.tier) return 0; // business keys are metered, not free
  return a.free_day === utcDay() ? Math.max(0, FREE_REQUESTS_PER_DAY - a.free_used) : FREE_REQUESTS_PER_DAY;
}

/** The room left under a key's caps and its ancestors', from the chain key → root. */
export function roomOf(chain: readonly AccountRow[], day = utcDay()): { room: number; reason?: string } {
  let room = Number.POSITIVE_INFINITY;
  let reason: string | undefined;
  for (const a of chain) {
    const spentToday = a.spent_day === day ? a.spent_day_sat : 0;
    const limits: [number | null, number, string][] = [
      [a.cap_per_request_sat, 0, "per-request cap"],
      [a.cap_per_day_sat, spentToday, "daily cap"],
      [a.cap_lifetime_sat, a.spent_lifetime_sat, "lifetime cap"],
    ];
    for (const [cap, spent, name] of limits) {
      if (cap !== null && cap - spent < room) {
        room = Math.max(0, cap - spent);
        reason = name;
      }
    }
  }
  return { room, reason };
}

/** Accounts, keys, caps, free-tier counters, the promo budget and Lightning top-ups. */
export interface AccountStore {
  /**
   * A business key (`bsvapi_sk_…`) of `tier`, made by the operator, shown once. With a credit limit
   * it is metered: used with no payment header, owing up to the limit, billed on its statement.
   */
  registerBusiness(
    name: string | null,
    tier: BusinessTier,
    creditLimitSat?: number,
  ): Promise<{ id: string; key: string }>;
  /** Changes a business key's credit limit; false when `id` is no business key. */
  setCreditLimit(id: string, creditLimitSat: number): Promise<boolean>;
  /** A new rc_ key; the key itself is returned once and never stored. */
  register(name: string | null, parentId?: string | null, caps?: Caps): Promise<{ id: string; key: string }>;
  /** A child rc_ key: spends its root's balance within its own caps (and every ancestor's). */
  createChild(parentId: string, name: string | null, caps: Caps): Promise<{ id: string; key: string }>;
  setCaps(id: string, caps: Caps): Promise<void>;
  children(parentId: string): Promise<AccountRow[]>;
  /** The account whose ledger balance a key spends: itself, or its topmost ancestor. */
  payer(id: string): Promise<AccountRow>;
  /** A new session key, `sk-` (Routstr) or `abl_` (402ai top-ups); funded by the caller through the ledger. */
  createSession(prefix?: SessionPrefix): Promise<{ id: string; key: string }>;
  /** The session behind a raw cashu token used as a Bearer key; `created` the first time only. */
  sessionForToken(token: string): Promise<{ id: string; created: boolean }>;
  /** Drops a token session whose claim failed, so the token can be tried again. */
  forgetTokenSession(id: string): Promise<void>;
  byKey(key: string): Promise<AccountRow | undefined>;
  byId(id: string): Promise<AccountRow | undefined>;
  /** Takes one free request of today's quota, atomically; false when none is left. */
  takeFree(id: string): Promise<boolean>;
  /** Gives back a free request that was not served (no provider). */
  returnFree(id: string): Promise<void>;
  /** Takes `sats` of today's gateway-wide free-tier budget, atomically; false past `budgetSat`. */
  takePromo(sats: number, budgetSat: number): Promise<boolean>;
  /** Gives back budget a free job took but did not use (same UTC day only). */
  returnPromo(sats: number, day: string): Promise<void>;
  /** How many sats this account (and its parents) may still spend on one request; Infinity if uncapped. */
  spendRoom(id: string): Promise<{ room: number; reason?: string }>;
  /** Records spending on the account and every parent (for caps). */
  recordSpend(id: string, sats: number): Promise<void>;
  /** The token format of a session's first funding (withdrawals answer in it); the first one stays. */
  noteTokenFormat(id: string, format: "A" | "B"): Promise<void>;
  tokenFormat(id: string): Promise<"A" | "B">;
  addTopup(t: NewTopup): Promise<void>;
  /** Pending top-ups (of one account), created at or after `sinceMs`. */
  pendingTopups(accountId?: string, sinceMs?: number): Promise<TopupRow[]>;
  topup(quote: string): Promise<TopupRow | undefined>;
  /** pending → credited, once (across processes too). */
  markTopupCredited(quote: string): Promise<boolean>;
  close(): void;
}

export class SqliteAccountStore extends SqliteStore implements AccountStore {
  constructor(path: string) {
    super(path, SCHEMA);
    // Added with business keys: older files get the column on open.
    const cols = this.db.prepare("PRAGMA table_info(accounts)").all() as { name: string }[];
    if (!cols.some((c) => c.name === "tier")) this.db.exec("ALTER TABLE accounts ADD COLUMN tier TEXT");
    // Added with metered business keys: older files' keys are prepaid (limit 0).
    if (!cols.some((c) => c.name === "credit_limit_sat"))
      this.db.exec("ALTER TABLE accounts ADD COLUMN credit_limit_sat INTEGER NOT NULL DEFAULT 0");
  }

  async registerBusiness(
    name: string | null,
    tier: BusinessTier,
    creditLimitSat = 0,
  ): Promise<{ id: string; key: string }> {
    checkCreditLimit(creditLimitSat);
    const key = newBusinessKey(name);
    return this.tx(() => {
      const id = this.insert("rc", hashKey(key), name, null, {});
      this.prepared("UPDATE accounts SET tier = ?, credit_limit_sat = ? WHERE id = ?").run(
        tier,
        creditLimitSat,
        id,
      );
      return { id, key };
    });
  }

  async setCreditLimit(id: string, creditLimitSat: number): Promise<boolean> {
    checkCreditLimit(creditLimitSat);
    return (
      this.prepared(
        "UPDATE accounts SET credit_limit_sat = ? WHERE id = ? AND tier IS NOT NULL AND parent_id IS NULL",
      ).run(creditLimitSat, id).changes === 1
    );
  }

  private insert(
    kind: AccountKind,
    keyHash: string,
    name: string | null,
    parentId: string | null,
    caps: Caps = {},
  ) {
    const id = randomUUID();
    this.prepared(
      `INSERT INTO accounts (id, kind, key_hash, name, parent_id, created_at, cap_per_request_sat, cap_per_day_sat, cap_lifetime_sat)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      id,
      kind,
      keyHash,
      name,
      parentId,
      Date.now(),
      caps.perRequestSat ?? null,
      caps.perDaySat ?? null,
      caps.lifetimeSat ?? null,
    );
    return id;
  }

  private registerNow(name: string | null, parentId: string | null, caps: Caps) {
    const key = newKey("rc_");
    return { id: this.insert("rc", hashKey(key), name, parentId, caps), key };
  }

  async register(
    name: string | null,
    parentId: string | null = null,
    caps: Caps = {},
  ): Promise<{ id: string; key: string }> {
    return this.registerNow(name, parentId, caps);
  }

  async createChild(parentId: string, name: string | null, caps: Caps): Promise<{ id: string; key: string }> {
    return this.registerNow(name, parentId, caps);
  }

  async setCaps(id: string, caps: Caps): Promise<void> {
    this.prepared(
      "UPDATE accounts SET cap_per_request_sat = ?, cap_per_day_sat = ?, cap_lifetime_sat = ? WHERE id = ?",
    ).run(caps.perRequestSat ?? null, caps.perDaySat ?? null, caps.lifetimeSat ?? null, id);
  }

  async children(parentId: string): Promise<AccountRow[]> {
    return this.prepared("SELECT * FROM accounts WHERE parent_id = ? ORDER BY created_at").all(
      parentId,
    ) as AccountRow[];
  }

  private row(id: string): AccountRow | undefined {
    return this.prepared("SELECT * FROM accounts WHERE id = ?").get(id) as AccountRow | undefined;
  }

  /** key → root, read in one go (no await between the reads). */
  private chain(id: string): AccountRow[] {
    const out: AccountRow[] = [];
    for (let a = this.row(id); a; a = a.parent_id ? this.row(a.parent_id) : undefined) out.push(a);
    return out;
  }

  async payer(id: string): Promise<AccountRow> {
    const chain = this.chain(id);
    return chain[chain.length - 1]!;
  }

  /**
   * A new session key (its balance is funded by the caller through the ledger): `sk-` as Routstr
   * names them, `abl_` for 402ai's prepaid top-up tokens. Keys are found by their hash, so every
   * prefix is accepted everywhere.
   */
  async createSession(prefix: SessionPrefix = "sk-"): Promise<{ id: string; key: string }> {
    const key = newKey(prefix);
    return { id: this.insert("session", hashKey(key), null, null), key };
  }

  async sessionForToken(token: string): Promise<{ id: string; created: boolean }> {
    const keyHash = hashKey(token);
    return this.tx(() => {
      const row = this.prepared("SELECT id FROM accounts WHERE key_hash = ?").get(keyHash) as
        { id: string } | undefined;
      if (row) return { id: row.id, created: false };
      return { id: this.insert("session", keyHash, null, null), created: true };
    });
  }

  async forgetTokenSession(id: string): Promise<void> {
    this.prepared("DELETE FROM accounts WHERE id = ? AND spent_lifetime_sat = 0").run(id);
  }

  async byKey(key: string): Promise<AccountRow | undefined> {
    return this.prepared("SELECT * FROM accounts WHERE key_hash = ?").get(hashKey(key)) as
      AccountRow | undefined;
  }

  async byId(id: string): Promise<AccountRow | undefined> {
    return this.row(id);
  }

  async takeFree(id: string): Promise<boolean> {
    const day = utcDay();
    return this.tx(() => {
      const a = this.row(id);
      if (!a || a.kind !== "rc" || a.tier) return false;
      const used = a.free_day === day ? a.free_used : 0;
      if (used >= FREE_REQUESTS_PER_DAY) return false;
      this.prepared("UPDATE accounts SET free_day = ?, free_used = ? WHERE id = ?").run(day, used + 1, id);
      return true;
    });
  }

  async returnFree(id: string): Promise<void> {
    this.prepared("UPDATE accounts SET free_used = MAX(0, free_used - 1) WHERE id = ? AND free_day = ?").run(
      id,
      utcDay(),
    );
  }

  async takePromo(sats: number, budgetSat: number): Promise<boolean> {
    const day = utcDay();
    return this.tx(() => {
      const row = this.prepared("SELECT sats FROM promo_days WHERE day = ?").get(day) as
        { sats: number } | undefined;
      const used = row?.sats ?? 0;
      if (used + sats > budgetSat) return false;
      this.prepared(
        "INSERT INTO promo_days (day, sats) VALUES (?, ?) ON CONFLICT(day) DO UPDATE SET sats = excluded.sats",
      ).run(day, used + sats);
      return true;
    });
  }

  async returnPromo(sats: number, day: string): Promise<void> {
    if (sats <= 0) return;
    this.prepared("UPDATE promo_days SET sats = MAX(0, sats - ?) WHERE day = ?").run(sats, day);
  }

  async spendRoom(id: string): Promise<{ room: number; reason?: string }> {
    return roomOf(this.chain(id));
  }

  async recordSpend(id: string, sats: number): Promise<void> {
    const day = utcDay();
    this.tx(() => {
      for (const a of this.chain(id)) {
        const today = a.spent_day === day ? a.spent_day_sat : 0;
        this.prepared(
          "UPDATE accounts SET spent_day = ?, spent_day_sat = ?, spent_lifetime_sat = spent_lifetime_sat + ? WHERE id = ?",
        ).run(day, today + sats, sats, a.id);
      }
    });
  }

  async noteTokenFormat(id: string, format: "A" | "B"): Promise<void> {
    this.prepared("INSERT OR IGNORE INTO token_formats (account_id, format) VALUES (?, ?)").run(id, format);
  }

  async tokenFormat(id: string): Promise<"A" | "B"> {
    const row = this.prepared("SELECT format FROM token_formats WHERE account_id = ?").get(id) as
      { format: "A" | "B" } | undefined;
    return row?.format ?? "B";
  }

  async addTopup(t: NewTopup): Promise<void> {
    this.prepared(
      "INSERT INTO topups (quote, account_id, mint, amount, request, expiry, state, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
    ).run(t.quote, t.accountId, t.mint, t.amount, t.request, t.expiry, Date.now());
  }

  async pendingTopups(accountId?: string, sinceMs = 0): Promise<TopupRow[]> {
    const sql = accountId
      ? "SELECT * FROM topups WHERE state = 'pending' AND created_at >= ? AND account_id = ?"
      : "SELECT * FROM topups WHERE state = 'pending' AND created_at >= ?";
    return (
      accountId ? this.prepared(sql).all(sinceMs, accountId) : this.prepared(sql).all(sinceMs)
    ) as TopupRow[];
  }

  async topup(quote: string): Promise<TopupRow | undefined> {
    return this.prepared("SELECT * FROM topups WHERE quote = ?").get(quote) as TopupRow | undefined;
  }

  async markTopupCredited(quote: string): Promise<boolean> {
    return (
      this.prepared("UPDATE topups SET state = 'credited' WHERE quote = ? AND state = 'pending'").run(quote)
        .changes === 1
    );
  }
}
