/**
 * The public record of served jobs: what /v1/stats counts and /v1/audit pages through. Anonymised
 * by construction: a random public id, the model, token counts, duration and cost — no key, no
 * account, no node identity, no content. `SqliteJobLog` (`jobs.sqlite`) by default, `PgJobLog`
 * with `--database-url`.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { PgDatabase } from "../../src/shared/index.js";
import { SqliteStore } from "../../src/shared/sqlite.js";
import { copyTable, openSqliteForCopy } from "../sqlite-copy.js";

export interface JobRecord {
  model: string;
  tokensIn: number;
  tokensOut: number;
  durationMs: number;
  costSats: number;
  status: "completed" | "failed" | "cancelled";
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, model TEXT NOT NULL, tokens_in INTEGER NOT NULL, tokens_out INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL, cost_sats INTEGER NOT NULL, status TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_at ON jobs (at);
`;

/** The same table in PostgreSQL (`joblog_…`), shared by every gateway process: one statement per method. */
const PG_MIGRATIONS = [
  {
    version: 1,
    sql: `
CREATE TABLE joblog_jobs (
  id TEXT PRIMARY KEY, model TEXT NOT NULL, tokens_in BIGINT NOT NULL, tokens_out BIGINT NOT NULL,
  duration_ms BIGINT NOT NULL, cost_sats BIGINT NOT NULL, status TEXT NOT NULL, at BIGINT NOT NULL);
CREATE INDEX joblog_jobs_at ON joblog_jobs (at);`,
  },
];

export const AUDIT_PAGE_SIZE = 50;

export interface AuditPage {
  jobs: unknown[];
  total: number;
  page: number;
  page_size: number;
}

interface JobRow {
  id: string;
  model: string;
  tokens_in: number;
  tokens_out: number;
  duration_ms: number;
  cost_sats: number;
  status: string;
  at: number;
}

export const newJobId = () => `job_${randomBytes(6).toString("hex")}`;

export function auditPage(rows: JobRow[], total: number, page: number): AuditPage {
  return {
    jobs: rows.map((r) => ({
      id: r.id,
      model: r.model,
      tokens_in: r.tokens_in,
      tokens_out: r.tokens_out,
      duration_ms: r.duration_ms,
      cost_sats: r.cost_sats,
      status: r.status,
      timestamp: new Date(r.at).toISOString(),
    })),
    total,
    page,
    page_size: AUDIT_PAGE_SIZE,
  };
}

/** The public job record; each method one atomic step. */
export interface JobLog {
  record(job: JobRecord): Promise<void>;
  /** Retention: forgets jobs served before `beforeMs`; returns how many. */
  prune(beforeMs: number): Promise<number>;
  last24h(): Promise<{ jobs_24h: number; tokens_24h: number }>;
  page(page: number): Promise<AuditPage>;
  close(): void;
}

export class SqliteJobLog extends SqliteStore implements JobLog {
  constructor(path: string) {
    super(path, SCHEMA);
  }

  async record(job: JobRecord): Promise<void> {
    this.prepared(
      "INSERT INTO jobs (id, model, tokens_in, tokens_out, duration_ms, cost_sats, status, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ).run(
      newJobId(),
      job.model,
      job.tokensIn,
      job.tokensOut,
      job.durationMs,
      job.costSats,
      job.status,
      Date.now(),
    );
  }

  async prune(beforeMs: number): Promise<number> {
    const del = this.prepared(
      "DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs WHERE at < ? LIMIT 5000)",
    );
    let total = 0;
    for (let n = -1; n !== 0; total += Math.max(n, 0)) n = del.run(beforeMs).changes; // short write locks
    return total;
  }

  async last24h(): Promise<{ jobs_24h: number; tokens_24h: number }> {
    const row = this.prepared(
      "SELECT COUNT(*) AS n, COALESCE(SUM(tokens_in + tokens_out), 0) AS t FROM jobs WHERE at > ?",
    ).get(Date.now() - 24 * 3600_000) as { n: number; t: number };
    return { jobs_24h: row.n, tokens_24h: row.t };
  }

