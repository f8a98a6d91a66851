/**
 * The double-entry ledger: the only code that moves value. Amounts are integer millisats. Each
 * public method is one atomic SQLite transaction (BEGIN IMMEDIATE) that writes a balanced
 * transaction: every entry debits one account and credits another by the same amount.
 *
 * Balances: credit-normal accounts (users, holds, providers, equity) = credits - debits;
 * the ecash asset = debits - credits. Overdraft checks happen inside the same transaction.
 */
import { SqliteStore } from "../../src/shared/sqlite.js";
import { Accounts, accountKind } from "./accounts.js";
import { HoldExistsError, HoldStateError, InsufficientBalanceError, LedgerError } from "./errors.js";
import {
  DAY_MS,
  EARNING_KINDS,
  EARNING_KINDS_SQL,
  type HoldRow,
  type HoldState,
  imbalanceOf,
  isDebitNormal,
  mayGoNegative,
  type Posting,
  type StatementEntry,
} from "./storage.js";

export type { HoldRow, HoldState, Posting, StatementEntry } from "./storage.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS ledger_tx (
  id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, ref TEXT, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ledger_entries (
  id INTEGER PRIMARY KEY AUTOINCREMENT, tx_id INTEGER NOT NULL REFERENCES ledger_tx(id),
  debit TEXT NOT NULL, credit TEXT NOT NULL, msat INTEGER NOT NULL CHECK (msat > 0));
