/**
 * A wallet's ecash on disk (the gateway's and the MCP wallet's): the proof pool, the NUT-13
 * counters and the counter ranges each operation reserved, so a crash between a mint request and
 * storing its outputs is repaired from the seed on the next start. One atomic transaction per method.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { CounterRange, CounterSource } from "@cashu/cashu-ts";
import { SqliteStore } from "../sqlite.js";
import { type Denomination, selectDenominations } from "./denominations.js";
import {
  CLAIM_OP_PREFIX,
  type EcashPool,
  type OwedSwap,
  type OwedToken,
  type RestoredClaim,
} from "./pool.js";

export interface StoredProof {
  secret: string;
  mint: string;
  keyset_id: string;
  amount: number;
  c: string;
  dleq: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS proofs (
  secret TEXT PRIMARY KEY, mint TEXT NOT NULL, keyset_id TEXT NOT NULL, amount INTEGER NOT NULL, c TEXT NOT NULL,
  dleq TEXT, state TEXT NOT NULL, op TEXT, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS proofs_pool ON proofs (mint, state, amount);
CREATE TABLE IF NOT EXISTS counters (keyset_id TEXT PRIMARY KEY, next INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS reservations (
  id INTEGER PRIMARY KEY AUTOINCREMENT, mint TEXT NOT NULL, keyset_id TEXT NOT NULL, start INTEGER NOT NULL,
  count INTEGER NOT NULL, op TEXT, created_at INTEGER NOT NULL, resolved INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS reservations_op ON reservations (op);
CREATE INDEX IF NOT EXISTS proofs_op ON proofs (op) WHERE op IS NOT NULL;
CREATE TABLE IF NOT EXISTS claims_unfunded (
  op TEXT PRIMARY KEY, mint TEXT NOT NULL, sat INTEGER NOT NULL, created_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS proof_counts (
  mint TEXT NOT NULL, state TEXT NOT NULL, amount INTEGER NOT NULL, n INTEGER NOT NULL,
  PRIMARY KEY (mint, state, amount)) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS proofs_count_insert AFTER INSERT ON proofs BEGIN
  INSERT INTO proof_counts (mint, state, amount, n) VALUES (NEW.mint, NEW.state, NEW.amount, 1)
    ON CONFLICT (mint, state, amount) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER IF NOT EXISTS proofs_count_delete AFTER DELETE ON proofs BEGIN
  UPDATE proof_counts SET n = n - 1 WHERE mint = OLD.mint AND state = OLD.state AND amount = OLD.amount;
END;
CREATE TRIGGER IF NOT EXISTS proofs_count_update AFTER UPDATE OF mint, state, amount ON proofs
  WHEN OLD.state != NEW.state OR OLD.mint != NEW.mint OR OLD.amount != NEW.amount BEGIN
  UPDATE proof_counts SET n = n - 1 WHERE mint = OLD.mint AND state = OLD.state AND amount = OLD.amount;
  INSERT INTO proof_counts (mint, state, amount, n) VALUES (NEW.mint, NEW.state, NEW.amount, 1)
    ON CONFLICT (mint, state, amount) DO UPDATE SET n = n + 1;
END;
`;

/**
 * Schema version in `PRAGMA user_version`: 1 = proof_counts kept by triggers (rebuilt once from the
 * proofs of an older file) and finished counter ranges deleted instead of flagged.
 */
const VERSION = 1;

/** A counter range reserved by one wallet operation (`op`), unresolved until its outputs are stored. */
export interface Reservation {
  id: number;
  mint: string;
  keyset_id: string;
  start: number;
  count: number;
  op: string | null;
}

/** The wallet operation a counter reservation belongs to (set around each swap). */
export const currentOp = new AsyncLocalStorage<string>();

export class EcashStore extends SqliteStore implements EcashPool {
  constructor(path: string) {
    super(path, SCHEMA);
    this.migrate();
  }

  /** Brings an older file up to VERSION in one write transaction (another process may race us). */
  private migrate(): void {
    if ((this.db.pragma("user_version", { simple: true }) as number) >= VERSION) return;
    this.tx(() => {
      if ((this.db.pragma("user_version", { simple: true }) as number) >= VERSION) return;
      this.db.exec(`DELETE FROM proof_counts;
        INSERT INTO proof_counts (mint, state, amount, n)
          SELECT mint, state, amount, COUNT(*) FROM proofs GROUP BY mint, state, amount;
        DELETE FROM reservations WHERE resolved != 0;`);
      this.db.pragma(`user_version = ${VERSION}`);
    });
  }

