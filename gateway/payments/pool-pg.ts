/**
 * The gateway's ecash pool in PostgreSQL, shared by every gateway process on one database: proofs,
 * NUT-13 counters and the counter ranges each operation reserved, the change owed, and the wallet
 * seed (all processes must derive the same secrets: any of them repairs another's crash from it).
 *
 * Invariants across processes, each held by the database rather than by process memory:
 * - a proof is reserved (or spent) by one operation: rows are taken with `FOR UPDATE SKIP LOCKED`
 *   and a plan that comes up short is rolled back and made again;
 * - a counter is handed out once: one `INSERT … ON CONFLICT DO UPDATE SET next = next + n` both
 *   moves the counter and records the range, under the row lock of that keyset's counter;
 * - a change token is stored once per id (primary key), readable from any process;
 * - crash repair touches only what a dead process left: each pool holds a session advisory lock
 *   (its owner id) for as long as it is open, reserved proofs and counter ranges name their owner,
 *   and `reservedProofs` / `unresolvedReservations` skip owners whose lock is still held. A process
 *   starting next to live ones thus never frees proofs a live swap is spending.
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { CounterRange, CounterSource } from "@cashu/cashu-ts";
import {
  CLAIM_OP_PREFIX,
  currentOp,
  type Denomination,
  EcashError,
  type OwedSwap,
  type Reservation,
  type RestoredClaim,
  selectDenominations,
  type StoredProof,
} from "../../src/shared/ecash/index.js";
import type { PgClient, PgDatabase } from "../../src/shared/index.js";
import type { GatewayPool, StoredChange } from "./pool.js";
import { POOL_MIGRATIONS } from "./pool-pg-schema.js";
import {
  denominationsOf,
  insertChange,
  insertProofs,
  planCounts,
  Shortfall,
  take,
} from "./pool-pg-statements.js";

const PROOF_COLUMNS = "secret, mint, keyset_id, amount, c, dleq";

/** The advisory lock class of pool owners ("pool" in ASCII); the second key is hashtext(owner). */
const OWNER_LOCK = 0x706f6f6c;

/** True for rows (aliased `x`) whose owner is gone: none recorded, or its lock is not held. */
const OWNER_GONE = `(x.owner IS NULL OR NOT EXISTS (
  SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
     AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND l.classid = ${OWNER_LOCK} AND l.objid = hashtext(x.owner)::oid))`;

/** The change id was stored meanwhile (another process paid it): the spend is rolled back. */
class ChangeExists extends Error {}

/** Plans that came up short are made again at most this often (each after a short random wait). */
const MAX_PLANS = 50;

export class PgGatewayPool implements GatewayPool {
  private constructor(
    private readonly db: PgDatabase,
    /** this pool's owner id, locked by `lease` while it is open */
    private readonly owner: string,
    private lease: PgClient | undefined,
  ) {}

  static async open(db: PgDatabase): Promise<PgGatewayPool> {
    await db.migrate("pool", POOL_MIGRATIONS);
    const owner = randomUUID();
    // One connection holds the owner lock for the pool's life; when the process dies, so does
    // the session, and the lock with it.
    const lease = await db.pool.connect();
    try {
      await lease.query("SELECT pg_advisory_lock($1, hashtext($2))", [OWNER_LOCK, owner]);
    } catch (err) {
      lease.release();
      throw err;
    }
    return new PgGatewayPool(db, owner, lease);
  }

  /**
   * The wallet seed every process shares: the first process to ask creates it. Two statements on
   * purpose: after a conflict, only a new statement's snapshot sees the row the winner committed.
   */
  async seed(): Promise<Uint8Array> {
    await this.db.query("INSERT INTO pool_seed (id, seed) VALUES (1, $1) ON CONFLICT (id) DO NOTHING", [
      randomBytes(64).toString("hex"),
    ]);
    const [row] = await this.db.query<{ seed: string }>("SELECT seed FROM pool_seed WHERE id = 1");
    return new Uint8Array(Buffer.from(row!.seed, "hex"));
  }

