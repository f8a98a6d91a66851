/**
 * `PgDatabase.atomically`: everything done through the view — migrations, transactions, plain
 * queries — commits together or not at all (what `gateway migrate-sqlite` relies on), a failed
 * inner transaction is undone alone, and a process starting meanwhile waits for the migrations.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgDatabase } from "../../src/shared/postgres.js";
import { testDatabase } from "../support/postgres.js";

const STEPS = [{ version: 1, sql: "CREATE TABLE a_rows (id INTEGER PRIMARY KEY)" }];
let db: { url: string; drop(): Promise<void> };
let pg: PgDatabase;
let other: PgDatabase;

beforeAll(async () => {
  db = await testDatabase("atomic");
  pg = await PgDatabase.open(db.url, { max: 2 });
  other = await PgDatabase.open(db.url, { max: 2 });
});
afterAll(async () => {
  await pg?.close();
  await other?.close();
  await db?.drop();
});

const tableOf = async (p: PgDatabase) =>
  (await p.query<{ t: string | null }>("SELECT to_regclass('a_rows')::text AS t"))[0]!.t;

describe("PgDatabase.atomically", () => {
  it("rolls back migrations, transactions and queries together when the unit throws", async () => {
    await expect(
      pg.atomically(async (unit) => {
        await unit.migrate("atomic", STEPS);
        await unit.tx(async (c) => void (await c.query("INSERT INTO a_rows VALUES (1)")));
        await unit.query("INSERT INTO a_rows VALUES (2)");
        expect((await unit.query("SELECT id FROM a_rows")).length).toBe(2);
        throw new Error("a check failed");
      }),
    ).rejects.toThrow("a check failed");
    expect(await tableOf(other)).toBeNull();
    expect(await other.query("SELECT to_regclass('schema_migrations')::text AS t")).toEqual([{ t: null }]);
  });

  it("commits everything at the end; another process sees nothing before, and its migrate waits", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let inside!: () => void;
    const started = new Promise<void>((r) => (inside = r));
    const unit = pg.atomically(async (u) => {
      await u.migrate("atomic", STEPS);
      await u.tx(async (c) => void (await c.query("INSERT INTO a_rows VALUES (1)")));
      // An inner transaction that fails is undone alone.
      await expect(u.tx((c) => c.query("INSERT INTO a_rows VALUES (1)"))).rejects.toThrow(/duplicate/);
      await u.query("INSERT INTO a_rows VALUES (2)");
      inside();
      await gate;
    });
    await started;
    expect(await tableOf(other)).toBeNull();
    let migrated = false;
    const waiting = other.migrate("atomic", STEPS).then(() => (migrated = true));
    await new Promise((r) => setTimeout(r, 100));
    expect(migrated).toBe(false); // the unit holds the migration lock until it ends
    release();
    await unit;
    await waiting;
    expect((await other.query<{ id: number }>("SELECT id FROM a_rows ORDER BY id")).map((r) => r.id)).toEqual(
      [1, 2],
    );
    const steps = await other.query("SELECT version FROM schema_migrations WHERE component = 'atomic'");
    expect(steps).toEqual([{ version: 1 }]);
  });
});
