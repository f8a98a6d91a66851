/**
 * The public record of served jobs: what /v1/stats counts and /v1/audit pages through. Anonymised
 * by construction: a random public id, the model, token counts, duration and cost — no key, no
 * account, no node identity, no content.
 */
import { randomBytes } from "node:crypto";
import { SqliteStore } from "../../src/shared/sqlite.js";

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

export const AUDIT_PAGE_SIZE = 50;

export class JobLog extends SqliteStore {
  constructor(path: string) {
    super(path, SCHEMA);
  }

  record(job: JobRecord): void {
    this.prepared(
      "INSERT INTO jobs (id, model, tokens_in, tokens_out, duration_ms, cost_sats, status, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ).run(
      `job_${randomBytes(6).toString("hex")}`,
      job.model,
      job.tokensIn,
      job.tokensOut,
      job.durationMs,
      job.costSats,
      job.status,
      Date.now(),
    );
  }

  /** Retention: forgets jobs served before `beforeMs`; returns how many. */
  prune(beforeMs: number): number {
    const del = this.prepared(
      "DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs WHERE at < ? LIMIT 5000)",
    );
    let total = 0;
    for (let n = -1; n !== 0; total += Math.max(n, 0)) n = del.run(beforeMs).changes; // short write locks
    return total;
  }

  last24h(): { jobs_24h: number; tokens_24h: number } {
    const row = this.prepared(
      "SELECT COUNT(*) AS n, COALESCE(SUM(tokens_in + tokens_out), 0) AS t FROM jobs WHERE at > ?",
    ).get(Date.now() - 24 * 3600_000) as { n: number; t: number };
    return { jobs_24h: row.n, tokens_24h: row.t };
  }

  page(page: number): { jobs: unknown[]; total: number; page: number; page_size: number } {
    const total = (this.prepared("SELECT COUNT(*) AS n FROM jobs").get() as { n: number }).n;
    const rows = this.prepared("SELECT * FROM jobs ORDER BY at DESC LIMIT ? OFFSET ?").all(
      AUDIT_PAGE_SIZE,
      (page - 1) * AUDIT_PAGE_SIZE,
    ) as {
      id: string;
      model: string;
      tokens_in: number;
      tokens_out: number;
      duration_ms: number;
      cost_sats: number;
      status: string;
      at: number;
    }[];
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
}
