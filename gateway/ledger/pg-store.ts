/**
 * The ledger in PostgreSQL, shared by several gateway processes (`--database-url`). Same books as
 * the SQLite `LedgerStore` (tables prefixed `ledger_`), same rules, each method one transaction.
 *
 * Why READ COMMITTED is enough everywhere (no SERIALIZABLE retries on the hot path):
 * - (kind, ref) idempotency is the partial unique index on `ledger_tx`: `INSERT … ON CONFLICT DO
 *   NOTHING` makes a second writer of the same (kind, ref) wait for the first to commit, then do
 *   nothing, so a transfer applies once whatever the timing.
 * - A balance is only ever changed by `INSERT … ON CONFLICT DO UPDATE SET msat = msat + delta
 *   RETURNING msat`, which locks the row and returns the value after every committed change: the
 *   overdraft check after the write sees the true balance (a refused write rolls back whole).
 * - Checks that must come before the write (a hold: balance >= msat, else nothing) first take the
 *   account's balance row `FOR UPDATE`; a hold's end first takes its `ledger_holds` row `FOR
 *   UPDATE`, so of two processes settling one hold the second sees it ended.
 * - Balance rows are upserted in one statement in a fixed order (account, byte order), so two
 *   transactions touching the same accounts lock them in the same order and do not deadlock; the
 *   rare remaining deadlock (a row locked first for a check) is retried by `PgDatabase.tx`, and
 *   every function here is free of side effects outside its transaction.
 */
import { type Migration, type PgClient, PgDatabase } from "../../src/shared/postgres.js";
import { Accounts } from "./accounts.js";
import { HoldExistsError, HoldStateError, InsufficientBalanceError, LedgerError } from "./errors.js";
import { claimTx, post, writeEntries } from "./pg-posting.js";
import {
  DAY_MS,
  EARNING_KINDS_SQL,
  type FundOutcome,
  type HoldRow,
  type HoldState,
  isDebitNormal,
  type LedgerStorage,
  mayGoNegative,
  type Posting,
  type StatementEntry,
} from "./storage.js";

export const LEDGER_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
CREATE TABLE ledger_tx (
  id BIGSERIAL PRIMARY KEY, kind TEXT NOT NULL, ref TEXT, created_at BIGINT NOT NULL);
CREATE UNIQUE INDEX ledger_tx_ref ON ledger_tx (kind, ref) WHERE ref IS NOT NULL;
CREATE TABLE ledger_entries (
  id BIGSERIAL PRIMARY KEY, tx_id BIGINT NOT NULL REFERENCES ledger_tx(id),
  debit TEXT NOT NULL, credit TEXT NOT NULL, msat BIGINT NOT NULL CHECK (msat > 0));
CREATE INDEX ledger_entries_tx ON ledger_entries (tx_id);
CREATE INDEX ledger_entries_debit ON ledger_entries (debit);
CREATE INDEX ledger_entries_credit ON ledger_entries (credit);
CREATE TABLE ledger_balances (account TEXT PRIMARY KEY, msat BIGINT NOT NULL);
CREATE TABLE ledger_holds (
  id TEXT PRIMARY KEY, account TEXT NOT NULL, msat BIGINT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('active', 'settled', 'released')), kind TEXT NOT NULL,
  created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, memo TEXT);
CREATE INDEX ledger_holds_state ON ledger_holds (state, updated_at);
CREATE TABLE ledger_earnings_daily (
  account TEXT NOT NULL, day INTEGER NOT NULL, msat BIGINT NOT NULL, PRIMARY KEY (account, day));
