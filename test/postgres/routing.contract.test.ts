/**
 * RoutingStore contract on SQLite and PostgreSQL: keys made or revoked by one process hold for the
 * other, node ownership, counts from two processes at once, and the copy from routing.sqlite.
 */
import { afterEach, describe, expect, it } from "vitest";
import { RegisterBody } from "../../gateway/routing/protocol.js";
import { type RoutingStore, SqliteRoutingStore } from "../../gateway/routing/store.js";
import { copyRoutingFromSqlite, createProviderKey, PgRoutingStore } from "../../gateway/routing/store-pg.js";
import { PgDatabase } from "../../src/shared/postgres.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";
import { backends, type TwoStores } from "./two-stores.js";

const impls = backends<RoutingStore>(
  (dir) => new SqliteRoutingStore(dir),
  (db) => PgRoutingStore.open(db),
);

const body = (key: string, nodeId: string, models: string[], la?: string) =>
  RegisterBody.parse({ node_id: nodeId, api_key: key, models, lightning_address: la, region: "eu" });

describe.each(impls)("RoutingStore on $name", (impl) => {
  let s: TwoStores<RoutingStore>;
  afterEach(async () => {
    await s?.close();
  });

  it("a key made by one process works in the other; revoked by one, refused by both", async () => {
    s = await impl.open();
    const key = await s.a.createKey("api");
    const hash = await s.b.keyHash(key);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(await s.a.keyHash("owlr_prov_unknown")).toBeUndefined();
    expect(await s.a.keyHash("not-a-provider-key")).toBeUndefined();
    expect(await s.a.revokedAmong([hash!, "f".repeat(64)])).toEqual(["f".repeat(64)]);
    const both = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? s.a : s.b).revokeKey(key)));
    expect(both.filter(Boolean)).toHaveLength(1);
    expect(await s.a.keyHash(key)).toBeUndefined();
    expect(await s.b.keyHash(key)).toBeUndefined();
    expect(await s.b.revokedAmong([hash!])).toEqual([hash]);
    expect(await s.a.revokedAmong([])).toEqual([]);
  });

  it("a node id belongs to the key that registered it first; the last registration speaks for a key", async () => {
    s = await impl.open();
    const k1 = await s.a.createKey();
    const k2 = await s.a.createKey();
    const h1 = (await s.a.keyHash(k1))!;
    const h2 = (await s.a.keyHash(k2))!;
    expect(await s.a.register(h1, body(k1, "node-a", ["m1"], "a@example.com"))).toBe(true);
    expect(await s.b.register(h2, body(k2, "node-a", ["evil"], "m@example.com"))).toBe(false);
    expect(await s.b.node("node-a")).toMatchObject({
      key_hash: h1,
      models: JSON.stringify(["m1"]),
      lightning_address: "a@example.com",
      region: "eu",
    });
    expect(JSON.parse((await s.b.node("node-a"))!.registration).api_key).toBeUndefined();
    expect(await s.b.register(h1, body(k1, "node-a", ["m1", "m2"]))).toBe(true);
    expect((await s.a.node("node-a"))?.models).toBe(JSON.stringify(["m1", "m2"]));
    expect(await s.a.register(h1, body(k1, "node-b", ["m3"]))).toBe(true);
    expect((await s.b.nodeForKeyHash(h1))?.node_id).toBe("node-b");
    expect(await s.b.nodeForKeyHash(h2)).toBeUndefined();
    expect(await s.a.node("nobody")).toBeUndefined();
    // Racing registrations of a fresh node id by two keys: exactly one owns it.
    const race = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 ? s.a : s.b).register(i % 2 ? h1 : h2, body("x", "node-c", [])),
      ),
    );
    const owner = (await s.a.node("node-c"))!.key_hash;
    expect(race.filter(Boolean)).toHaveLength(5);
    expect(race.every((ok, i) => ok === ((i % 2 ? h1 : h2) === owner))).toBe(true);
  });

  it("disputes, failures, karma and daily counts add up from two processes", async () => {
    s = await impl.open();
    const at = Date.parse("2026-03-01T12:00:00Z");
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => {
        const st = i % 2 ? s.a : s.b;
        return Promise.all([
          st.recordDispute("n", `note ${i}`),
          st.recordFailure("n", "x".repeat(600)),
          st.recordFreeJob("n"),
          st.recordJob("n", 7, at),
        ]);
      }),
    );
    expect((await s.a.dispute("n"))?.count).toBe(10);
    expect((await s.b.failure("n"))?.last_note).toHaveLength(500);
    expect((await s.b.failure("n"))?.count).toBe(10);
    expect(await s.a.freeJobs("n")).toBe(10);
    expect(await s.a.freeJobs("other")).toBe(0);
    expect(await s.b.today("n", at)).toEqual({ jobs: 10, tokens: 70 });
    expect(await s.b.today("n", at + 86_400_000)).toEqual({ jobs: 0, tokens: 0 });
    await s.a.recordDispute("m", "once");
    expect((await s.b.disputes()).map((d) => [d.node_id, d.count])).toEqual([
      ["n", 10],
      ["m", 1],
    ]);
    expect(await s.a.dispute("none")).toBeUndefined();
  });
});

