/**
 * A process joining the cluster while the others announce presence changes (nodes connecting to
 * them, processes starting): the announcement can reach the new process's bus before its beat
 * machinery exists. Found by the kill -9 soak over three processes (a restarted gateway exited
 * with "Cannot access 'soon' before initialization"); it must be ignored, not crash the process.
 */
import { afterAll, expect, it } from "vitest";
import { type Cluster, joinCluster } from "../../gateway/cluster/index.js";
import { PgDatabase, silentLogger } from "../../src/shared/index.js";
import { testDatabase } from "../support/postgres.js";

const closers: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of closers.reverse()) await c().catch(() => undefined);
});

const routing = {
  joinCluster: () => ({
    localNodes: () => [],
    hostJob: () => false,
    send: () => false,
    endJob: () => undefined,
    replaced: () => undefined,
  }),
};

it("joins while presence announcements stream in, without an uncaught error", async () => {
  const pg = await testDatabase("joinrace");
  closers.push(() => pg.drop());
  const db = await PgDatabase.open(pg.url, { max: 8 });
  closers.push(() => db.close());
  const uncaught: unknown[] = [];
  const onError = (err: unknown) => uncaught.push(err);
  process.on("uncaughtException", onError);
  closers.push(async () => process.off("uncaughtException", onError));
  // Another process announcing presence changes as fast as it can.
  const other = await PgDatabase.open(pg.url, { max: 1 });
  closers.push(() => other.close());
  let announcing = true;
  const announcer = (async () => {
    while (announcing) await other.query("SELECT pg_notify('cluster_presence', '')");
  })();
  const joined: Cluster[] = [];
  for (let i = 0; i < 10; i++) {
    const cluster = await joinCluster({ database: db, log: silentLogger, liveHolds: () => [], routing });
    joined.push(cluster);
  }
  announcing = false;
  await announcer;
  for (const c of joined) await c.close();
  expect(uncaught.map(String)).toEqual([]);
});
