/**
 * The RouteCat seed (shared/seeds/routecat-api-docs.txt), its examples as written: register,
 * chat (curl, the openai SDK, the raw-fetch stream parser), /v1/models with per-model prices
 * from the operator's price file, Lightning top-up, balance, stats, audit, the request defaults,
 * the free tier and the balance rule (no silent max_tokens truncation).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCRIPTED_ANSWER } from "../../provider/index.js";
import { type Agent, startAgent } from "../support/owlrun-agent.js";
import { tempDir } from "../support/cli-process.js";
import { MODEL, type SeedNet, startSeedNet } from "./harness.js";

/** A node (the scripted Owlrun agent) serving a pricey model: 1 sat per output token at $100k. */
const PRICEY = "routecat-pricey:8b";
const pricesPath = join(tempDir("owlrun-prices-"), "prices.json");
const writePrices = (scriptedOut: number) =>
  writeFileSync(
    pricesPath,
    JSON.stringify({
      default: { per_m_input_usd: 0.02, per_m_output_usd: 0.06 },
      models: {
        [MODEL]: { per_m_input_usd: 0.05, per_m_output_usd: scriptedOut },
        [PRICEY]: { per_m_input_usd: 0, per_m_output_usd: 1000 },
      },
    }),
  );

let net: SeedNet;
let agent: Agent;
beforeAll(async () => {
  writePrices(0.1);
  net = await startSeedNet({ pricesFile: pricesPath });
  agent = await startAgent(net.url, { models: [PRICEY], reply: ["Hello", " there", "!"], freeTierPct: 100 });
}, 120_000);
afterAll(async () => {
  await agent?.close();
  await net?.close();
});

const post = (path: string, body: unknown, key?: string) =>
  fetch(`${net.url}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...(key ? { Authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
  });

async function register(): Promise<string> {
  // curl -X POST https://route.cat/v1/auth/register -H "Content-Type: application/json" -d '{"name": "my app"}'
  const res = await post("/v1/auth/register", { name: "my app" });
  expect(res.status).toBe(201);
  const body = (await res.json()) as { api_key: string; quota_daily: number };
  expect(body.api_key).toMatch(/^rc_[A-Za-z0-9_-]+$/);
  expect(body.quota_daily).toBe(10);
  return body.api_key;
}

/** Funds a key from the test purse (POST /v1/balance/topup with a cashu token: instant). */
async function fund(key: string, sats: number) {
  const res = await post("/v1/balance/topup", { token: await net.token(sats) }, key);
  expect(res.status).toBe(200);
}

const balance = async (key: string) =>
  (await (await fetch(`${net.url}/v1/balance`, { headers: { Authorization: `Bearer ${key}` } })).json()) as {
    balance_sats: number;
    free_remaining: number;
  };

describe("RouteCat seed: quick start", () => {
  it("register, then curl /v1/chat/completions with the rc_ key: a standard response (free tier)", async () => {
    const key = await register();
    const res = await post(
      "/v1/chat/completions",
      { model: MODEL, messages: [{ role: "user", content: "Hello!" }] },
      key,
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect(body).toMatchObject({
      object: "chat.completion",
      model: MODEL,
      choices: [
        { index: 0, message: { role: "assistant", content: SCRIPTED_ANSWER }, finish_reason: "stop" },
      ],
    });
    expect(body.id).toMatch(/^chatcmpl-/);
    expect(body.usage.total_tokens).toBe(body.usage.prompt_tokens + body.usage.completion_tokens);
    expect((await balance(key)).free_remaining).toBe(9);
  });

  it("the openai SDK with a system message, temperature 0.5 and max_tokens 100", async () => {
    const key = await register();
    await fund(key, 100);
    const client = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: key });
    const response = await client.chat.completions.create({
      model: MODEL,
      messages: [
        { role: "system", content: "You are a helpful assistant." },
        { role: "user", content: "Explain quantum computing in one sentence." },
      ],
      temperature: 0.5,
      max_tokens: 100,
    });
    expect(response.choices[0]!.message.content).toBe(SCRIPTED_ANSWER);
    expect((await balance(key)).balance_sats).toBeLessThan(100);
  });

  it("streaming with the openai SDK (for chunk in stream: delta.content)", async () => {
    const key = await register();
    const client = new OpenAI({ baseURL: `${net.url}/v1`, apiKey: key });
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Tell me a joke" }],
      stream: true,
    });
    let out = "";
    for await (const chunk of stream)
      if (chunk.choices[0]?.delta.content) out += chunk.choices[0].delta.content;
    expect(out).toBe(SCRIPTED_ANSWER);
  });

  it("streaming with the seed's raw fetch parser (split per read, data.choices[0]?.delta?.content)", async () => {
    const key = await register();
    const response = await fetch(`${net.url}/v1/chat/completions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        model: MODEL,
        messages: [{ role: "user", content: "Tell me a joke" }],
        stream: true,
      }),
    });
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let out = "";
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      const lines = decoder.decode(value).split("\n");
      for (const line of lines) {
        if (line.startsWith("data: ") && line !== "data: [DONE]") {
          const data = JSON.parse(line.slice(6));
          const content = data.choices[0]?.delta?.content;
          if (content) out += content;
        }
      }
    }
    expect(out).toBe(SCRIPTED_ANSWER);
  });
});

