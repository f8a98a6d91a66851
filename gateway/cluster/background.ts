/**
 * Background work that must run once across gateway processes (payouts, the stale-hold sweeper,
 * challenge pruning, retention): every process ticks on its own timer, and the first to claim the
 * period runs it. The claim is one atomic statement, so two processes ticking at once cannot both
 * win; the run itself is under `exclusively`, so a run longer than its period never overlaps the next.
 */
import type { PgDatabase } from "../../src/shared/index.js";

/** A period may be claimed again once this share of it has passed (timers drift a little). */
const RECLAIM_AFTER = 0.8;

/** True for exactly one caller per period of `name` across processes. */
export async function claimPeriod(
  db: PgDatabase,
  name: string,
  periodMs: number,
  processId: string,
): Promise<boolean> {
  // READ COMMITTED is enough: a conflicting upsert waits on the row and re-checks the WHERE against
  // the winner's committed ran_at, so of two concurrent claims only one returns a row.
  const rows = await db.query(
    `INSERT INTO cluster_runs (name, ran_at, by_process) VALUES ($1, now(), $2)
     ON CONFLICT (name) DO UPDATE SET ran_at = now(), by_process = $2
       WHERE cluster_runs.ran_at <= now() - make_interval(secs => $3::float8 / 1000)
     RETURNING 1`,
    [name, processId, periodMs * RECLAIM_AFTER],
  );
  return rows.length === 1;
}

/** Runs `fn` if this process claims this period of `name`; undefined when another one has it. */
export async function runOncePerPeriod<T>(
  db: PgDatabase,
  name: string,
  periodMs: number,
  processId: string,
  fn: () => Promise<T>,
): Promise<T | undefined> {
  if (!(await claimPeriod(db, name, periodMs, processId))) return undefined;
  return db.exclusively(`owlrun:background:${name}`, fn);
}

/**
 * Runs `fn` while holding the cluster-wide lock `name`, waiting for it: two processes restarting
 * at once repair one after the other, so both never credit the same restored claim (the second
 * finds the first's repair done). Unlike `runOncePerPeriod` nobody skips: each process's repair
 * may see a dead process the other did not.
 */
export async function serially<T>(db: PgDatabase, name: string, fn: () => Promise<T>): Promise<T> {
  const client = await db.pool.connect();
  try {
    await client.query("SELECT pg_advisory_lock(hashtext($1))", [`owlrun:serially:${name}`]);
    try {
      return await fn();
    } finally {
      await client
        .query("SELECT pg_advisory_unlock(hashtext($1))", [`owlrun:serially:${name}`])
        .catch(() => undefined);
    }
  } finally {
    client.release();
  }
}
