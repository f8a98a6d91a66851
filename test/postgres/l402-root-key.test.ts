/**
 * Several gateway processes on one database check each other's L402 macaroons: they share one root
 * key in PostgreSQL, the first process's own key (so what it issued before stays valid).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { l402RootKey } from "../../gateway/payments/l402.js";
import { PgDatabase } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";

let db: { url: string; drop(): Promise<void> };
const pools: PgDatabase[] = [];
beforeAll(async () => {
  db = await testDatabase("l402key");
});
afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await db.drop();
});

it("processes with different key files agree on the first one's key; without a database each keeps its own", async () => {
  const dirs = [tempDir(), tempDir(), tempDir()];
  const own = await Promise.all(dirs.map((d) => l402RootKey(d)));
  expect(new Set(own.map((k) => Buffer.from(k).toString("hex"))).size).toBe(3);
  for (let i = 0; i < 3; i++) pools.push(await PgDatabase.open(db.url, { max: 2 }));
  const first = await l402RootKey(dirs[0]!, pools[0]);
  expect(Buffer.from(first)).toEqual(readFileSync(join(dirs[0]!, "l402-root-key")));
  const others = await Promise.all([l402RootKey(dirs[1]!, pools[1]), l402RootKey(dirs[2]!, pools[2])]);
  for (const k of others) expect(Buffer.from(k)).toEqual(Buffer.from(first));
});
