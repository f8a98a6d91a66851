/**
 * A gateway process restarting on a shared database must not refund holds other live processes
 * are serving: at start it refunds only the active holds nobody serves (the rest are left to the
 * stale-hold sweep, which checks again).
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { joinCluster } from "../../gateway/cluster/index.js";
import { Ledger } from "../../gateway/ledger/index.js";
import { startGateway } from "../../gateway/index.js";
import { PgOneShotStore } from "../../gateway/payments/oneshot-pg.js";
import { PgDatabase, silentLogger } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";
import { testDatabase } from "../support/postgres.js";

const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
});

/** Another live gateway process on the database, serving `holds`. */
async function otherProcess(url: string, holds: string[]) {
  const otherDb = await PgDatabase.open(url, { max: 2 });
  closers.push(() => otherDb.close());
  const other = await joinCluster({
    database: otherDb,
    log: silentLogger,
    liveHolds: () => holds,
    routing: {
      joinCluster: () => ({
        localNodes: () => [],
        hostJob: () => false,
        send: () => false,
        endJob: () => undefined,
        replaced: () => undefined,
      }),
    },
  });
  closers.push(() => other.close());
  return other;
}

/** A fresh database and gateway data dir, with the ledger open to write what a crash left. */
async function crashedBooks(prefix: string) {
  const pg = await testDatabase(prefix);
  closers.push(() => pg.drop());
  const dataDir = join(tempDir("owlrun-cluster-rec-"), "gateway");
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const database = await PgDatabase.open(pg.url, { max: 4 });
  closers.push(() => database.close());
  const ledger = Ledger.open(dataDir, database);
  await ledger.ready();
  return { url: pg.url, dataDir, database, ledger };
}

/** This process restarting on the crashed books (every old hold counts as stale). */
async function restart(dataDir: string, mint: string, database: PgDatabase) {
  const running = await startGateway({
    dataDir,
    trustedMints: [mint],
    port: 0,
    offlineBtcUsd: 100_000,
    log: silentLogger,
    payoutIntervalMs: 0,
    sweepIntervalMs: 0,
    staleHoldMs: 0,
    database,
  });
  closers.push(() => running.close());
  return running;
}

it("at restart frees only the one-shot credentials whose holds it refunds, not those another process serves", async () => {
  const { url, dataDir, database, ledger } = await crashedBooks("clusterrec1");
  const store = await PgOneShotStore.open(database);
  const mint = "http://127.0.0.1:1/mint";
  // Two L402 credentials in use: one by a request another live process serves, one orphaned.
  for (const id of ["l402:served", "l402:orphaned"]) {
    expect(
      await store.add({ id, kind: "l402", amount_sat: 5, route: null, state: "in_use", mint, quote: null }),
    ).toBe(true);
    expect(await ledger.deposit(`user:${id}`, 5_000, mint, `paid-${id}`)).toBe(true);
    await ledger.hold(`hold-${id}`, `user:${id}`, 5_000, "l402");
  }
  // And one a crash left in use before its money was held: no hold at all.
  expect(
    await store.add({
      id: "l402:no-hold",
      kind: "l402",
      amount_sat: 5,
      route: null,
      state: "in_use",
      mint,
      quote: null,
    }),
  ).toBe(true);
  await otherProcess(url, ["hold-l402:served"]);

  const running = await restart(dataDir, mint, database);
  // The served credential stays in use (its request may still settle it as spent)...
  expect((await store.get("l402:served"))?.state).toBe("in_use");
  expect(await running.gateway.ledger.balance("hold:hold-l402:served")).toBe(5_000);
  // ...the orphaned one was refunded and may be presented again.
  expect((await store.get("l402:orphaned"))?.state).toBe("paid");
  expect(await running.gateway.ledger.balance("user:l402:orphaned")).toBe(5_000);
  expect((await store.get("l402:no-hold"))?.state).toBe("paid");
});

it("refunds at restart only the holds no other live process is serving", async () => {
  // The books as a crash left them in the shared ledger: two active holds on a prepaid account.
  const { url, dataDir, database, ledger } = await crashedBooks("clusterrec");
  const mint = "http://127.0.0.1:1/mint";
  expect(await ledger.deposit("user:buyer", 10_000, mint, "topup-1")).toBe(true);
  await ledger.hold("served-elsewhere", "user:buyer", 3_000, "account");
  await ledger.hold("orphaned", "user:buyer", 2_000, "account");
  await ledger.close();

  // Another live process is serving the first one.
  const other = await otherProcess(url, ["served-elsewhere"]);

  const running = await restart(dataDir, mint, database);
  const active = (await running.gateway.ledger.activeHolds()).map((h) => h.id);
  expect(active).toEqual(["served-elsewhere"]);
  // The orphaned hold's 2,000 msat went back to the account; the served one's 3,000 stay held.
  expect(await running.gateway.ledger.balance("user:buyer")).toBe(7_000);
  // The sweeper leaves it alone too, however old, while the other process serves it.
  expect(await running.gateway.sweepStaleHolds()).toBe(0);
  await other.close();
  expect(await running.gateway.sweepStaleHolds()).toBe(1);
  expect(await running.gateway.ledger.activeHolds()).toEqual([]);
  expect(await running.gateway.ledger.balance("user:buyer")).toBe(10_000);
});
