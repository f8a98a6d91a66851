/**
 * Two gateway processes on one database tick the same background work: the Lightning top-up poll
 * and the market sweeper each run through the cluster's once-per-period claim, and a top-up both
 * processes watch is credited once.
 */
import { afterAll, beforeAll, expect, it } from "vitest";
import type { RunningGateway } from "../../gateway/index.js";
import type { PgDatabase } from "../../src/shared/index.js";
import { type GatewayPair, startGatewayPair } from "../support/gateway-pair.js";

let pair: GatewayPair;
let a: RunningGateway;
let b: RunningGateway;
let dbs: PgDatabase[];

beforeAll(async () => {
  pair = await startGatewayPair({
    prefix: "clusterbggw",
    mintOnDatabase: true,
    gateway: { topupPollMs: 50, market: { sweepIntervalMs: 50 } },
  });
  ({ a, b, dbs } = pair);
});
afterAll(async () => {
  await pair?.close();
});

async function until(pred: () => Promise<boolean>, what: string): Promise<void> {
  const end = Date.now() + 10_000;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

it("the top-up poll and the market sweeper run through the per-period claim; a paid top-up is credited once", async () => {
  const reg = await fetch(`${b.url}/v1/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  const { api_key } = (await reg.json()) as { api_key: string };
  const topup = await fetch(`${b.url}/v1/auth/topup`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${api_key}` },
    body: JSON.stringify({ amount_sats: 500 }),
  });
  expect(topup.status).toBe(201);
  // Nobody calls with the key: only the background poll (in whichever process claimed the period)
  // can credit it.
  const credited = async () =>
    [...(await a.gateway.ledger.audit()).balances].filter(
      ([acc, msat]) => acc.startsWith("user:") && msat > 0,
    );
  await until(async () => (await credited()).length === 1, "the paid top-up to be credited");
  const runs = await dbs[0]!.query<{ name: string }>("SELECT name FROM cluster_runs ORDER BY name");
  expect(runs.map((r) => r.name)).toEqual(expect.arrayContaining(["market-sweep", "topup-poll"]));
  // More periods go by in both processes: still credited once.
  const claimedAt = async () =>
    (
      await dbs[1]!.query<{ ran_at: Date }>("SELECT ran_at FROM cluster_runs WHERE name = 'topup-poll'")
    )[0]!.ran_at.getTime();
  const first = await claimedAt();
  await until(async () => (await claimedAt()) > first, "another top-up poll period");
  expect((await credited()).map(([, msat]) => msat)).toEqual([500_000]);
  const balance = await fetch(`${a.url}/v1/balance`, { headers: { authorization: `Bearer ${api_key}` } });
  expect(((await balance.json()) as { balance_sats: number }).balance_sats).toBe(500);
});