CREATE INDEX IF NOT EXISTS ledger_entries_debit ON ledger_entries (debit);
CREATE INDEX IF NOT EXISTS ledger_entries_credit ON ledger_entries (credit);
CREATE TABLE IF NOT EXISTS balances (account TEXT PRIMARY KEY, msat INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS holds (
  id TEXT PRIMARY KEY, account TEXT NOT NULL, msat INTEGER NOT NULL, state TEXT NOT NULL, kind TEXT NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, memo TEXT);
CREATE INDEX IF NOT EXISTS holds_state ON holds (state, updated_at);
CREATE UNIQUE INDEX IF NOT EXISTS ledger_tx_ref ON ledger_tx (kind, ref) WHERE ref IS NOT NULL;
CREATE TABLE IF NOT EXISTS earnings_daily (
  account TEXT NOT NULL, day INTEGER NOT NULL, msat INTEGER NOT NULL, PRIMARY KEY (account, day)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS earnings_total (account TEXT PRIMARY KEY, msat INTEGER NOT NULL) WITHOUT ROWID;
`;

export { DAY_MS } from "./storage.js";

/**
 * Schema version in `PRAGMA user_version`: 1 = provider earnings kept as running totals (daily and
 * lifetime) by post(), rebuilt once from the entries of an older file.
 */
const VERSION = 1;

const now = () => Date.now();

export class LedgerStore extends SqliteStore {
  constructor(path: string) {
    super(path, SCHEMA);
    this.migrate();
  }

  /** Brings an older file up to VERSION in one write transaction (another process may race us). */
  private migrate(): void {
    if ((this.db.pragma("user_version", { simple: true }) as number) >= VERSION) return;
    this.tx(() => {
      if ((this.db.pragma("user_version", { simple: true }) as number) >= VERSION) return;
      this.db.exec(`DELETE FROM earnings_daily; DELETE FROM earnings_total;
        INSERT INTO earnings_daily (account, day, msat)
          SELECT e.credit, t.created_at / ${DAY_MS}, SUM(e.msat) FROM ledger_entries e JOIN ledger_tx t ON t.id = e.tx_id
          WHERE t.kind IN (${EARNING_KINDS_SQL}) AND e.credit LIKE 'provider:%' GROUP BY 1, 2;
        INSERT INTO earnings_total (account, msat) SELECT account, SUM(msat) FROM earnings_daily GROUP BY account;`);
      this.db.pragma(`user_version = ${VERSION}`);
    });
  }

  balance(account: string): number {
    const row = this.prepared("SELECT msat FROM balances WHERE account = ?").get(account) as
      { msat: number } | undefined;
    return row?.msat ?? 0;
  }

  private bump(account: string, delta: number): void {
    this.prepared(
      "INSERT INTO balances (account, msat) VALUES (?, ?) ON CONFLICT(account) DO UPDATE SET msat = msat + excluded.msat",
    ).run(account, delta);
  }

  /** Writes one balanced transaction; with `ref`, a second write of the same (kind, ref) is a no-op. */
  private post(kind: string, ref: string | null, postings: Posting[]): number | null {
    if (ref !== null) {
      const seen = this.prepared("SELECT id FROM ledger_tx WHERE kind = ? AND ref = ?").get(kind, ref);
      if (seen) return null;
    }
    const at = now();
    const txId = Number(
      this.prepared("INSERT INTO ledger_tx (kind, ref, created_at) VALUES (?, ?, ?)").run(kind, ref, at)
        .lastInsertRowid,
    );
    const earning = EARNING_KINDS.includes(kind);
    const insert = this.prepared(
      "INSERT INTO ledger_entries (tx_id, debit, credit, msat) VALUES (?, ?, ?, ?)",
    );
    for (const p of postings) {
      if (!Number.isSafeInteger(p.msat) || p.msat < 0) throw new LedgerError(`invalid amount ${p.msat}`);
      if (p.msat === 0) continue;
      insert.run(txId, p.from, p.to, p.msat);
      this.bump(p.from, isDebitNormal(p.from) ? p.msat : -p.msat);
      this.bump(p.to, isDebitNormal(p.to) ? -p.msat : p.msat);
      if (earning && accountKind(p.to) === "provider") this.addEarning(p.to, at, p.msat);
    }
    return txId;
  }

  /** Moves value; refuses to overdraw user and hold accounts. Idempotent by (kind, ref). */
  transfer(kind: string, ref: string | null, postings: Posting[]): boolean {
    return this.tx(() => {
      const txId = this.post(kind, ref, postings);
      if (txId === null) return false;
      for (const account of new Set(postings.map((p) => p.from))) {
        // Only equity (the gateway's own books) may go negative; what is owed to others may not.
        if (!mayGoNegative(account) && this.balance(account) < 0) {
          throw new InsufficientBalanceError(account, this.balance(account));
        }
      }
      return true;
    });
  }

  /**
   * Moves everything `from` holds to `to`, read and written in one transaction. Idempotent by
   * (kind, ref): false when that move was already made.
   */
  moveAll(kind: string, ref: string, from: string, to: string): boolean {
    return this.tx(() => this.post(kind, ref, [{ from, to, msat: this.balance(from) }]) !== null);
  }

  /** Inserts a hold row; a taken id is a HoldExistsError (never a bare UNIQUE failure). */
  private insertHold(
    id: string,
    account: string,
    msat: number,
    state: HoldState,
    kind: string,
    memo: string | null,
  ): void {
    if (this.getHold(id)) throw new HoldExistsError(id);
    this.prepared(
      "INSERT INTO holds (id, account, msat, state, kind, created_at, updated_at, memo) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ).run(id, account, msat, state, kind, now(), now(), memo);
  }

  /**
   * Takes a hold id before its money arrives (X-Cashu: before the token is claimed at the mint), so
   * two requests naming the same id cannot both spend their tokens: the second gets HoldExistsError.
   * The reservation is an active hold of 0 until `fundReservedHold`.
   */
  reserveHold(holdId: string, owner: string, kind: string, memo?: string): void {
    this.tx(() => this.insertHold(holdId, owner, 0, "active", kind, memo ?? null));
  }

  /** True once the hold's money was posted (a reservation not yet funded is false). */
  holdFunded(holdId: string): boolean {
    return this.prepared("SELECT 1 FROM ledger_tx WHERE kind = 'hold' AND ref = ?").get(holdId) !== undefined;
  }

  /**
   * Funds a reserved hold with `postings` (crediting `msat` to the hold), once. A reservation that
   * already ended (released by the sweeper or a restart before the claim was known) gets the money
   * as change owed under its id instead. Returns what happened; "already" when it was funded before.
   */
  fundReservedHold(holdId: string, msat: number, from: string): "funded" | "change" | "already" {
    return this.tx(() => {
      const hold = this.getHold(holdId);
      if (!hold) throw new HoldStateError(holdId, "missing");
      if (this.holdFunded(holdId)) return "already";
      const active = hold.state === "active";
      this.post("hold", holdId, [
        { from, to: active ? Accounts.hold(holdId) : Accounts.change(holdId), msat },
      ]);
      this.prepared("UPDATE holds SET msat = ?, updated_at = ? WHERE id = ?").run(msat, now(), holdId);
      return active ? "funded" : "change";
    });
  }

  /** Forgets a reservation whose claim was refused (nothing was posted), so the id may be used again. */
  dropReservation(holdId: string): void {
    this.tx(() => {
      if (this.holdFunded(holdId)) return;
      this.prepared("DELETE FROM holds WHERE id = ? AND msat = 0 AND state = 'active'").run(holdId);
    });
  }

  /**
   * Reserves `msat` of `account` for one request, atomically: balance + creditMsat >= msat or
   * nothing happens (creditMsat: a metered key's credit limit, else 0). The hold id is persisted
   * before the caller dispatches anything.
   */
  hold(holdId: string, account: string, msat: number, kind: string, memo?: string, creditMsat = 0): void {
    if (!Number.isSafeInteger(creditMsat) || creditMsat < 0)
      throw new LedgerError(`invalid credit ${creditMsat}`);
    this.tx(() => {
      const have = this.balance(account);
      if (have + creditMsat < msat) throw new InsufficientBalanceError(account, have, msat);
      this.insertHold(holdId, account, msat, "active", kind, memo ?? null);
      this.post("hold", holdId, [{ from: account, to: Accounts.hold(holdId), msat }]);
    });
  }

  /**
   * Creates a hold funded from outside any user account (X-Cashu: the claimed ecash itself).
   * `postings` must credit the hold account with exactly `msat`.
   */
  openFundedHold(
    holdId: string,
    owner: string,
    msat: number,
    kind: string,
    postings: Posting[],
    memo?: string,
  ): void {
    this.tx(() => {
      this.insertHold(holdId, owner, msat, "active", kind, memo ?? null);
      this.post("hold", holdId, postings);
      if (this.balance(Accounts.hold(holdId)) !== msat)
        throw new LedgerError("funded hold does not match its postings");
    });
  }

  /**
   * Takes `msat` off `account` (never into overdraft) and owes it as change under `ref`, recorded
   * as an ended hold owned like an X-Cashu one (`owner`), so a restart pays it out as a token.
   * `payer` is kept in the memo so only that account may fetch the withdrawal again.
   */
  withdrawAsChange(ref: string, account: string, owner: string, msat: number, payer: string): void {
    this.tx(() => {
      const have = this.balance(account);
      if (have < msat) throw new InsufficientBalanceError(account, have, msat);
      this.insertHold(ref, owner, msat, "settled", "withdraw", payer);
      this.post("withdraw", ref, [{ from: account, to: Accounts.change(ref), msat }]);
    });
  }

  getHold(holdId: string): HoldRow | undefined {
    return this.prepared("SELECT * FROM holds WHERE id = ?").get(holdId) as HoldRow | undefined;
  }

  /**
   * Ends a hold exactly once: `postings` move value (from the hold to providers and fees, or from
   * elsewhere such as promo for free jobs), and whatever is left in the hold goes to `remainderTo`
   * (the owner's account, or out as change). Returns false when the hold had already ended (the
   * second caller changes nothing).
   */
  settleHold(holdId: string, postings: Posting[], remainderTo: string, memo?: string): boolean {
    return this.tx(() => {
      const hold = this.getHold(holdId);
      if (!hold) throw new HoldStateError(holdId, "missing");
      if (hold.state !== "active") return false;
      const holdAccount = Accounts.hold(holdId);
      const spend = postings.filter((p) => p.from === holdAccount).reduce((s, p) => s + p.msat, 0);
      const held = this.balance(holdAccount);
      if (spend > held) throw new LedgerError(`hold ${holdId}: spending ${spend} msat of ${held}`);
      this.post("settle", holdId, [...postings, { from: holdAccount, to: remainderTo, msat: held - spend }]);
      const state: HoldState = postings.length > 0 ? "settled" : "released";
      this.prepared("UPDATE holds SET state = ?, updated_at = ?, memo = COALESCE(?, memo) WHERE id = ?").run(
        state,
        now(),
        memo ?? null,
        holdId,
      );
      return true;
    });
  }

  activeHolds(): HoldRow[] {
    return this.prepared("SELECT * FROM holds WHERE state = 'active' ORDER BY created_at").all() as HoldRow[];
  }

  /** Running totals of a provider's earnings, in the transaction that posts them. */
  private addEarning(account: string, at: number, msat: number): void {
    this.prepared(
      "INSERT INTO earnings_daily (account, day, msat) VALUES (?, ?, ?) ON CONFLICT(account, day) DO UPDATE SET msat = msat + excluded.msat",
    ).run(account, Math.floor(at / DAY_MS), msat);
    this.prepared(
      "INSERT INTO earnings_total (account, msat) VALUES (?, ?) ON CONFLICT(account) DO UPDATE SET msat = msat + excluded.msat",
    ).run(account, msat);
  }

  /**
   * What a provider account earned from jobs, lifetime or since the start of a UTC day, read from
   * the running totals (cost independent of the ledger's size). Other start times recompute.
   */
  earned(account: string, sinceMs = 0): number {
    if (sinceMs <= 0) {
      const row = this.prepared("SELECT msat FROM earnings_total WHERE account = ?").get(account) as
        { msat: number } | undefined;
      return row?.msat ?? 0;
    }
    if (sinceMs % DAY_MS !== 0) return this.credited(account, sinceMs);
    const row = this.prepared(
      "SELECT COALESCE(SUM(msat), 0) AS v FROM earnings_daily WHERE account = ? AND day >= ?",
    ).get(account, sinceMs / DAY_MS) as { v: number };
    return row.v;
  }

  /** Earnings recomputed from every entry (the reference the running totals must equal). */
  credited(account: string, sinceMs = 0): number {
    const row = this.prepared(
      `SELECT COALESCE(SUM(e.msat), 0) AS v FROM ledger_entries e JOIN ledger_tx t ON t.id = e.tx_id WHERE e.credit = ? AND t.created_at >= ? AND t.kind IN (${EARNING_KINDS_SQL})`,
    ).get(account, sinceMs) as { v: number };
    return row.v;
  }

  /**
   * Every entry touching `account` in [fromMs, toMs), oldest first, signed from the account's side
   * (credit-normal: + when credited). Hold memos come along for the request lines of statements.
   */
  entriesOf(account: string, fromMs: number, toMs: number): StatementEntry[] {
    const sign = isDebitNormal(account) ? -1 : 1;
    const rows = this.db
      .prepare(
        `SELECT t.kind, t.ref, t.created_at, e.debit, e.credit, e.msat, h.memo
         FROM ledger_entries e JOIN ledger_tx t ON t.id = e.tx_id LEFT JOIN holds h ON h.id = t.ref
         WHERE (e.debit = ? OR e.credit = ?) AND t.created_at >= ? AND t.created_at < ?
         ORDER BY e.id`,
      )
      .all(account, account, fromMs, toMs) as {
      kind: string;
      ref: string | null;
      created_at: number;
      debit: string;
      credit: string;
      msat: number;
      memo: string | null;
    }[];
    return rows.map((r) => ({
      kind: r.kind,
      ref: r.ref,
      at: r.created_at,
      memo: r.memo,
      msat: (r.credit === account ? r.msat : -r.msat) * sign,
    }));
  }

  holdsOwnedLike(pattern: string): HoldRow[] {
    return this.prepared("SELECT * FROM holds WHERE account LIKE ? AND state != 'active'").all(
      pattern,
    ) as HoldRow[];
  }

  /**
   * Retention: drops the zero balance rows of accounts that live for one request or payment
   * (holds, change, payouts, escrow) once they are empty. A missing row reads as 0 and the next
   * posting recreates it, so no balance changes; entries (the books) and hold records are kept.
   */
  compact(): number {
    return this.tx(
      () =>
        this.prepared(
          "DELETE FROM balances WHERE msat = 0 AND (account LIKE 'hold:%' OR account LIKE 'change:%' OR account LIKE 'payout:%' OR account LIKE 'escrow:%')",
        ).run().changes,
    );
  }

  /** All balances; used by audits and tests. */
  balances(): Map<string, number> {
    const rows = this.prepared("SELECT account, msat FROM balances WHERE msat != 0").all() as {
      account: string;
      msat: number;
    }[];
    return new Map(rows.map((r) => [r.account, r.msat]));
  }

  /** Sum of debits equals sum of credits across every entry; returns the difference (must be 0). */
  imbalance(): number {
    return imbalanceOf(this.balances());
  }
}
