/** JobLog contract on SQLite and PostgreSQL, and the copy from jobs.sqlite. */
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  AUDIT_PAGE_SIZE,
  copyJobLogFromSqlite,
  type JobLog,
  type JobRecord,
  PgJobLog,
  SqliteJobLog,
} from "../../gateway/api/joblog.js";
import { PgDatabase } from "../../src/shared/postgres.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";
import { backends, type TwoStores } from "./two-stores.js";

const impls = backends<JobLog>(
  (dir) => new SqliteJobLog(join(dir, "jobs.sqlite")),
  (db) => PgJobLog.open(db),
);

const job = (i: number): JobRecord => ({
  model: `m${i % 3}`,
  tokensIn: 10,
  tokensOut: i,
  durationMs: 100 + i,
  costSats: i,
  status: i % 5 ? "completed" : "failed",
});

describe.each(impls)("JobLog on $name", (impl) => {
  let s: TwoStores<JobLog>;
  afterEach(async () => {
    await s?.close();
  });

  it("two processes record; stats, pages and pruning see every job", async () => {
    s = await impl.open();
    expect(await s.a.last24h()).toEqual({ jobs_24h: 0, tokens_24h: 0 });
    expect(await s.a.page(1)).toEqual({ jobs: [], total: 0, page: 1, page_size: AUDIT_PAGE_SIZE });
    await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 ? s.a : s.b).record(job(i))));
    expect(await s.b.last24h()).toEqual({ jobs_24h: 60, tokens_24h: 600 + (59 * 60) / 2 });
    const p1 = await s.a.page(1);
    const p2 = await s.b.page(2);
    expect(p1.total).toBe(60);
    expect(p1.jobs).toHaveLength(50);
    expect(p2.jobs).toHaveLength(10);
    expect(p2.jobs[0]).toMatchObject({ id: expect.stringMatching(/^job_[0-9a-f]{12}$/), tokens_in: 10 });
    expect(Object.keys(p2.jobs[0] as object).sort()).toEqual(
      ["cost_sats", "duration_ms", "id", "model", "status", "timestamp", "tokens_in", "tokens_out"].sort(),
    );
    expect(await s.a.prune(Date.now() - 60_000)).toBe(0);
    expect(await s.b.prune(Date.now() + 1)).toBe(60);
    expect((await s.a.page(1)).total).toBe(0);
  });
});

it("copyJobLogFromSqlite keeps every job; a second run changes nothing", async () => {
  const dir = tempDir();
  const sqlite = new SqliteJobLog(join(dir, "jobs.sqlite"));
  for (let i = 0; i < 7; i++) await sqlite.record(job(i));
  const before = await sqlite.page(1);
  sqlite.close();
  const db = await testDatabase("joblog");
  const database = await PgDatabase.open(db.url);
  try {
    expect(await copyJobLogFromSqlite(dir, database)).toEqual({ jobs: 7 });
    expect(await copyJobLogFromSqlite(dir, database)).toEqual({ jobs: 7 });
    const pg = await PgJobLog.open(database);
    const after = await pg.page(1);
    const byId = (p: typeof before) => [...p.jobs].sort((x: any, y: any) => x.id.localeCompare(y.id));
    expect(byId(after)).toEqual(byId(before));
    expect(after.total).toBe(7);
  } finally {
    await database.close();
    await db.drop();
  }
});
