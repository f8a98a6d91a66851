/**
 * A wallet's ecash on disk (the gateway's and the MCP wallet's): the proof pool, the NUT-13
 * counters and the counter ranges each operation reserved, so a crash between a mint request and
 * storing its outputs is repaired from the seed on the next start. One atomic transaction per method.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { CounterRange, CounterSource } from "@cashu/cashu-ts";
import { SqliteStore } from "../sqlite.js";

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
`;

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

export class EcashStore extends SqliteStore {
  constructor(path: string) {
    super(path, SCHEMA);
  }

  /** A CounterSource for one mint: counters are committed before any blinded output leaves. */
  counterSource(mint: string): CounterSource {
    const reserve = (keysetId: string, n: number): CounterRange =>
      this.tx(() => {
        const row = this.db.prepare("SELECT next FROM counters WHERE keyset_id = ?").get(keysetId) as
          { next: number } | undefined;
        const start = row?.next ?? 0;
        if (n === 0) return { start, count: 0 };
        this.db
          .prepare(
            "INSERT INTO counters (keyset_id, next) VALUES (?, ?) ON CONFLICT(keyset_id) DO UPDATE SET next = excluded.next",
          )
          .run(keysetId, start + n);
        this.db
          .prepare(
            "INSERT INTO reservations (mint, keyset_id, start, count, op, created_at) VALUES (?, ?, ?, ?, ?, ?)",
          )
          .run(mint, keysetId, start, n, currentOp.getStore() ?? null, Date.now());
        return { start, count: n };
      });
    return {
      reserve: async (keysetId, n) => reserve(keysetId, n),
      advanceToAtLeast: async (keysetId, minNext) => {
        this.db
          .prepare(
            "INSERT INTO counters (keyset_id, next) VALUES (?, ?) ON CONFLICT(keyset_id) DO UPDATE SET next = MAX(next, excluded.next)",
          )
          .run(keysetId, minNext);
      },
    };
  }

  addProofs(proofs: StoredProof[]): void {
    this.tx(() => {
      const stmt = this.db.prepare(
        `INSERT OR IGNORE INTO proofs (secret, mint, keyset_id, amount, c, dleq, state, op, created_at)
         VALUES (@secret, @mint, @keyset_id, @amount, @c, @dleq, 'available', NULL, @created_at)`,
      );
      for (const p of proofs) stmt.run({ ...p, created_at: Date.now() });
    });
  }

  /**
   * Reserves available proofs of a mint for one operation: the smallest set found greedily from the
   * largest denominations down that covers `amount` (exact when the pool allows).
   */
  reserveProofs(mint: string, amount: number, op: string): StoredProof[] | undefined {
    return this.tx(() => {
      const pool = this.db
        .prepare("SELECT * FROM proofs WHERE mint = ? AND state = 'available' ORDER BY amount DESC")
        .all(mint) as StoredProof[];
      const picked = selectProofs(pool, amount);
      if (!picked) return undefined;
      const mark = this.db.prepare(
        "UPDATE proofs SET state = 'reserved', op = ? WHERE secret = ? AND state = 'available'",
      );
      for (const p of picked) mark.run(op, p.secret);
      return picked;
    });
  }

  /** Ends an operation: its reserved proofs are spent (success) or available again (failure). */
  finishOp(op: string, spent: boolean): void {
    this.db
      .prepare(`UPDATE proofs SET state = ?, op = NULL WHERE op = ? AND state = 'reserved'`)
      .run(spent ? "spent" : "available", op);
  }

  reservedProofs(): (StoredProof & { op: string })[] {
    return this.db.prepare("SELECT * FROM proofs WHERE state = 'reserved'").all() as (StoredProof & {
      op: string;
    })[];
  }

  markProof(secret: string, state: "available" | "spent"): void {
    this.db.prepare("UPDATE proofs SET state = ?, op = NULL WHERE secret = ?").run(state, secret);
  }

  balance(mint?: string): number {
    const row = (
      mint
        ? this.db.prepare("SELECT SUM(amount) AS v FROM proofs WHERE state != 'spent' AND mint = ?").get(mint)
        : this.db.prepare("SELECT SUM(amount) AS v FROM proofs WHERE state != 'spent'").get()
    ) as { v: number | null };
    return row.v ?? 0;
  }

  balancesByMint(): Record<string, number> {
    const rows = this.db
      .prepare("SELECT mint, SUM(amount) AS v FROM proofs WHERE state = 'available' GROUP BY mint")
      .all() as { mint: string; v: number }[];
    return Object.fromEntries(rows.map((r) => [r.mint, r.v]));
  }

  hasProof(secret: string): boolean {
    return !!this.db.prepare("SELECT 1 FROM proofs WHERE secret = ?").get(secret);
  }

  unresolvedReservations(): Reservation[] {
    return this.db
      .prepare("SELECT * FROM reservations WHERE resolved = 0 ORDER BY id")
      .all() as Reservation[];
  }

  /** The operation finished and its outputs are stored (or handed out): never restore them. */
  resolveOp(op: string): void {
    this.db.prepare("UPDATE reservations SET resolved = 1 WHERE op = ?").run(op);
  }

  resolveReservation(id: number): void {
    this.db.prepare("UPDATE reservations SET resolved = 1 WHERE id = ?").run(id);
  }
}

/**
 * Picks proofs covering `amount`: prefers an exact subset from the largest denominations down (no
 * swap needed), else the smallest proof set that covers it. Pool must be sorted by amount desc.
 */
export function selectProofs<T extends { amount: number }>(pool: T[], amount: number): T[] | undefined {
  const exact: T[] = [];
  let left = amount;
  for (const p of pool) {
    if (p.amount <= left) {
      exact.push(p);
      left -= p.amount;
      if (left === 0) return exact;
    }
  }
  // No exact subset greedily: take the smallest single proof ≥ amount, or accumulate from the top.
  const single = [...pool].reverse().find((p) => p.amount >= amount);
  if (single) return [single];
  const picked: T[] = [];
  let sum = 0;
  for (const p of pool) {
    picked.push(p);
    sum += p.amount;
    if (sum >= amount) return picked;
  }
  return undefined;
}

/** A random 64-byte wallet seed kept in `dir/wallet-seed`, created on first start (0600). */
export function loadOrCreateSeed(dir: string): Uint8Array {
  const path = join(dir, "wallet-seed");
  if (!existsSync(path))
    writeFileSync(path, `${randomBytes(64).toString("hex")}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(path, 0o600);
  return new Uint8Array(Buffer.from(readFileSync(path, "utf8").trim(), "hex"));
}
