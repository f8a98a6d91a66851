import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgDatabase } from "../../src/shared/postgres.js";
import { testDatabase } from "../support/postgres.js";

describe("PostgreSQL foundation", () => {
  let db: { url: string; drop(): Promise<void> };
  beforeAll(async () => {
    db = await testDatabase();
  });
  afterAll(async () => {
    await db.drop();
  });

  it("applies each migration once when several processes' pools start at the same moment", async () => {
    const migrations = [
      { version: 1, sql: "CREATE TABLE m1 (id INTEGER PRIMARY KEY); INSERT INTO m1 VALUES (1)" },
      { version: 2, sql: "ALTER TABLE m1 ADD COLUMN note TEXT; INSERT INTO m1 VALUES (2, 'x')" },
    ];
    const pools = await Promise.all([1, 2, 3, 4].map(() => PgDatabase.open(db.url, { max: 2 })));
    try {
      await Promise.all(pools.map((p) => p.migrate("demo", migrations)));
      const rows = await pools[0]!.query<{ id: number }>("SELECT id FROM m1 ORDER BY id");
      expect(rows.map((r) => r.id)).toEqual([1, 2]);
      const done = await pools[0]!.query<{ version: number }>(
        "SELECT version FROM schema_migrations WHERE component = 'demo' ORDER BY version",
      );
      expect(done.map((r) => r.version)).toEqual([1, 2]);
      // A later start adds only the new step.
      await pools[1]!.migrate("demo", [...migrations, { version: 3, sql: "INSERT INTO m1 VALUES (3, 'y')" }]);
      expect((await pools[2]!.query("SELECT id FROM m1")).length).toBe(3);
    } finally {
      await Promise.all(pools.map((p) => p.close()));
    }
  });

  it("retries a serializable transaction that lost a race, so both increments land", async () => {
    const p = await PgDatabase.open(db.url, { max: 8 });
    try {
      await p.query("CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)");
      await p.query("INSERT INTO counter VALUES (1, 0)");
      await Promise.all(
        Array.from({ length: 10 }, () =>
          p.tx(async (c) => {
            const r = await c.query<{ n: number }>("SELECT n FROM counter WHERE id = 1");
            await c.query("UPDATE counter SET n = $1 WHERE id = 1", [r.rows[0]!.n + 1]);
          }, "serializable"),
        ),
      );
      expect((await p.query<{ n: number }>("SELECT n FROM counter"))[0]!.n).toBe(10);
    } finally {
      await p.close();
    }
  });

  it("runs leased work in one process at a time", async () => {
    const a = await PgDatabase.open(db.url, { max: 2 });
    const b = await PgDatabase.open(db.url, { max: 2 });
    try {
      let release!: () => void;
      const held = new Promise<void>((r) => (release = r));
      const first = a.exclusively("payouts", () => held.then(() => "a"));
      await new Promise((r) => setTimeout(r, 50));
      expect(await b.exclusively("payouts", async () => "b")).toBeUndefined();
      release();
      expect(await first).toBe("a");
      expect(await b.exclusively("payouts", async () => "b")).toBe("b");
    } finally {
      await a.close();
      await b.close();
    }
  });
});
