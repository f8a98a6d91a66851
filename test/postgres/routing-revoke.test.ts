/**
 * Two routing processes (two pools) on one PostgreSQL: a key revoked through one is refused by the
 * other at once, and the other drops the node's socket at its next ping round.
 */
import { expect, it } from "vitest";
import { PgRoutingStore } from "../../gateway/routing/index.js";
import { PgDatabase } from "../../src/shared/postgres.js";
import { startAgent } from "../support/owlrun-agent.js";
import { testDatabase } from "../support/postgres.js";
import { startGateway, waitUntil } from "../routing/harness.js";

it("a provider key revoked through one process ends its node's socket on another", async () => {
  const db = await testDatabase("revoke");
  const one = await PgDatabase.open(db.url, { max: 4 });
  const two = await PgDatabase.open(db.url, { max: 4 });
  const a = await startGateway({ store: await PgRoutingStore.open(one), pingIntervalMs: 50 });
  const b = await startGateway({ store: await PgRoutingStore.open(two), pingIntervalMs: 50 });
  try {
    const key = await a.routing.keys.create();
    expect(await b.routing.keys.verify(key)).toBe(true);
    const node = await b.agent({ models: ["m"] }, { apiKey: key });
    expect(node.connected()).toBe(true);
    expect(await b.routing.nodeForKey(key)).toBe(node.nodeId);
    expect(await a.routing.keys.revoke(key)).toBe(true);
    expect(await b.routing.keys.verify(key)).toBe(false);
    expect(await b.routing.keys.revoke(key)).toBe(false);
    await waitUntil(() => !node.connected(), 3_000, "the other process dropped the revoked node");
    expect(b.routing.dispatcher.nodesOnline()).toBe(0);
    await expect(startAgent(b.url, { models: ["m"] }, { apiKey: key })).rejects.toThrow(/401/);
  } finally {
    await a.close();
    await b.close();
    await one.close();
    await two.close();
    await db.drop();
  }
});
