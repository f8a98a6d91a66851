/**
 * Leases on one market step that spans the store and the ledger or the mint (an accept between its
 * claim and its escrow lock, a collect between its journal row and the mint's answer). The repair
 * of such a step (the sweeper, a restart) may only act when nobody is in the middle of it; a lease
 * says exactly that, and it ends with its holder, even one killed with -9.
 *
 * In one process (SQLite) a lease is a name in a set. With PostgreSQL it is also a session advisory
 * lock, taken on one connection this process keeps for its leases: the lock goes when the process
 * (and so its connection) goes. One dedicated connection, not one per lease from the pool: a lease
 * held across ledger calls that need pool connections would otherwise let N concurrent holders
 * exhaust the pool and wait on each other forever.
 */
import type { PgClient, PgDatabase } from "../../src/shared/index.js";

export interface Leases {
  /** Runs `fn` while holding `name`; undefined (and `fn` not run) when someone else holds it. */
  run<T>(name: string, fn: () => Promise<T>): Promise<T | undefined>;
  close(): Promise<void>;
}

export const acceptLease = (taskId: string) => `market-accept:${taskId}`;
export const collectLease = (collectionId: string) => `market-collect:${collectionId}`;

/** Leases within this process only (the SQLite market: one gateway process per data dir). */
export class LocalLeases implements Leases {
  private readonly held = new Set<string>();

  async run<T>(name: string, fn: () => Promise<T>): Promise<T | undefined> {
    if (this.held.has(name)) return undefined;
    this.held.add(name);
    try {
      return await fn();
    } finally {
      this.held.delete(name);
    }
  }

  async close(): Promise<void> {}
}

/**
 * Leases across every process on the database. Advisory locks are re-entrant within a session, so
 * the in-process set still refuses a second holder in this process.
 */
export class PgLeases implements Leases {
  private readonly local = new LocalLeases();
  private client?: Promise<PgClient>;
  private closed = false;

  constructor(private readonly db: PgDatabase) {}

  async run<T>(name: string, fn: () => Promise<T>): Promise<T | undefined> {
    return this.local.run(name, async () => {
      const client = await this.connection();
      const got = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(hashtext($1)) AS ok", [
        name,
      ]);
      if (!got.rows[0]?.ok) return undefined;
      try {
        return await fn();
      } finally {
        await client.query("SELECT pg_advisory_unlock(hashtext($1))", [name]).catch(() => {});
      }
    });
  }

  /** The lease connection; a broken one is dropped (its locks went with it) and replaced on next use. */
  private connection(): Promise<PgClient> {
    if (this.closed) return Promise.reject(new Error("market leases closed"));
    this.client ??= this.db.pool.connect().then((c) => {
      c.on("error", () => {
        this.client = undefined;
        c.release(true);
      });
      return c;
    });
    const pending = this.client;
    pending.catch(() => {
      if (this.client === pending) this.client = undefined;
    });
    return pending;
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = await this.client?.catch(() => undefined);
    this.client = undefined;
    c?.release();
  }
}