  async page(page: number): Promise<AuditPage> {
    const total = (this.prepared("SELECT COUNT(*) AS n FROM jobs").get() as { n: number }).n;
    const rows = this.prepared("SELECT * FROM jobs ORDER BY at DESC LIMIT ? OFFSET ?").all(
      AUDIT_PAGE_SIZE,
      (page - 1) * AUDIT_PAGE_SIZE,
    ) as JobRow[];
    return auditPage(rows, total, page);
  }
}

export class PgJobLog implements JobLog {
  private constructor(private readonly db: PgDatabase) {}

  static async open(db: PgDatabase): Promise<PgJobLog> {
    await db.migrate("joblog", PG_MIGRATIONS);
    return new PgJobLog(db);
  }

  async record(job: JobRecord): Promise<void> {
    await this.db.query(
      `INSERT INTO joblog_jobs (id, model, tokens_in, tokens_out, duration_ms, cost_sats, status, at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        newJobId(),
        job.model,
        job.tokensIn,
        job.tokensOut,
        job.durationMs,
        job.costSats,
        job.status,
        Date.now(),
      ],
    );
  }

  async prune(beforeMs: number): Promise<number> {
    let total = 0;
    // Batches keep each statement's locks short while the other processes write.
    for (;;) {
      const rows = await this.db.query(
        `DELETE FROM joblog_jobs WHERE id IN (SELECT id FROM joblog_jobs WHERE at < $1 LIMIT 5000) RETURNING 1`,
        [beforeMs],
      );
      total += rows.length;
      if (rows.length === 0) return total;
    }
  }

  async last24h(): Promise<{ jobs_24h: number; tokens_24h: number }> {
    const [row] = await this.db.query<{ n: number; t: number }>(
      "SELECT COUNT(*) AS n, COALESCE(SUM(tokens_in + tokens_out), 0) AS t FROM joblog_jobs WHERE at > $1",
      [Date.now() - 24 * 3600_000],
    );
    return { jobs_24h: row!.n, tokens_24h: row!.t };
  }

  async page(page: number): Promise<AuditPage> {
    // One statement: the count and the page from the same snapshot.
    const rows = await this.db.query<JobRow & { total: number }>(
      `SELECT j.*, (SELECT COUNT(*) FROM joblog_jobs) AS total FROM joblog_jobs j
       ORDER BY at DESC, id LIMIT $1 OFFSET $2`,
      [AUDIT_PAGE_SIZE, (page - 1) * AUDIT_PAGE_SIZE],
    );
    const total =
      rows[0]?.total ?? (await this.db.query<{ n: number }>("SELECT COUNT(*) AS n FROM joblog_jobs"))[0]!.n;
    return auditPage(rows, total, page);
  }

  close(): void {
    // The pool belongs to the composition root.
  }
}

export async function openJobLog(dataDir: string, database?: PgDatabase): Promise<JobLog> {
  return database ? PgJobLog.open(database) : new SqliteJobLog(join(dataDir, "jobs.sqlite"));
}

/** `gateway migrate-sqlite`: every job of `<dataDir>/jobs.sqlite` into joblog_jobs. */
export async function copyJobLogFromSqlite(dataDir: string, database: PgDatabase): Promise<{ jobs: number }> {
  await database.migrate("joblog", PG_MIGRATIONS);
  const sqlite = openSqliteForCopy(join(dataDir, "jobs.sqlite"));
  if (!sqlite) return { jobs: 0 };
  try {
    const columns = ["id", "model", "tokens_in", "tokens_out", "duration_ms", "cost_sats", "status", "at"];
    return { jobs: await database.tx((c) => copyTable(c, sqlite, "jobs", "joblog_jobs", columns)) };
  } finally {
    sqlite.close();
  }
}
