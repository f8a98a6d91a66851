/**
 * The free tier as an attacker uses it: many rc_ keys from one address, a provider colluding with
 * them (huge max_tokens, multi-byte text, an inflated usage report). Free requests must cost the
 * gateway a small, bounded amount: signups are limited per address, free jobs go only to nodes that
 * opted into free work and earn them karma (never sats), their completion is capped, and a daily
 * gateway-wide budget ends them. A gateway child process, scripted Owlrun agents, real HTTP.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ledger } from "../../gateway/ledger/index.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";

const MODEL = "owlrun-test-free:tiny";
let dir: string;
let gw: CliProcess;
const keys: string[] = [];

const api = (path: string, key?: string, body?: unknown) =>
  fetch(`${gw.url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

const freeChat = (key: string) =>
  api("/v1/chat/completions", key, {
    model: MODEL,
    messages: [{ role: "user", content: "hi" }],
    max_tokens: 1_000_000,
  });

const until = async (cond: () => boolean) => {
  for (let i = 0; i < 200 && !cond(); i++) await new Promise((r) => setTimeout(r, 25));
  expect(cond()).toBe(true);
};

beforeAll(async () => {
  dir = tempDir();
  gw = await startCli([
    "gateway",
    "--port",
    "0",
    "--data-dir",
    dir,
    "--free-max-tokens",
    "8",
    "--free-daily-budget-sats",
    "12",
    "--account-signups-per-hour",
    "4",
  ]);
});
afterAll(async () => {
  await gw?.stop();
});

describe("free tier under attack", () => {
  it("limits new keys per client address", async () => {
    for (let i = 0; i < 4; i++) {
      const res = await api("/v1/auth/register", undefined, {});
      expect(res.status).toBe(201);
      keys.push(((await res.json()) as { api_key: string }).api_key);
    }
    const refused = await api("/v1/auth/register", undefined, {});
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(((await refused.json()) as any).error.type).toBe("rate_limited");
  });

  it("never offers a free job to a node that did not opt into free work", async () => {
    const paidOnly = await startAgent(gw.url, { models: [MODEL], reply: ["x"] });
    try {
      const res = await freeChat(keys[0]!);
      expect(res.status).toBe(503);
      expect(((await res.json()) as any).error.message).toMatch(/free-tier/);
      expect(paidOnly.offered).toHaveLength(0);
      // Not served: the free request is given back.
      expect(((await (await api("/v1/balance", keys[0])).json()) as any).free_remaining).toBe(10);
    } finally {
      await paidOnly.close();
    }
  });

  let colluding: Agent;
  it("a colluding node gets a capped completion, no sats, karma, and job_complete with 0 earned", async () => {
    colluding = await startAgent(gw.url, {
      models: [MODEL],
      freeTierPct: 50,
      job: {
        words: Array.from({ length: 20 }, () => "字字字字字字字字"),
        usage: () => ({ prompt_tokens: 5, completion_tokens: 1_000_000 }),
      },
    });
    const res = await freeChat(keys[0]!);
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body.usage.completion_tokens).toBeLessThanOrEqual(8);
    expect(body.usage.cost.sats).toBe(0);
    expect(colluding.offers[0]!.free_tier).toBe(true);
    expect(colluding.bodies[0]!.max_tokens).toBe(8);
    await until(() => colluding.completes.length === 1);
    expect(colluding.completes[0]).toMatchObject({ type: "job_complete", earned_usd: 0 });
    const earnings = (await (
      await fetch(`${gw.url}/v1/provider/earnings`, {
        headers: { authorization: `Bearer ${colluding.apiKey}` },
      })
    ).json()) as any;
    expect(earnings).toMatchObject({ earned_total_sats: 0, balance_sats: 0 });
  });

  it("ends free requests for everyone once the day's budget is spent", async () => {
    // 12 sats of budget at 2 sats (the floor) a job: 6 jobs, one of them already served.
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await freeChat(keys[1 + (i % 3)]!)).status);
    expect(statuses.slice(0, 5)).toEqual([200, 200, 200, 200, 200]);
    expect(statuses[5]).toBe(402);
    const refused = await freeChat(keys[0]!);
    expect(refused.status).toBe(402);
    const err = ((await refused.json()) as any).error;
    expect(err.type).toBe("quota_exceeded");
    expect(err.message).toMatch(/free tier .* used up for today/);
    await colluding.close();
  });

  it("leaves the books untouched: no promo spent, no provider earnings, balanced", async () => {
    await gw.stop();
    const ledger = Ledger.open(`${dir}/gateway`);
    try {
      const audit = await ledger.audit();
      expect(audit.imbalanceMsat).toBe(0);
      expect(audit.balances.get("equity:promo") ?? 0).toBe(0);
      for (const [account, msat] of audit.balances) if (account.startsWith("provider:")) expect(msat).toBe(0);
    } finally {
      await ledger.close();
    }
    gw = await startCli(["gateway", "--port", "0", "--data-dir", dir]);
  });
});
