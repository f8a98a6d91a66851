/**
 * The oracle's state shared by several gateway processes on one PostgreSQL (issue 20): the feed's
 * samples and the published daily averages. One process per period fetches the feed and adds a
 * sample; every process reads the samples and the latest published average from here, so they all
 * price with the same number. A day's average is published once (primary key on the day): the
 * first process to compute it writes it, every process then uses the stored row.
 */
import type { PgDatabase } from "../../src/shared/index.js";
import type { PublishedRate } from "./index.js";

const DAY_MS = 24 * 3600_000;

export const ORACLE_MIGRATIONS = [
  {
    version: 1,
    sql: `
CREATE TABLE oracle_samples (id BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, usd DOUBLE PRECISION NOT NULL);
CREATE INDEX oracle_samples_at ON oracle_samples (at);
CREATE TABLE oracle_published (
  day TEXT PRIMARY KEY, btc_usd_avg DOUBLE PRECISION NOT NULL, published_at TEXT NOT NULL,
  samples INTEGER NOT NULL);
`,
  },
];

/** What the oracle needs of a shared store; each method is one atomic statement. */
export interface OracleStore {
  /** Adds a sample and forgets those older than two days (the oracle never reads them). */
  addSample(at: number, usd: number): Promise<void>;
  /** Samples taken after `since`, oldest first. */
  samples(since: number): Promise<{ at: number; usd: number }[]>;
  /** Publishes a day's average unless that day has one already. */
  publish(p: PublishedRate): Promise<void>;
  /** The most recent day's published average. */
  latestPublished(): Promise<PublishedRate | null>;
}

export class PgOracleStore implements OracleStore {
  private constructor(private readonly db: PgDatabase) {}

  static async open(db: PgDatabase): Promise<PgOracleStore> {
    await db.migrate("oracle", ORACLE_MIGRATIONS);
    return new PgOracleStore(db);
  }

  async addSample(at: number, usd: number): Promise<void> {
    // Single statements at READ COMMITTED: samples are appended, never updated; the prune is
    // idempotent (a second process pruning the same rows deletes nothing).
    await this.db.query("INSERT INTO oracle_samples (at, usd) VALUES ($1, $2)", [at, usd]);
    await this.db.query("DELETE FROM oracle_samples WHERE at <= $1", [at - 2 * DAY_MS]);
  }

  async samples(since: number): Promise<{ at: number; usd: number }[]> {
    return this.db.query<{ at: number; usd: number }>(
      "SELECT at, usd FROM oracle_samples WHERE at > $1 ORDER BY at, id",
      [since],
    );
  }

  async publish(p: PublishedRate): Promise<void> {
    // The day's primary key: of two processes publishing at once, the first row stays.
    await this.db.query(
      `INSERT INTO oracle_published (day, btc_usd_avg, published_at, samples) VALUES ($1, $2, $3, $4)
       ON CONFLICT (day) DO NOTHING`,
      [p.day, p.btc_usd_avg, p.published_at, p.samples],
    );
  }

  async latestPublished(): Promise<PublishedRate | null> {
    const [row] = await this.db.query<PublishedRate>(
      "SELECT btc_usd_avg, day, published_at, samples FROM oracle_published ORDER BY day DESC LIMIT 1",
    );
    return row ?? null;
  }
}
