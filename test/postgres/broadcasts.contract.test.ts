/** BroadcastStore contract on SQLite and PostgreSQL, the shared admin token, and the copy. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  adminToken,
  adminTokenOf,
  type BroadcastStore,
  copyBroadcastsFromSqlite,
  PgBroadcastStore,
  SqliteBroadcastStore,
} from "../../gateway/broadcasts/index.js";
import { PgDatabase } from "../../src/shared/postgres.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";
import { backends, type TwoStores } from "./two-stores.js";

const impls = backends<BroadcastStore>(
  (dir) => SqliteBroadcastStore.open(dir),
  (db) => PgBroadcastStore.open(db),
);

describe.each(impls)("BroadcastStore on $name", (impl) => {
  let s: TwoStores<BroadcastStore>;
  afterEach(async () => {
    await s?.close();
  });

  it("published by one process, shown and expired by the other", async () => {
    s = await impl.open();
    const t0 = Date.parse("2026-01-01T00:00:00Z");
    const soon = await s.a.publish({ message: "soon over", expires_in_seconds: 60 }, t0);
    const lasting = await s.a.publish({ message: "stays", level: "warning" }, t0 + 1);
    expect(soon).toMatchObject({ level: "info", expires_at: "2026-01-01T00:01:00.000Z" });
    expect((await s.b.active(t0 + 59_999)).map((x) => x.id)).toEqual([lasting.id, soon.id]);
    expect((await s.b.active(t0 + 60_000)).map((x) => x.id)).toEqual([lasting.id]);
    expect(await s.b.expire(lasting.id, t0 + 10)).toBe(true);
    expect(await s.a.expire(lasting.id, t0 + 11)).toBe(false);
    expect(await s.a.expire("nope")).toBe(false);
    expect(await s.a.active(t0 + 20)).toEqual([soon]);
    expect((await s.b.all()).map((x) => x.id)).toEqual([lasting.id, soon.id]);
    expect(await s.b.all(1)).toHaveLength(1);
    await expect(s.a.publish({ message: "x", expires_at: "2020-01-01T00:00:00Z" })).rejects.toThrow(/past/);
    await expect(s.a.publish({ message: " " })).rejects.toThrow();
  });
});

describe("broadcasts on PostgreSQL: admin token and copy", () => {
  it("every process (and the CLI) gets one admin token; the copy keeps the data dir's token and broadcasts", async () => {
    const dir = tempDir();
    const fileToken = adminToken(dir);
    const sqlite = SqliteBroadcastStore.open(dir);
    const b = await sqlite.publish({ message: "maintenance at noon", level: "critical" });
    sqlite.close();
    const db = await testDatabase("bcast");
    const one = await PgDatabase.open(db.url);
    const two = await PgDatabase.open(db.url);
    try {
      expect(await copyBroadcastsFromSqlite(dir, one)).toEqual({ broadcasts: 1, admin_token: 1 });
      expect(await copyBroadcastsFromSqlite(dir, one)).toEqual({ broadcasts: 1, admin_token: 1 });
      const tokens = await Promise.all([adminTokenOf(tempDir(), one), adminTokenOf(tempDir(), two)]);
      expect(tokens).toEqual([fileToken, fileToken]);
      expect(await (await PgBroadcastStore.open(two)).active()).toEqual([b]);
      // A different data dir's token does not replace the one the database has.
      writeFileSync(join(dir, "admin-token"), "owlr_admin_other\n");
      expect((await copyBroadcastsFromSqlite(dir, two)).admin_token).toBe(0);
      expect(await adminTokenOf(dir, two)).toBe(fileToken);
    } finally {
      await one.close();
      await two.close();
      await db.drop();
    }
  });

  it("without a copied token, the first process to ask makes it and the others find it", async () => {
    const db = await testDatabase("bcast");
    const pools = await Promise.all([1, 2, 3].map(() => PgDatabase.open(db.url, { max: 2 })));
    try {
      const tokens = await Promise.all(pools.map((p) => adminTokenOf(tempDir(), p)));
      expect(new Set(tokens).size).toBe(1);
      expect(tokens[0]).toMatch(/^owlr_admin_[0-9a-f]{64}$/);
    } finally {
      await Promise.all(pools.map((p) => p.close()));
      await db.drop();
    }
  });
});
