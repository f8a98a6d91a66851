/**
 * Accounts (RouteCat rc_ keys, Routstr sk- sessions and raw tokens as the Bearer key) on a gateway
 * child process with a protocol-exact provider: free tier, 402, top-up, rate limit, withdraw.
 */
import { getEncodedToken, type Proof, type Wallet } from "@cashu/cashu-ts";
import { randomUUID } from "node:crypto";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mintProofs, newWallet, sumAmounts } from "../support/cashu.js";
import { type CliProcess, startCli, tempDir } from "../support/cli-process.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";

const MODEL = "owlrun-test-scripted:tiny";
let gw: CliProcess;
let mintUrl: string;
let wallet: Wallet;
let purse: Proof[];
let agent: Agent;

async function token(amount: number): Promise<string> {
  const { send, keep } = await wallet.send(amount, purse);
  purse = keep;
  return getEncodedToken({ mint: mintUrl, proofs: send });
}

const api = (path: string, key?: string, body?: unknown, method = body === undefined ? "GET" : "POST") =>
  fetch(`${gw.url}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

const chat = (key: string) =>
  api("/v1/chat/completions", key, {
    model: MODEL,
    messages: [{ role: "user", content: "hi" }],
    max_tokens: 16,
  });

beforeAll(async () => {
  gw = await startCli(["gateway", "--port", "0", "--data-dir", tempDir(), "--fake-delay-ms", "20"]);
  mintUrl = `${gw.url}/mint`;
  wallet = await newWallet(mintUrl);
  purse = await mintProofs(wallet, 1000);
  agent = await startAgent(gw.url, { models: [MODEL], reply: ["ok"], freeTierPct: 20 });
});
afterAll(async () => {
  await agent.close();
  await gw.stop();
});

describe("rc_ accounts", () => {
  it("free tier: 10 requests a day, then 402 in the Routstr shape, then a cashu top-up pays", async () => {
    const reg = await api("/v1/auth/register", undefined, { name: "test app" });
    expect(reg.status).toBe(201);
    const { api_key, quota_daily } = (await reg.json()) as any;
    expect(api_key).toMatch(/^rc_/);
    expect(quota_daily).toBe(10);
    for (let i = 0; i < 10; i++) expect((await chat(api_key)).status).toBe(200);
    expect(await (await api("/v1/balance", api_key)).json()).toEqual({ balance_sats: 0, free_remaining: 0 });

    const denied = await chat(api_key);
    expect(denied.status).toBe(402);
    const err = ((await denied.json()) as any).error;
    expect(err.type).toBe("insufficient_balance");
    expect(err.message).toMatch(/^Insufficient balance\. Current: 0 msat, Required: \d+ msat$/);

    const topup = await api("/v1/balance/topup", api_key, { token: await token(100) });
    expect(topup.status).toBe(200);
    expect(((await topup.json()) as any).balance_sats).toBe(100);
    const paid = await chat(api_key);
    expect(paid.status).toBe(200);
    const cost = ((await paid.json()) as any).usage.cost.sats;
    expect(cost).toBe(2);
    expect(((await (await api("/v1/balance", api_key)).json()) as any).balance_sats).toBe(98);

    // The balance comes back as ecash.
    const w = await api("/v1/balance/withdraw", api_key, { amount_sats: 50 });
    const { token: out, balance_sats } = (await w.json()) as any;
    expect(balance_sats).toBe(48);
    const got = await wallet.receive(out);
    expect(sumAmounts(got)).toBe(50);
    purse.push(...got);
    expect((await api("/v1/balance/withdraw", api_key, { amount_sats: 49 })).status).toBe(402);
  });

  it("unknown keys get 401; a key over 60 requests a minute gets 429 with Retry-After", async () => {
    expect((await chat("rc_nope")).status).toBe(401);
    expect(((await (await api("/v1/balance", "rc_nope")).json()) as any).error.type).toBe("invalid_key");
    const { api_key } = (await (await api("/v1/auth/register", undefined, {})).json()) as any;
    await api("/v1/balance/topup", api_key, { token: await token(300) });
    const statuses = [];
    for (let i = 0; i < 61; i++) statuses.push((await chat(api_key)).status);
    expect(statuses.slice(0, 60).every((s) => s === 200)).toBe(true);
    const limited = await chat(api_key);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(((await limited.json()) as any).error.type).toBe("rate_limited");
  });

  it("Lightning top-up: invoice from the mint, credited once paid", async () => {
    const { api_key } = (await (await api("/v1/auth/register", undefined, {})).json()) as any;
    const res = await api("/v1/auth/topup", api_key, { amount_sats: 500 });
    expect(res.status).toBe(201);
    const body = (await res.json()) as any;
    expect(body.invoice).toMatch(/^lnbc5u1/);
    for (let i = 0; i < 50; i++) {
      const b = (await (await api("/v1/balance", api_key)).json()) as any;
      if (b.balance_sats === 500) return;
      await new Promise((r) => setTimeout(r, 40));
    }
    throw new Error("top-up never credited");
  });

  it("a paid Lightning top-up is credited for whatever the key calls next, not only GET /v1/balance", async () => {
    const { api_key } = (await (await api("/v1/auth/register", undefined, {})).json()) as any;
    for (let i = 0; i < 10; i++) expect((await chat(api_key)).status).toBe(200); // the free quota
    expect((await chat(api_key)).status).toBe(402);
    expect((await api("/v1/auth/topup", api_key, { amount_sats: 200 })).status).toBe(201);
    // The fake Lightning backend pays within ~20 ms; chat itself must see the money.
    for (let i = 0; i < 40; i++) {
      const res = await chat(api_key);
      if (res.status === 200) {
        expect(((await res.json()) as any).usage.cost.sats).toBeGreaterThan(0);
        return;
      }
      expect(res.status).toBe(402);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error("the paid top-up was never credited for chat");
  });
});

describe("Routstr-style keys", () => {
  it("a raw cashu token is the API key: first use deposits it, later uses spend the same balance", async () => {
    const key = await token(20);
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: key });
    const r1 = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "a" }],
      max_tokens: 8,
    });
    expect(r1.choices[0]!.message.content).toBe("ok");
    expect(((await (await api("/v1/balance", key)).json()) as any).balance_sats).toBe(18);
    await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "b" }],
      max_tokens: 8,
    });
    expect(((await (await api("/v1/balance", key)).json()) as any).balance_sats).toBe(16);
    // Spent token from elsewhere cannot become a session.
    const spent = await token(5);
    await wallet.receive(spent);
    const bad = await chat(spent);
    expect(bad.status).toBe(402);
    expect(((await bad.json()) as any).error.type).toBe("token_spent");
  });

  it("sk- session keys are made from deposited ecash", async () => {
    const res = await api("/v1/balance/create", undefined, { token: await token(30) });
    expect(res.status).toBe(201);
    const { api_key, balance_sats } = (await res.json()) as any;
    expect(api_key).toMatch(/^sk-/);
    expect(balance_sats).toBe(30);
    expect((await chat(api_key)).status).toBe(200);
    expect(((await (await api("/v1/balance", api_key)).json()) as any).balance_sats).toBe(28);
  });

  it("a withdrawal named by X-Owlrun-Request-Id answers the same token when retried, never pays twice", async () => {
    const session = async () => {
      const r = (await (
        await api("/v1/balance/create", undefined, { token: await token(40) })
      ).json()) as any;
      return r.api_key as string;
    };
    const [key, other] = [await session(), await session()];
    const id = randomUUID();
    const withdraw = (k: string, amount_sats: number) =>
      fetch(`${gw.url}/v1/balance/withdraw`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          authorization: `Bearer ${k}`,
          "x-owlrun-request-id": id,
        },
        body: JSON.stringify({ amount_sats }),
      });
    const first = (await (await withdraw(key, 15)).json()) as any;
    expect(first).toMatchObject({ amount_sats: 15, withdrawal_id: id, balance_sats: 25 });
    // The answer was lost, say: the retry gets the same token and the balance moves once.
    const again = (await (await withdraw(key, 15)).json()) as any;
    expect(again).toMatchObject({ token: first.token, amount_sats: 15, balance_sats: 25 });
    // Another key cannot take over that id.
    const stolen = await withdraw(other, 5);
    expect(stolen.status).toBe(409);
    expect(((await (await api("/v1/balance", other)).json()) as any).balance_sats).toBe(40);
    const redeemed = await wallet.receive(first.token);
    expect(sumAmounts(redeemed)).toBe(15);
  });
});

describe("routing preferences from the request", () => {
  it("max_price excludes models priced above it (the token comes back), sort is accepted", async () => {
    const t = await token(10);
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": t },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: "user", content: "hi" }],
        provider: { max_price: { prompt: 0.000001, completion: 0.000001 } },
      }),
    });
    expect(res.status).toBe(503);
    expect(((await res.json()) as any).error.type).toBe("no_providers");
    expect(res.headers.get("x-cashu-change")).toBe(t);
    const ok = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": t },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: "user", content: "hi" }],
        provider: { max_price: { prompt: 1, completion: 1 }, sort: "latency", allow_fallbacks: true },
      }),
    });
    expect(ok.status).toBe(200);
  });
});

describe("child keys and spend caps", () => {
  it("a child spends its parent's balance within its own caps and cannot withdraw; caps apply up the tree", async () => {
    const { api_key: parent } = (await (await api("/v1/auth/register", undefined, {})).json()) as any;
    await api("/v1/balance/topup", parent, { token: await token(200) });
    const made = await api("/v1/keys", parent, {
      name: "agent",
      caps: { per_request_sats: 5, per_day_sats: 6 },
    });
    expect(made.status).toBe(201);
    const child = (await made.json()) as any;
    expect(child.api_key).toMatch(/^rc_/);
    expect(child.caps).toEqual({ per_request_sats: 5, per_day_sats: 6, lifetime_sats: null });

    expect((await chat(child.api_key)).status).toBe(200); // 2 sats
    expect((await chat(child.api_key)).status).toBe(200); // 4 sats today
    expect((await chat(child.api_key)).status).toBe(200); // 6 sats today: the daily cap is reached
    const capped = await chat(child.api_key);
    expect(capped.status).toBe(402);
    expect(((await capped.json()) as any).error.type).toBe("spend_limit");
    // It spent the parent's balance, and the parent sees it.
    expect(((await (await api("/v1/balance", parent)).json()) as any).balance_sats).toBe(194);
    const tree = (await (await api("/v1/keys", parent)).json()) as any;
    expect(tree.children[0].spent_lifetime_sats).toBe(6);
    expect(tree.spent_lifetime_sats).toBe(6);

    expect((await api("/v1/balance/withdraw", child.api_key, { amount_sats: 10 })).status).toBe(403);
    expect((await api(`/v1/keys/${child.id}/caps`, child.api_key, { per_day_sats: 1000 })).status).toBe(403);
    const raised = await api(`/v1/keys/${child.id}/caps`, parent, { per_day_sats: 1000 });
    expect(((await raised.json()) as any).caps.per_day_sats).toBe(1000);
    expect((await chat(child.api_key)).status).toBe(200);

    // A cap on the parent binds its children too.
    await api(`/v1/keys/${tree.id}/caps`, parent, { lifetime_sats: 8 });
    expect((await chat(child.api_key)).status).toBe(402);
  });
});