  counterSource(mint: string): CounterSource {
    const db = this.db;
    return {
      reserve: async (keysetId: string, n: number): Promise<CounterRange> => {
        if (n === 0) {
          const [row] = await db.query<{ next: number }>(
            "SELECT next FROM pool_counters WHERE keyset_id = $1",
            [keysetId],
          );
          return { start: row?.next ?? 0, count: 0 };
        }
        // One statement: the upsert locks the keyset's counter row, so concurrent reservations in
        // any process queue on it and each gets the range after the previous one; the range is
        // recorded by the same statement (crash repair finds it) or not at all.
        const [row] = await db.query<{ start: number }>(
          `WITH c AS (
             INSERT INTO pool_counters (keyset_id, next) VALUES ($1, $2)
             ON CONFLICT (keyset_id) DO UPDATE SET next = pool_counters.next + excluded.next
             RETURNING next)
           INSERT INTO pool_reservations (mint, keyset_id, start, count, op, owner, created_at)
           SELECT $3, $1, c.next - $2, $2, $4, $6, $5 FROM c
           RETURNING start`,
          [keysetId, n, mint, currentOp.getStore() ?? null, Date.now(), this.owner],
        );
        return { start: row!.start, count: n };
      },
      advanceToAtLeast: async (keysetId: string, minNext: number): Promise<void> => {
        await db.query(
          `INSERT INTO pool_counters (keyset_id, next) VALUES ($1, $2)
           ON CONFLICT (keyset_id) DO UPDATE SET next = GREATEST(pool_counters.next, excluded.next)`,
          [keysetId, minNext],
        );
      },
    };
  }

  /** One statement (a data-modifying CTE always runs): the proofs and the op's ranges resolved. */
  async addProofs(proofs: StoredProof[], op?: string): Promise<void> {
    if (op === undefined) {
      await insertProofs(this.db.pool, proofs);
      return;
    }
    // READ COMMITTED: two independent writes, no read to protect; the transaction makes them one step.
    await this.db.tx(async (c) => {
      await insertProofs(c, proofs);
      await c.query("DELETE FROM pool_reservations WHERE op = $1", [op]);
      // The range is resolved, so only this row says whose the value is until the caller credits it.
      if (op.startsWith(CLAIM_OP_PREFIX))
        await c.query(
          `INSERT INTO pool_claims_unfunded (op, mint, sat, owner, created_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (op) DO UPDATE SET mint = excluded.mint, sat = excluded.sat, owner = excluded.owner`,
          [op, proofs[0]?.mint ?? "", proofs.reduce((n, p) => n + p.amount, 0), this.owner, Date.now()],
        );
    });
  }

  /**
   * One transaction: the proofs, the range deleted, and for a claim op the sats this insert stored
   * (a proof another process stored first counts there, not here) added to the record, which this
   * process now owns: another process's restart leaves it to us.
   */
  async restoreRange(range: Reservation, proofs: StoredProof[]): Promise<number> {
    return this.db.tx(async (c) => {
      const sat = await insertProofs(c, proofs);
      await c.query("DELETE FROM pool_reservations WHERE id = $1", [range.id]);
      if (sat > 0 && range.op?.startsWith(CLAIM_OP_PREFIX))
        await c.query(
          `INSERT INTO pool_claims_unfunded (op, mint, sat, owner, created_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (op) DO UPDATE SET sat = pool_claims_unfunded.sat + excluded.sat, owner = excluded.owner`,
          [range.op, range.mint, sat, this.owner, Date.now()],
        );
      return sat;
    });
  }

  /**
   * Claims left uncredited by a process that is gone (a live one is still crediting its own), and
   * those this process restored in its `recover` (they name it as owner now).
   */
  async unfundedClaims(restoredHere: readonly string[] = []): Promise<RestoredClaim[]> {
    return this.db.query<RestoredClaim>(
      `SELECT op, mint, sat FROM pool_claims_unfunded x
        WHERE sat > 0 AND (${OWNER_GONE} OR op = ANY($1::text[])) ORDER BY created_at`,
      [[...restoredHere]],
    );
  }

  async claimFunded(op: string): Promise<void> {
    await this.db.query("DELETE FROM pool_claims_unfunded WHERE op = $1", [op]);
  }

  async denominations(mint: string): Promise<Denomination[]> {
    return denominationsOf(this.db.pool, mint);
  }

  async reserveProofs(mint: string, amount: number, op: string): Promise<StoredProof[] | undefined> {
    return this.planned(async (c) => {
      const plan = selectDenominations(await planCounts(c, mint, amount), amount);
      return plan && take(c, mint, plan, "reserved", op, this.owner);
    });
  }

