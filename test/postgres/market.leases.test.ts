/**
 * The market's leases across processes (two PgDatabase pools = two processes): one holder at a
 * time, also within one process; a holder whose connection dies (the process was killed) frees the
 * lease for the others; and the process that lost its connection gets a new one for later leases.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PgLeases } from "../../gateway/market/leases.js";
import { PgDatabase } from "../../src/shared/index.js";
import { testDatabase } from "../support/postgres.js";

describe("PgLeases", () => {
  let db: { url: string; drop(): Promise<void> };
  beforeAll(async () => {
    db = await testDatabase("leases");
  });
  afterAll(async () => {
    await db.drop();
  });

  const held = () => {
    let release!: () => void;
    let entered!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const inside = new Promise<void>((r) => (entered = r));
    return { release, inside, fn: async () => (entered(), await gate, "held") };
  };

  it("has one holder across processes and within one", async () => {
    const a = await PgDatabase.open(db.url, { max: 2 });
    const b = await PgDatabase.open(db.url, { max: 2 });
    const la = new PgLeases(a);
    const lb = new PgLeases(b);
    try {
      const h = held();
      const first = la.run("market-accept:t1", h.fn);
      await h.inside;
      expect(await lb.run("market-accept:t1", async () => "b")).toBeUndefined();
      expect(await la.run("market-accept:t1", async () => "a again")).toBeUndefined();
      expect(await lb.run("market-accept:t2", async () => "other task")).toBe("other task");
      h.release();
      expect(await first).toBe("held");
      expect(await lb.run("market-accept:t1", async () => "b")).toBe("b");
    } finally {
      await la.close();
      await lb.close();
      await a.close();
      await b.close();
    }
  });

  it("frees the lease of a holder whose connection died, and the holder's process reconnects", async () => {
    const a = await PgDatabase.open(db.url, { max: 2, applicationName: "leases-victim" });
    const b = await PgDatabase.open(db.url, { max: 2 });
    const la = new PgLeases(a);
    const lb = new PgLeases(b);
    try {
      const h = held();
      const stranded = la.run("market-collect:c1", h.fn);
      await h.inside;
      expect(await lb.run("market-collect:c1", async () => "b")).toBeUndefined();
      // What kill -9 of the holder's process does to its session.
      await b.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'leases-victim'",
      );
      await expect.poll(() => lb.run("market-collect:c1", async () => "b"), { timeout: 5000 }).toBe("b");
      h.release();
      await stranded;
      expect(await la.run("market-collect:c2", async () => "a after reconnecting")).toBe(
        "a after reconnecting",
      );
    } finally {
      await la.close();
      await lb.close();
      await a.close();
      await b.close();
    }
  });
});