describe("RouteCat seed: endpoints", () => {
  it("GET /v1/models: routecat_pricing per model, from the price file; an edit is picked up", async () => {
    const models = async () => ((await (await fetch(`${net.url}/v1/models`)).json()) as any).data as any[];
    const m = (await models()).find((x) => x.id === MODEL);
    expect(m.routecat_pricing).toEqual({
      input_per_1m_tokens_usd: 0.05,
      output_per_1m_tokens_usd: 0.1,
      input_per_1m_tokens_sats: 50,
      output_per_1m_tokens_sats: 100,
    });
    const p = (await models()).find((x) => x.id === PRICEY);
    expect(p.routecat_pricing.output_per_1m_tokens_usd).toBe(1000);
    // The operator edits the file: the new price is served without a restart.
    writePrices(0.12);
    let out = 0;
    for (let i = 0; i < 200 && out !== 0.12; i++) {
      await new Promise((r) => setTimeout(r, 50));
      out = (await models()).find((x) => x.id === MODEL).routecat_pricing.output_per_1m_tokens_usd;
    }
    expect(out).toBe(0.12);
    writePrices(0.1);
  });

  it("POST /v1/auth/topup {amount_sats: 500}: an invoice; once paid the balance grows", async () => {
    const key = await register();
    const res = await post("/v1/auth/topup", { amount_sats: 500 }, key);
    expect(res.status).toBe(201);
    const body = (await res.json()) as any;
    expect(body.invoice).toMatch(/^lnbc/);
    expect(body.amount_sats).toBe(500);
    expect(Date.parse(body.expires_at)).toBeGreaterThan(Date.now());
    // the fake Lightning backend pays its own invoices
    let b = await balance(key);
    for (let i = 0; i < 100 && b.balance_sats === 0; i++) {
      await new Promise((r) => setTimeout(r, 50));
      b = await balance(key);
    }
    expect(b).toEqual({ balance_sats: 500, free_remaining: 10 });
  });

  it("GET /v1/stats: nodes_online, jobs_24h, tokens_24h, btc_usd, version, commit", async () => {
    const s = (await (await fetch(`${net.url}/v1/stats`)).json()) as any;
    expect(Object.keys(s).sort()).toEqual(
      expect.arrayContaining(["btc_usd", "commit", "jobs_24h", "nodes_online", "tokens_24h", "version"]),
    );
    expect(s.nodes_online).toBe(2);
    expect(typeof s.commit).toBe("string");
    expect(s.commit.length).toBeGreaterThan(0);
  });

  it("GET /v1/audit: jobs (anonymised), total, page", async () => {
    const a = (await (await fetch(`${net.url}/v1/audit`)).json()) as any;
    expect(a.page).toBe(1);
    expect(a.total).toBeGreaterThan(0);
    expect(a.jobs[0]).toMatchObject({ model: expect.any(String), cost_sats: expect.any(Number) });
    expect(a.jobs[0].id).toMatch(/^job_/);
  });
});

describe("RouteCat seed: request defaults, free tier, spending", () => {
  it("temperature 0.7 and top_p 1.0 when the request has none; a given value is kept", async () => {
    const key = await register();
    await post("/v1/chat/completions", { model: PRICEY, messages: [{ role: "user", content: "a" }] }, key);
    expect(agent.bodies.at(-1)).toMatchObject({ temperature: 0.7, top_p: 1 });
    await post(
      "/v1/chat/completions",
      { model: PRICEY, messages: [{ role: "user", content: "a" }], temperature: 0.5, top_p: 0.9 },
      key,
    );
    expect(agent.bodies.at(-1)).toMatchObject({ temperature: 0.5, top_p: 0.9 });
  });

  it("free tier: 10 requests a day on a key with no balance, then 402", async () => {
    const key = await register();
    const chat = () =>
      post("/v1/chat/completions", { model: PRICEY, messages: [{ role: "user", content: "a" }] }, key);
    for (let i = 0; i < 10; i++) expect((await chat()).status).toBe(200);
    expect(await balance(key)).toEqual({ balance_sats: 0, free_remaining: 0 });
    const refused = await chat();
    expect(refused.status).toBe(402);
    expect(((await refused.json()) as any).error.type).toBe("insufficient_balance");
  });

  it("no silent truncation: a balance short of the request's maximum answers 402 with the amount needed", async () => {
    const key = await register();
    for (let i = 0; i < 10; i++)
      await post("/v1/chat/completions", { model: MODEL, messages: [{ role: "user", content: "a" }] }, key);
    await fund(key, 20);
    // 100 output tokens at 1 sat each: more than the 20-sat balance; before, max_tokens became 20.
    const res = await post(
      "/v1/chat/completions",
      { model: PRICEY, messages: [{ role: "user", content: "a" }], max_tokens: 100 },
      key,
    );
    expect(res.status).toBe(402);
    const err = ((await res.json()) as any).error;
    expect(err.type).toBe("insufficient_balance");
    expect(err.required_sats).toBe(100);
    expect(err.message).toContain("Required: 100000 msat");
    expect((await balance(key)).balance_sats).toBe(20);
  });

  it("a balance that covers the maximum: the response completes and the balance pays only what was used", async () => {
    const key = await register();
    for (let i = 0; i < 10; i++)
      await post("/v1/chat/completions", { model: MODEL, messages: [{ role: "user", content: "a" }] }, key);
    await fund(key, 20);
    const before = agent.bodies.length;
    const res = await post(
      "/v1/chat/completions",
      { model: PRICEY, messages: [{ role: "user", content: "a" }], max_tokens: 20 },
      key,
    );
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).choices[0].message.content).toBe("Hello there!");
    expect(agent.bodies.length).toBe(before + 1);
    expect(agent.bodies.at(-1)!.max_tokens).toBe(20);
    expect((await balance(key)).balance_sats).toBe(20 - 3);
  });
});
