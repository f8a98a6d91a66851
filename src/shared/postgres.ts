/**
 * How every store reaches PostgreSQL when several processes must share it (`--database-url`):
 * one connection pool per process, forward-only versioned migrations per component applied under
 * an advisory lock (two processes starting at once apply each step exactly once), and transactions
 * that retry when PostgreSQL aborts them for a serialization failure or a deadlock.
 *
 * SQLite stays the embedded default; a store that supports both takes a `PgDatabase` or a path.
 */
import pg from "pg";

/** int8 (COUNT, SUM, BIGINT columns) as a JS number: every amount here is far below 2^53 msat. */
pg.types.setTypeParser(20, (v) => Number(v));
/** numeric (SUM over BIGINT returns numeric) likewise. */
pg.types.setTypeParser(1700, (v) => Number(v));

export type PgClient = pg.PoolClient;
export type Queryable = pg.Pool | pg.PoolClient;

/**
 * READ COMMITTED suffices for single-statement checks (`UPDATE … WHERE balance >= $1`,
 * `INSERT … ON CONFLICT DO NOTHING`); SERIALIZABLE where a transaction reads, decides and writes
 * across rows no single statement can lock; REPEATABLE READ for consistent multi-query reads.
 */
export type Isolation = "read committed" | "repeatable read" | "serializable";

/** One forward-only schema step; `version` numbers within a component start at 1 and never change. */
export interface Migration {
  version: number;
  sql: string;
}

/** SQLSTATEs after which the whole transaction may simply run again. */
const RETRYABLE = new Set(["40001", "40P01"]);
/** Each round of conflicting transactions commits at least one, so this many contenders always finish. */
const MAX_ATTEMPTS = 12;

export class PgDatabase {
  readonly pool: pg.Pool;
  /** Set by `atomically`: every call runs on this one connection, inside its one transaction. */
  private readonly bound: PgClient | undefined;
  private savepoints = 0;

  private constructor(pool: pg.Pool, bound?: PgClient) {
    this.pool = pool;
    this.bound = bound;
  }