describe("routing: CLI key and copy from SQLite", () => {
  it("createProviderKey writes to PostgreSQL when given a database", async () => {
    const db = await testDatabase("routingcli");
    const database = await PgDatabase.open(db.url);
    try {
      const key = await createProviderKey(tempDir(), database);
      const store = await PgRoutingStore.open(database);
      expect(await store.keyHash(key)).toBeDefined();
    } finally {
      await database.close();
      await db.drop();
    }
  });

  it("copyRoutingFromSqlite keeps keys (revoked ones too), nodes and counts; a second run changes nothing", async () => {
    const dir = tempDir();
    const sqlite = new SqliteRoutingStore(dir);
    const k1 = await sqlite.createKey("cli");
    const k2 = await sqlite.createKey("signup");
    const h1 = (await sqlite.keyHash(k1))!;
    await sqlite.register(h1, body(k1, "node-a", ["m1"], "a@example.com"));
    await sqlite.register(h1, body(k1, "node-b", ["m2"]));
    await sqlite.revokeKey(k2);
    await sqlite.recordDispute("node-a", "d");
    await sqlite.recordFailure("node-a", "f");
    await sqlite.recordFreeJob("node-a");
    await sqlite.recordJob("node-a", 12, Date.parse("2026-03-01T00:00:00Z"));
    const before = {
      a: await sqlite.node("node-a"),
      last: await sqlite.nodeForKeyHash(h1),
      disputes: await sqlite.disputes(),
      failure: await sqlite.failure("node-a"),
    };
    sqlite.close();
    const db = await testDatabase("routingcopy");
    const database = await PgDatabase.open(db.url);
    try {
      const counts = await copyRoutingFromSqlite(dir, database);
      expect(counts).toEqual({
        provider_keys: 2,
        nodes: 2,
        disputes: 1,
        free_jobs: 1,
        failures: 1,
        node_days: 1,
      });
      expect(await copyRoutingFromSqlite(dir, database)).toEqual(counts);
      const pg = await PgRoutingStore.open(database);
      expect(await pg.keyHash(k1)).toBe(h1);
      expect(await pg.keyHash(k2)).toBeUndefined();
      expect(await pg.node("node-a")).toEqual(before.a);
      expect(await pg.nodeForKeyHash(h1)).toEqual(before.last);
      expect(await pg.disputes()).toEqual(before.disputes);
      expect(await pg.failure("node-a")).toEqual(before.failure);
      expect(await pg.freeJobs("node-a")).toBe(1);
      expect(await pg.today("node-a", Date.parse("2026-03-01T10:00:00Z"))).toEqual({ jobs: 1, tokens: 12 });
    } finally {
      await database.close();
      await db.drop();
    }
  });
});