CREATE TABLE ledger_earnings_total (account TEXT PRIMARY KEY, msat BIGINT NOT NULL);
`,
  },
];

type Q = PgClient | PgDatabase;

/** Rows of one statement, on the pool (its own transaction) or inside a transaction's client. */
async function rows<R>(q: Q, text: string, params: unknown[]): Promise<R[]> {
  const found = q instanceof PgDatabase ? await q.query(text, params) : (await q.query(text, params)).rows;
  return found as R[];
}

export class PgLedgerStore implements LedgerStorage {
  private readonly migrated: Promise<void>;

  /** The schema is brought up to date once, before the first query (`ready()` to wait for it). */
  constructor(private readonly db: PgDatabase) {
    this.migrated = db.migrate("ledger", LEDGER_MIGRATIONS);
    this.migrated.catch(() => {}); // surfaced by ready() and by every call
  }

  async ready(): Promise<void> {
    await this.migrated;
  }

  private async tx<T>(fn: (c: PgClient) => Promise<T>): Promise<T> {
    await this.migrated;
    return this.db.tx(fn, "read committed");
  }

  private async read<R>(text: string, params: unknown[]): Promise<R[]> {
    await this.migrated;
    return rows<R>(this.db, text, params);
  }

  /** The balance of `account`, its row locked until commit (no row: 0, nothing to lock). */
  private async lockedBalance(c: PgClient, account: string): Promise<number> {
    const r = await c.query<{ msat: number }>(
      "SELECT msat FROM ledger_balances WHERE account = $1 FOR UPDATE",
      [account],
    );
    return r.rows[0]?.msat ?? 0;
  }

  private async insertHold(
    c: Q,
    id: string,
    account: string,
    msat: number,
    state: HoldState,
    kind: string,
    memo: string | null,
  ): Promise<void> {
    const at = Date.now();
    const done = await rows(
      c,
      `INSERT INTO ledger_holds (id, account, msat, state, kind, created_at, updated_at, memo)
       VALUES ($1, $2, $3, $4, $5, $6, $6, $7) ON CONFLICT (id) DO NOTHING RETURNING id`,
      [id, account, msat, state, kind, at, memo],
    );
    if (done.length === 0) throw new HoldExistsError(id);
  }

  private async lockHold(c: PgClient, holdId: string): Promise<HoldRow | undefined> {
    return (await c.query<HoldRow>("SELECT * FROM ledger_holds WHERE id = $1 FOR UPDATE", [holdId])).rows[0];
  }

  private async funded(q: Q, holdId: string): Promise<boolean> {
    return (await rows(q, "SELECT 1 FROM ledger_tx WHERE kind = 'hold' AND ref = $1", [holdId])).length > 0;
  }

  async balance(account: string): Promise<number> {
    const r = await this.read<{ msat: number }>("SELECT msat FROM ledger_balances WHERE account = $1", [
      account,
    ]);
    return r[0]?.msat ?? 0;
  }

  async transfer(kind: string, ref: string | null, postings: Posting[]): Promise<boolean> {
    return this.tx(async (c) => {
      const after = await post(c, kind, ref, postings);
      if (after === null) return false;
      for (const account of new Set(postings.map((p) => p.from))) {
        const have = after.get(account) ?? 0;
        if (!mayGoNegative(account) && have < 0) throw new InsufficientBalanceError(account, have);
      }
      return true;
    });
  }

  async moveAll(kind: string, ref: string, from: string, to: string): Promise<boolean> {
    return this.tx(async (c) => {
      const at = Date.now();
      const txId = await claimTx(c, kind, ref, at);
      if (txId === null) return false;
      const msat = await this.lockedBalance(c, from);
      await writeEntries(c, txId, kind, at, [{ from, to, msat }]);
      return true;
    });
  }

  async reserveHold(holdId: string, owner: string, kind: string, memo?: string): Promise<void> {
    await this.migrated;
    await this.insertHold(this.db, holdId, owner, 0, "active", kind, memo ?? null);
  }

  async holdFunded(holdId: string): Promise<boolean> {
    await this.migrated;
    return this.funded(this.db, holdId);
  }

  async fundReservedHold(holdId: string, msat: number, from: string): Promise<FundOutcome> {
    return this.tx(async (c) => {
      const hold = await this.lockHold(c, holdId);
      if (!hold) throw new HoldStateError(holdId, "missing");
      if (await this.funded(c, holdId)) return "already";
      const active = hold.state === "active";
      await post(c, "hold", holdId, [
        { from, to: active ? Accounts.hold(holdId) : Accounts.change(holdId), msat },
      ]);
      await c.query("UPDATE ledger_holds SET msat = $1, updated_at = $2 WHERE id = $3", [
        msat,
        Date.now(),
        holdId,
      ]);
      return active ? "funded" : "change";
    });
  }

  async dropReservation(holdId: string): Promise<void> {
    await this.tx(async (c) => {
      if (!(await this.lockHold(c, holdId)) || (await this.funded(c, holdId))) return;
      await c.query("DELETE FROM ledger_holds WHERE id = $1 AND msat = 0 AND state = 'active'", [holdId]);
    });
  }

  async hold(
    holdId: string,
    account: string,
    msat: number,
    kind: string,
    memo?: string,
    creditMsat = 0,
  ): Promise<void> {
    if (!Number.isSafeInteger(creditMsat) || creditMsat < 0)
      throw new LedgerError(`invalid credit ${creditMsat}`);
    await this.tx(async (c) => {
      // The account's row stays locked to commit: no other process moves it between check and debit,
      // so a metered key's credit limit is exact however many processes hold on it at once. On
      // credit the row must exist to be locked: an account with no history has none, and holds
      // racing on it would all read 0 and pass (a prepaid hold of 0 balance is refused anyway).
      if (creditMsat > 0)
        await c.query(
          "INSERT INTO ledger_balances (account, msat) VALUES ($1, 0) ON CONFLICT (account) DO NOTHING",
          [account],
        );
      const have = await this.lockedBalance(c, account);
      if (have + creditMsat < msat) throw new InsufficientBalanceError(account, have, msat);
      await this.insertHold(c, holdId, account, msat, "active", kind, memo ?? null);
      await post(c, "hold", holdId, [{ from: account, to: Accounts.hold(holdId), msat }]);
    });
  }

  async openFundedHold(
    holdId: string,
    owner: string,
    msat: number,
    kind: string,
    postings: Posting[],
    memo?: string,
  ): Promise<void> {
    await this.tx(async (c) => {
      await this.insertHold(c, holdId, owner, msat, "active", kind, memo ?? null);
      await post(c, "hold", holdId, postings);
      const held = await rows<{ msat: number }>(c, "SELECT msat FROM ledger_balances WHERE account = $1", [
        Accounts.hold(holdId),
      ]);
      if ((held[0]?.msat ?? 0) !== msat) throw new LedgerError("funded hold does not match its postings");
    });
  }

  async withdrawAsChange(
    ref: string,
    account: string,
    owner: string,
    msat: number,
    payer: string,
  ): Promise<void> {
    await this.tx(async (c) => {
      const have = await this.lockedBalance(c, account);
      if (have < msat) throw new InsufficientBalanceError(account, have, msat);
      await this.insertHold(c, ref, owner, msat, "settled", "withdraw", payer);
      await post(c, "withdraw", ref, [{ from: account, to: Accounts.change(ref), msat }]);
    });
  }

  async getHold(holdId: string): Promise<HoldRow | undefined> {
    return (await this.read<HoldRow>("SELECT * FROM ledger_holds WHERE id = $1", [holdId]))[0];
  }

  async settleHold(
    holdId: string,
    postings: Posting[],
    remainderTo: string,
    memo?: string,
  ): Promise<boolean> {
    return this.tx(async (c) => {
      // The hold's row, locked: of two processes ending it, the second waits and then finds it ended.
      const hold = await this.lockHold(c, holdId);
      if (!hold) throw new HoldStateError(holdId, "missing");
      if (hold.state !== "active") return false;
      const holdAccount = Accounts.hold(holdId);
      const spend = postings.filter((p) => p.from === holdAccount).reduce((s, p) => s + p.msat, 0);
      const held = await this.lockedBalance(c, holdAccount);
      if (spend > held) throw new LedgerError(`hold ${holdId}: spending ${spend} msat of ${held}`);
      await post(c, "settle", holdId, [
        ...postings,
        { from: holdAccount, to: remainderTo, msat: held - spend },
      ]);
      const state: HoldState = postings.length > 0 ? "settled" : "released";
      await c.query(
        "UPDATE ledger_holds SET state = $1, updated_at = $2, memo = COALESCE($3, memo) WHERE id = $4",
        [state, Date.now(), memo ?? null, holdId],
      );
      return true;
    });
  }

  async activeHolds(): Promise<HoldRow[]> {
    return this.read<HoldRow>(
      "SELECT * FROM ledger_holds WHERE state = 'active' ORDER BY created_at, id",
      [],
    );
  }

  async holdsOwnedLike(pattern: string): Promise<HoldRow[]> {
    return this.read<HoldRow>("SELECT * FROM ledger_holds WHERE account LIKE $1 AND state != 'active'", [
      pattern,
    ]);
  }

  async earned(account: string, sinceMs = 0): Promise<number> {
    if (sinceMs <= 0) {
      const r = await this.read<{ msat: number }>(
        "SELECT msat FROM ledger_earnings_total WHERE account = $1",
        [account],
      );
      return r[0]?.msat ?? 0;
    }
    if (sinceMs % DAY_MS !== 0) return this.credited(account, sinceMs);
    const r = await this.read<{ v: number }>(
      "SELECT COALESCE(SUM(msat), 0) AS v FROM ledger_earnings_daily WHERE account = $1 AND day >= $2",
      [account, sinceMs / DAY_MS],
    );
    return r[0]!.v;
  }

  async credited(account: string, sinceMs = 0): Promise<number> {
    const r = await this.read<{ v: number }>(
      `SELECT COALESCE(SUM(e.msat), 0) AS v FROM ledger_entries e JOIN ledger_tx t ON t.id = e.tx_id
       WHERE e.credit = $1 AND t.created_at >= $2 AND t.kind IN (${EARNING_KINDS_SQL})`,
      [account, sinceMs],
    );
    return r[0]!.v;
  }

  async entriesOf(account: string, fromMs: number, toMs: number): Promise<StatementEntry[]> {
    const sign = isDebitNormal(account) ? -1 : 1;
    const found = await this.read<{
      kind: string;
      ref: string | null;
      created_at: number;
      credit: string;
      msat: number;
      memo: string | null;
    }>(
      `SELECT t.kind, t.ref, t.created_at, e.credit, e.msat, h.memo
       FROM ledger_entries e JOIN ledger_tx t ON t.id = e.tx_id LEFT JOIN ledger_holds h ON h.id = t.ref
       WHERE (e.debit = $1 OR e.credit = $1) AND t.created_at >= $2 AND t.created_at < $3
       ORDER BY e.id`,
      [account, fromMs, toMs],
    );
    return found.map((r) => ({
      kind: r.kind,
      ref: r.ref,
      at: r.created_at,
      memo: r.memo,
      msat: (r.credit === account ? r.msat : -r.msat) * sign,
    }));
  }

  async compact(): Promise<number> {
    await this.migrated;
    const r = await this.db.pool.query(
      `DELETE FROM ledger_balances WHERE msat = 0 AND (account LIKE 'hold:%' OR account LIKE 'change:%'
       OR account LIKE 'payout:%' OR account LIKE 'escrow:%')`,
    );
    return r.rowCount ?? 0;
  }

  async balances(): Promise<Map<string, number>> {
    // One statement: one snapshot, so the audit never sees half of a concurrent transaction.
    const r = await this.read<{ account: string; msat: number }>(
      "SELECT account, msat FROM ledger_balances WHERE msat != 0",
      [],
    );
    return new Map(r.map((x) => [x.account, x.msat]));
  }

  /** The pool belongs to the composition root, which closes it after every store. */
  async close(): Promise<void> {}
}