  async spendExact(
    mint: string,
    amount: number,
    encode: (proofs: StoredProof[]) => string,
    owedId?: string,
  ): Promise<string | undefined> {
    try {
      return await this.planned(async (c) => {
        const plan = selectDenominations(await planCounts(c, mint, amount), amount);
        if (!plan || plan.reduce((s, d) => s + d.amount * d.n, 0) !== amount) return undefined;
        const token = encode(await take(c, mint, plan, "spent", null, null));
        if (owedId !== undefined && !(await insertChange(c, { id: owedId, mint, amount, token })))
          throw new ChangeExists();
        return token;
      });
    } catch (err) {
      // Another process stored this change first: nothing was spent here, theirs is the token.
      if (err instanceof ChangeExists) return (await this.findChange(owedId!))!.token;
      throw err;
    }
  }

  /**
   * Runs a plan-and-take transaction until its plan holds. READ COMMITTED: the counts are only a
   * plan; what protects the proofs is `take` (row locks, SKIP LOCKED) and the rollback on a short
   * take, so no stronger isolation is needed and concurrent reservations never wait on each other.
   */
  private async planned<T>(fn: (c: PgClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.db.tx(fn);
      } catch (err) {
        if (!(err instanceof Shortfall)) throw err;
        if (attempt >= MAX_PLANS)
          throw new EcashError("mint_unavailable", "the gateway wallet is busy; try again", 503);
        await new Promise((r) => setTimeout(r, Math.random() * Math.min(attempt, 10) * 2));
      }
    }
  }

  async finishSwap(op: string, keep: StoredProof[], owed?: OwedSwap): Promise<string | undefined> {
    // READ COMMITTED: writes keyed by op and primary keys; the transaction makes them one step. The
    // change insert waits on a concurrent insert of the same id and then sees it (primary key).
    return this.db.tx(async (c) => {
      await insertProofs(c, keep);
      await c.query("DELETE FROM pool_reservations WHERE op = $1", [op]);
      await c.query(
        "UPDATE pool_proofs SET state = 'spent', op = NULL WHERE op = $1 AND state = 'reserved'",
        [op],
      );
      if (!owed) return undefined;
      if (await insertChange(c, owed)) return owed.token;
      // Another process paid this id first: its token is owed, ours goes back into the pool.
      await insertProofs(c, owed.proofs);
      const stored = await c.query<{ token: string }>("SELECT token FROM pool_change WHERE id = $1", [
        owed.id,
      ]);
      return stored.rows[0]!.token;
    });
  }

  async finishOp(op: string, spent: boolean): Promise<void> {
    await this.db.query("UPDATE pool_proofs SET state = $1, op = NULL WHERE op = $2 AND state = 'reserved'", [
      spent ? "spent" : "available",
      op,
    ]);
  }

  /** Proofs an unfinished operation of a process that is gone still holds reserved. */
  async reservedProofs(): Promise<(StoredProof & { op: string })[]> {
    return this.db.query<StoredProof & { op: string }>(
      `SELECT ${PROOF_COLUMNS}, op FROM pool_proofs x WHERE op IS NOT NULL AND state = 'reserved' AND ${OWNER_GONE}`,
    );
  }

  async markProof(secret: string, state: "available" | "spent"): Promise<void> {
    await this.db.query(
      "UPDATE pool_proofs SET state = $1, op = CASE WHEN $1 = 'spent' THEN op ELSE NULL END WHERE secret = $2",
      [state, secret],
    );
  }

  async spentBy(op: string): Promise<number> {
    const [row] = await this.db.query<{ sat: number }>(
      "SELECT COALESCE(SUM(amount), 0) AS sat FROM pool_proofs WHERE op = $1 AND state IN ('reserved', 'spent')",
      [op],
    );
    return row!.sat;
  }

  async balance(mint?: string): Promise<number> {
    const [row] = mint
      ? await this.db.query<{ v: number }>(
          "SELECT COALESCE(SUM(amount), 0) AS v FROM pool_proofs WHERE state <> 'spent' AND mint = $1",
          [mint],
        )
      : await this.db.query<{ v: number }>(
          "SELECT COALESCE(SUM(amount), 0) AS v FROM pool_proofs WHERE state <> 'spent'",
        );
    return row!.v;
  }

  async balancesByMint(): Promise<Record<string, number>> {
    const rows = await this.db.query<{ mint: string; v: number }>(
      "SELECT mint, SUM(amount) AS v FROM pool_proofs WHERE state = 'available' GROUP BY mint",
    );
    return Object.fromEntries(rows.map((r) => [r.mint, r.v]));
  }

  async hasProof(secret: string): Promise<boolean> {
    return (await this.db.query("SELECT 1 FROM pool_proofs WHERE secret = $1", [secret])).length > 0;
  }

  /** Counter ranges left open by a process that is gone (a live one is still using its own). */
  async unresolvedReservations(): Promise<Reservation[]> {
    return this.db.query<Reservation>(
      `SELECT id, mint, keyset_id, start, count, op FROM pool_reservations x WHERE ${OWNER_GONE} ORDER BY id`,
    );
  }

  async reservationsOf(op: string): Promise<Reservation[]> {
    return this.db.query<Reservation>(
      "SELECT id, mint, keyset_id, start, count, op FROM pool_reservations WHERE op = $1 ORDER BY id",
      [op],
    );
  }

  async resolveOp(op: string): Promise<void> {
    await this.db.query("DELETE FROM pool_reservations WHERE op = $1", [op]);
  }

  async resolveReservation(id: number): Promise<void> {
    await this.db.query("DELETE FROM pool_reservations WHERE id = $1", [id]);
  }

  async findChange(id: string): Promise<{ token: string } | undefined> {
    const [row] = await this.db.query<{ token: string }>("SELECT token FROM pool_change WHERE id = $1", [id]);
    return row;
  }

  /** One statement: read and mark fetched (the first fetch's time is kept). */
  async getChange(id: string): Promise<StoredChange | undefined> {
    const [row] = await this.db.query<StoredChange>(
      "UPDATE pool_change SET fetched_at = COALESCE(fetched_at, $2) WHERE id = $1 RETURNING id, mint, amount, token",
      [id, Date.now()],
    );
    return row;
  }

  /** Change nobody fetched, made before `beforeMs` and not checked since `checkedBeforeMs`. */
  async unfetchedChange(
    beforeMs: number,
    checkedBeforeMs: number,
    limit: number,
  ): Promise<{ id: string; mint: string; token: string }[]> {
    return this.db.query(
      `SELECT id, mint, token FROM pool_change WHERE fetched_at IS NULL AND checked_at < $1 AND created_at < $2
       ORDER BY checked_at, created_at LIMIT $3`,
      [checkedBeforeMs, beforeMs, limit],
    );
  }

  async markChangeChecked(ids: readonly string[], now: number): Promise<void> {
    if (ids.length === 0) return;
    await this.db.query("UPDATE pool_change SET checked_at = $1 WHERE id = ANY($2::text[])", [now, [...ids]]);
  }

  /** Deletes change rows (retention: only rows whose proofs the mint reports all spent). */
  async forgetChange(ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const res = await this.db.pool.query("DELETE FROM pool_change WHERE id = ANY($1::text[])", [[...ids]]);
    return res.rowCount ?? 0;
  }

  /** In short batches, so requests in other processes keep flowing; each delete is atomic by itself. */
  async compact(beforeMs: number, batch = 5000): Promise<number> {
    let deleted = 0;
    for (;;) {
      const res = await this.db.pool.query(
        `DELETE FROM pool_proofs WHERE secret IN (
           SELECT secret FROM pool_proofs WHERE state = 'spent' AND op IS NULL AND created_at < $1 LIMIT $2)`,
        [beforeMs, batch],
      );
      deleted += res.rowCount ?? 0;
      if ((res.rowCount ?? 0) < batch) break;
    }
    const change = await this.db.pool.query(
      "DELETE FROM pool_change WHERE fetched_at IS NOT NULL AND fetched_at < $1",
      [beforeMs],
    );
    return deleted + (change.rowCount ?? 0);
  }

  /**
   * Ends this pool's ownership (what it left unfinished becomes repairable by any process); the
   * database belongs to the composition root, which closes it.
   */
  async close(): Promise<void> {
    const lease = this.lease;
    this.lease = undefined;
    if (!lease) return;
    await lease.query("SELECT pg_advisory_unlock_all()").catch(() => {});
    lease.release();
  }
}