  /**
   * Runs `fn` with a view of this database whose every `query`, `tx` and `migrate` runs on one
   * connection inside ONE transaction (a `tx` becomes a savepoint, `migrate` takes its lock for the
   * transaction): committed when `fn` returns, rolled back whole when it throws. For all-or-nothing
   * work across components (`gateway migrate-sqlite`). Calls on the view must be sequential, and
   * nothing retries inside it: a serialization failure fails the whole unit.
   */
  async atomically<T>(fn: (db: PgDatabase) => Promise<T>): Promise<T> {
    if (this.bound) return fn(this);
    const client = await this.pool.connect();
    try {
      // READ COMMITTED: the callers lock what they check (advisory locks, emptiness under them).
      await client.query("BEGIN ISOLATION LEVEL READ COMMITTED");
      const out = await fn(new PgDatabase(this.pool, client));
      await client.query("COMMIT");
      return out;
    } catch (err) {
      await client.query("ROLLBACK").catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  /** `fn` inside a savepoint of the bound transaction: undone alone if it throws. */
  private async savepoint<T>(client: PgClient, fn: (c: PgClient) => Promise<T>): Promise<T> {
    const name = `owlrun_sp_${++this.savepoints}`;
    await client.query(`SAVEPOINT ${name}`);
    try {
      const out = await fn(client);
      await client.query(`RELEASE SAVEPOINT ${name}`);
      return out;
    } catch (err) {
      await client.query(`ROLLBACK TO SAVEPOINT ${name}`).catch(() => {});
      throw err;
    }
  }

  /** Opens a pool on `url` (postgres://user:pass@host:port/db). `max` bounds connections per process. */
  static async open(url: string, opts: { max?: number; applicationName?: string } = {}): Promise<PgDatabase> {
    const pool = new pg.Pool({
      connectionString: url,
      max: opts.max ?? 10,
      application_name: opts.applicationName ?? "owlrun",
    });
    // An idle client that loses its server (restart, network) must not crash the process.
    pool.on("error", () => {});
    const db = new PgDatabase(pool);
    await db.query("SELECT 1");
    return db;
  }

  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string,
    params?: unknown[],
  ): Promise<R[]> {
    const res = await (this.bound ?? this.pool).query<R>(text, params as unknown[]);
    return res.rows;
  }

  /**
   * Runs `fn` in one transaction at `isolation`, committing on success and rolling back on error.
   * Serialization failures and deadlocks run `fn` again from the start (so `fn` must not have side
   * effects outside the transaction).
   */
  async tx<T>(fn: (c: PgClient) => Promise<T>, isolation: Isolation = "read committed"): Promise<T> {
    if (this.bound) return this.savepoint(this.bound, fn);
    for (let attempt = 1; ; attempt++) {
      const client = await this.pool.connect();
      try {
        await client.query(`BEGIN ISOLATION LEVEL ${isolation.toUpperCase()}`);
        const out = await fn(client);
        await client.query("COMMIT");
        return out;
      } catch (err) {
        await client.query("ROLLBACK").catch(() => {});
        const code = (err as { code?: string }).code;
        if (code && RETRYABLE.has(code) && attempt < MAX_ATTEMPTS) {
          await new Promise((r) => setTimeout(r, Math.random() * 5 * 2 ** Math.min(attempt, 6)));
          continue;
        }
        throw err;
      } finally {
        client.release();
      }
    }
  }

  /**
   * Applies `component`'s migrations not yet recorded, in order, each in its own transaction, while
   * holding a cluster-wide advisory lock: a second process starting at the same moment waits, then
   * finds the steps done.
   */
  async migrate(component: string, migrations: readonly Migration[]): Promise<void> {
    if (this.bound) {
      // Held to the end of the bound transaction: a gateway starting meanwhile waits for it.
      await this.bound.query("SELECT pg_advisory_xact_lock(hashtext('owlrun:migrate'))");
      return this.applyMigrations(this.bound, component, migrations, (fn) => this.savepoint(this.bound!, fn));
    }
    const client = await this.pool.connect();
    try {
      await client.query("SELECT pg_advisory_lock(hashtext('owlrun:migrate'))");
      try {
        await this.applyMigrations(client, component, migrations, async (fn) => {
          await client.query("BEGIN");
          try {
            await fn(client);
            await client.query("COMMIT");
          } catch (err) {
            await client.query("ROLLBACK").catch(() => {});
            throw err;
          }
        });
      } finally {
        await client.query("SELECT pg_advisory_unlock(hashtext('owlrun:migrate'))").catch(() => {});
      }
    } finally {
      client.release();
    }
  }

  /** The steps of `component` not yet recorded, each applied and recorded by `step` (one transaction). */
  private async applyMigrations(
    client: PgClient,
    component: string,
    migrations: readonly Migration[],
    step: (fn: (c: PgClient) => Promise<void>) => Promise<void>,
  ): Promise<void> {
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         component TEXT NOT NULL, version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),
         PRIMARY KEY (component, version))`,
    );
    const done = await client.query<{ version: number }>(
      "SELECT version FROM schema_migrations WHERE component = $1",
      [component],
    );
    const applied = new Set(done.rows.map((r) => r.version));
    for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
      if (applied.has(m.version)) continue;
      await step(async (c) => {
        await c.query(m.sql);
        await c.query("INSERT INTO schema_migrations (component, version) VALUES ($1, $2)", [
          component,
          m.version,
        ]);
      });
    }
  }

  /**
   * Runs `fn` only if no other process holds the lease `name` right now (a session advisory lock
   * held for the duration): background work that must happen once across processes.
   * Returns undefined when another process has it.
   */
  async exclusively<T>(name: string, fn: () => Promise<T>): Promise<T | undefined> {
    if (this.bound) {
      const got = await this.bound.query<{ ok: boolean }>(
        "SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok",
        [name],
      );
      return got.rows[0]?.ok ? fn() : undefined;
    }
    const client = await this.pool.connect();
    try {
      const got = await client.query<{ ok: boolean }>("SELECT pg_try_advisory_lock(hashtext($1)) AS ok", [
        name,
      ]);
      if (!got.rows[0]?.ok) return undefined;
      try {
        return await fn();
      } finally {
        await client.query("SELECT pg_advisory_unlock(hashtext($1))", [name]).catch(() => {});
      }
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    if (this.bound) return; // the view of `atomically`: the pool belongs to its owner
    await this.pool.end();
  }
}