  /** A CounterSource for one mint: counters are committed before any blinded output leaves. */
  counterSource(mint: string): CounterSource {
    const reserve = (keysetId: string, n: number): CounterRange =>
      this.tx(() => {
        const row = this.prepared("SELECT next FROM counters WHERE keyset_id = ?").get(keysetId) as
          { next: number } | undefined;
        const start = row?.next ?? 0;
        if (n === 0) return { start, count: 0 };
        this.prepared(
          "INSERT INTO counters (keyset_id, next) VALUES (?, ?) ON CONFLICT(keyset_id) DO UPDATE SET next = excluded.next",
        ).run(keysetId, start + n);
        this.prepared(
          "INSERT INTO reservations (mint, keyset_id, start, count, op, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        ).run(mint, keysetId, start, n, currentOp.getStore() ?? null, Date.now());
        return { start, count: n };
      });
    return {
      reserve: async (keysetId, n) => reserve(keysetId, n),
      advanceToAtLeast: async (keysetId, minNext) => {
        this.prepared(
          "INSERT INTO counters (keyset_id, next) VALUES (?, ?) ON CONFLICT(keyset_id) DO UPDATE SET next = MAX(next, excluded.next)",
        ).run(keysetId, minNext);
      },
    };
  }

  /** Stores proofs; with `op`, that operation's counter ranges are resolved in the same transaction. */
  addProofs(proofs: StoredProof[], op?: string): void {
    this.tx(() => {
      const stmt = this.prepared(
        `INSERT OR IGNORE INTO proofs (secret, mint, keyset_id, amount, c, dleq, state, op, created_at)
         VALUES (@secret, @mint, @keyset_id, @amount, @c, @dleq, 'available', NULL, @created_at)`,
      );
      for (const p of proofs) stmt.run({ ...p, created_at: Date.now() });
      if (op !== undefined) this.resolveOp(op);
      // The range is resolved, so only this row says whose the value is until the caller credits it.
      if (op?.startsWith(CLAIM_OP_PREFIX))
        this.prepared(
          "INSERT OR REPLACE INTO claims_unfunded (op, mint, sat, created_at) VALUES (?, ?, ?, ?)",
        ).run(
          op,
          proofs[0]?.mint ?? "",
          proofs.reduce((n, p) => n + p.amount, 0),
          Date.now(),
        );
    });
  }

  /**
   * The outputs of a restored counter range: stored, the range resolved and, for a claim op, the
   * value stored now added to its record, in one transaction (a crash in between loses nothing).
   */
  restoreRange(range: Reservation, proofs: StoredProof[]): number {
    return this.tx(() => {
      const stmt = this.prepared(
        `INSERT OR IGNORE INTO proofs (secret, mint, keyset_id, amount, c, dleq, state, op, created_at)
         VALUES (@secret, @mint, @keyset_id, @amount, @c, @dleq, 'available', NULL, @created_at)`,
      );
      let sat = 0;
      for (const p of proofs) if (stmt.run({ ...p, created_at: Date.now() }).changes === 1) sat += p.amount;
      this.resolveReservation(range.id);
      if (sat > 0 && range.op?.startsWith(CLAIM_OP_PREFIX))
        this.prepared(
          `INSERT INTO claims_unfunded (op, mint, sat, created_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (op) DO UPDATE SET sat = sat + excluded.sat`,
        ).run(range.op, range.mint, sat, Date.now());
      return sat;
    });
  }

  /** Claims stored in the pool whose owner was not credited yet (one process: all of them). */
  unfundedClaims(_restoredHere?: readonly string[]): RestoredClaim[] {
    return this.prepared("SELECT op, mint, sat FROM claims_unfunded WHERE sat > 0").all() as RestoredClaim[];
  }

  /**
   * The claim's value is in the ledger now: its record is deleted by the next write transaction of
   * this store (or at close), so a paid request costs no write transaction of its own. A record a
   * crash left behind only makes the next start re-check a credit that is already there.
   */
  claimFunded(op: string): void {
    this.fundedClaims.push(op);
  }

  private fundedClaims: string[] = [];

  protected override tx<T>(fn: () => T): T {
    return super.tx(() => {
      for (const op of this.fundedClaims.splice(0))
        this.prepared("DELETE FROM claims_unfunded WHERE op = ?").run(op);
      return fn();
    });
  }

  override close(): void {
    if (this.fundedClaims.length > 0) this.tx(() => undefined);
    super.close();
  }

  /**
   * Reserves available proofs of a mint for one operation: the smallest set found greedily from the
   * largest denominations down that covers `amount` (exact when the pool allows). Selection works on
   * the count of each denomination, so its cost does not grow with the pool.
   */
  reserveProofs(mint: string, amount: number, op: string): StoredProof[] | undefined {
    return this.tx(() => {
      const plan = this.plan(mint, amount);
      return plan && this.take(mint, plan, "reserved", op);
    });
  }

  /**
   * Pays exactly `amount` from the pool when its denominations allow, with no swap: the proofs are
   * marked spent and `use` (which makes what they became, e.g. a change token, stored as owed
   * under `owedId` when given) runs in the same transaction, so a crash never leaves them spent here
   * yet unrecorded. Undefined when not exact.
   */
  spendExact<T>(
    mint: string,
    amount: number,
    use: (proofs: StoredProof[]) => T,
    owedId?: string,
  ): T | undefined {
    let stored: string | undefined;
    try {
      return this.tx(() => {
        const plan = this.plan(mint, amount);
        if (!plan || plan.reduce((s, d) => s + d.amount * d.n, 0) !== amount) return undefined;
        const made = use(this.take(mint, plan, "spent", null));
        if (owedId === undefined) return made;
        stored = this.saveOwed({ id: owedId, mint, amount, token: String(made) });
        // Paid already: roll this spend back and answer the stored token.
        if (stored !== made) throw new OwedAlready();
        return made;
      });
    } catch (err) {
      if (err instanceof OwedAlready) return stored as T;
      throw err;
    }
  }

  /**
   * Stores a token owed to someone unless its id has one; answers the token stored under the id.
   * A plain wallet owes nobody (the gateway's store keeps change).
   */
  protected saveOwed(_owed: OwedToken): string {
    throw new Error("this wallet store keeps no owed tokens");
  }

  /**
   * How many available proofs of each amount the pool holds at a mint, largest first: read from the
   * counts the triggers keep, so the cost does not grow with the pool.
   */
  denominations(mint: string): Denomination[] {
    return this.prepared(
      "SELECT amount, n FROM proof_counts WHERE mint = ? AND state = 'available' AND n > 0 ORDER BY amount DESC",
    ).all(mint) as Denomination[];
  }

  /** Which denominations would pay `amount`; reads counts only, so it is cheap on a large pool. */
  private plan(mint: string, amount: number): Denomination[] | undefined {
    return selectDenominations(this.denominations(mint), amount);
  }

  private take(mint: string, plan: Denomination[], state: "reserved" | "spent", op: string | null) {
    const pick = this.prepared(
      "SELECT * FROM proofs WHERE mint = ? AND state = 'available' AND amount = ? LIMIT ?",
    );
    const mark = this.prepared(
      "UPDATE proofs SET state = ?, op = ? WHERE secret = ? AND state = 'available'",
    );
    const picked = plan.flatMap((d) => pick.all(mint, d.amount, d.n) as StoredProof[]);
    for (const p of picked) mark.run(state, op, p.secret);
    return picked;
  }

  /**
   * A swap of `op` succeeded: its inputs are spent, the proofs it kept are stored, its counters
   * resolved, and `owed` (the token the sent proofs became) is stored in the same transaction.
   */
  finishSwap(op: string, keep: StoredProof[], owed?: OwedSwap): string | undefined {
    return this.tx(() => {
      this.addProofs(keep, op);
      this.finishOp(op, true);
      if (!owed) return undefined;
      const stored = this.saveOwed(owed);
      if (stored !== owed.token) this.addProofs(owed.proofs);
      return stored;
    });
  }

  /** Ends an operation: its reserved proofs are spent (success) or available again (failure). */
  finishOp(op: string, spent: boolean): void {
    this.prepared(`UPDATE proofs SET state = ?, op = NULL WHERE op = ? AND state = 'reserved'`).run(
      spent ? "spent" : "available",
      op,
    );
  }

  /** Proofs an unfinished operation holds (a reserved proof always names its op: indexed). */
  reservedProofs(): (StoredProof & { op: string })[] {
    return this.prepared(
      "SELECT * FROM proofs WHERE op IS NOT NULL AND state = 'reserved'",
    ).all() as (StoredProof & { op: string })[];
  }

  /** A spent proof keeps its op, so what an operation spent stays known (`spentBy`). */
  markProof(secret: string, state: "available" | "spent"): void {
    this.prepared(
      "UPDATE proofs SET state = ?, op = CASE WHEN ? = 'spent' THEN op ELSE NULL END WHERE secret = ?",
    ).run(state, state, secret);
  }

  /** Sats an unfinished operation holds reserved, or spent once recovery found its inputs spent. */
  spentBy(op: string): number {
    const row = this.prepared(
      "SELECT COALESCE(SUM(amount), 0) AS sat FROM proofs WHERE op = ? AND state IN ('reserved', 'spent')",
    ).get(op) as { sat: number };
    return row.sat;
  }

  /** Sats available or reserved (from the counts: one row per mint, state and denomination). */
  balance(mint?: string): number {
    const row = (
      mint
        ? this.prepared(
            "SELECT SUM(amount * n) AS v FROM proof_counts WHERE mint = ? AND state != 'spent'",
          ).get(mint)
        : this.prepared("SELECT SUM(amount * n) AS v FROM proof_counts WHERE state != 'spent'").get()
    ) as { v: number | null };
    return row.v ?? 0;
  }

  balancesByMint(): Record<string, number> {
    const rows = this.prepared(
      "SELECT mint, SUM(amount * n) AS v FROM proof_counts WHERE state = 'available' AND n > 0 GROUP BY mint",
    ).all() as { mint: string; v: number }[];
    return Object.fromEntries(rows.map((r) => [r.mint, r.v]));
  }

  hasProof(secret: string): boolean {
    return !!this.prepared("SELECT 1 FROM proofs WHERE secret = ?").get(secret);
  }

  /** Counter ranges whose outputs may still be out there (finished ones are deleted, so this stays small). */
  unresolvedReservations(): Reservation[] {
    return this.prepared("SELECT * FROM reservations WHERE resolved = 0 ORDER BY id").all() as Reservation[];
  }

  /** The open counter ranges of one operation. */
  reservationsOf(op: string): Reservation[] {
    return this.prepared("SELECT * FROM reservations WHERE op = ? AND resolved = 0 ORDER BY id").all(
      op,
    ) as Reservation[];
  }

  /**
   * The operation finished and its outputs are stored (or handed out): never restore them. The
   * range is deleted, not flagged: the counter already moved past it and nothing reads it again.
   */
  resolveOp(op: string): void {
    this.prepared("DELETE FROM reservations WHERE op = ?").run(op);
  }

  resolveReservation(id: number): void {
    this.prepared("DELETE FROM reservations WHERE id = ?").run(id);
  }

  /**
   * Retention: forgets spent proofs received before `beforeMs` that no unfinished operation names
   * (op is NULL). Nothing reads them again: balances and counts cover unspent proofs only, and a
   * restore from the seed asks the mint whether a proof it finds is spent. Works in short write
   * transactions over rowid ranges, so requests keep flowing; returns how many were deleted.
   */
  compact(beforeMs: number, batch = 5000): number {
    const last = (this.prepared("SELECT MAX(rowid) AS m FROM proofs").get() as { m: number | null }).m ?? 0;
    const del = this.prepared(
      "DELETE FROM proofs WHERE rowid > ? AND rowid <= ? AND state = 'spent' AND op IS NULL AND created_at < ?",
    );
    let deleted = 0;
    for (let from = 0; from < last; from += batch) {
      deleted += this.tx(() => del.run(from, from + batch, beforeMs).changes);
    }
    return deleted;
  }
}

/** The owed id had a token already: the spend is rolled back. */
class OwedAlready extends Error {}
