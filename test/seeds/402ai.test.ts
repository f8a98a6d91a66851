/**
 * The 402ai seed (shared/seeds/402ai-start-here.txt), its examples as written on the base
 * `/api/v1`: the topup quick start (amount_usd → invoice → preimage → claim → Bearer), the refill,
 * the OpenAI SDK with the token (streaming and not), X-Token, the L402 pay-per-request path, the
 * estimate's output caps, and the ai-for-hire marketplace curls. The Lightning payer is the fake
 * node at the edge (test/support/lightning.ts).
 */
import { createHash } from "node:crypto";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SCRIPTED_ANSWER } from "../../provider/index.js";
import { externalInvoice } from "../support/blinded.js";
import { payInvoice } from "../support/lightning.js";
import { type OpenAIUpstream, startOpenAIUpstream } from "../support/openai-upstream.js";
import { MODEL, type SeedNet, startSeedNet } from "./harness.js";

let net: SeedNet;
let API: string;
beforeAll(async () => {
  net = await startSeedNet();
  API = net.url;
}, 120_000);
afterAll(async () => {
  await net?.close();
});

const curl = async (
  path: string,
  opts: { body?: unknown; headers?: Record<string, string>; method?: string } = {},
) => {
  const res = await fetch(`${API}${path}`, {
    method: opts.method ?? (opts.body === undefined ? "GET" : "POST"),
    headers: { "Content-Type": "application/json", ...opts.headers },
    body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
  });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body };
};

/** The topup quick start: POST /api/v1/topup, pay, POST /api/v1/topup/claim; answers the token. */
async function topupToken(amountUsd: number): Promise<string> {
  const TOPUP = await curl("/api/v1/topup", { body: { amount_usd: amountUsd } });
  expect(TOPUP.status).toBe(201);
  const INVOICE = TOPUP.body.invoice as string;
  const PREIMAGE = await payInvoice(INVOICE);
  const CLAIM = await curl("/api/v1/topup/claim", { body: { preimage: PREIMAGE } });
  expect(CLAIM.status).toBe(200);
  return CLAIM.body.token as string;
}

describe("402ai seed: prepaid token", () => {
  it("topup quick start: amount_usd 1.20 → invoice → claim → chat with Bearer $TOKEN", async () => {
    const TOPUP = await curl("/api/v1/topup", { body: { amount_usd: 1.2 } });
    expect(TOPUP.status).toBe(201);
    // $1.20 at the pricing rate ($100,000/BTC here): 1,200 sats
    expect(TOPUP.body).toMatchObject({ amount_sats: 1200, amount_usd: 1.2, refill: false });
    const PREIMAGE = await payInvoice(TOPUP.body.invoice);
    const CLAIM = await curl("/api/v1/topup/claim", { body: { preimage: PREIMAGE } });
    expect(CLAIM.body).toMatchObject({ amount_sats: 1200, balance_sats: 1200 });
    const TOKEN = CLAIM.body.token;
    // "claim your abl_... token", as the seed names it
    expect(TOKEN).toMatch(/^abl_[A-Za-z0-9_-]{32}$/);
    const chat = await curl("/api/v1/chat/completions", {
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: { model: MODEL, messages: [{ role: "user", content: "say hello in 5 words" }] },
    });
    expect(chat.status).toBe(200);
    expect(chat.body.choices[0].message.content).toBe(SCRIPTED_ANSWER);

    // Refill existing token: topup with the Bearer, pay, claim with {preimage, token}
    const refill = await curl("/api/v1/topup", {
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: { amount_usd: 0.1 },
    });
    expect(refill.body.refill).toBe(true);
    const pre2 = await payInvoice(refill.body.invoice);
    const refilled = await curl("/api/v1/topup/claim", { body: { preimage: pre2, token: TOKEN } });
    expect(refilled.status).toBe(200);
    expect(refilled.body.balance_sats).toBe(1200 - chat.body.usage.cost.sats + 100);
  });

  it("POST /topup asks for amount_sats or amount_usd, one of them", async () => {
    expect((await curl("/api/v1/topup", { body: {} })).status).toBe(400);
    expect((await curl("/api/v1/topup", { body: { amount_usd: 1, amount_sats: 5 } })).status).toBe(400);
    expect((await curl("/api/v1/topup", { body: { amount_usd: -1 } })).status).toBe(400);
  });

  it("Python SDK: OpenAI(base_url=…/api/v1, api_key=TOKEN): create, then stream=True", async () => {
    const TOKEN = await topupToken(0.05);
    const client = new OpenAI({ baseURL: `${API}/api/v1`, apiKey: TOKEN });
    const resp = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hello" }],
    });
    expect(resp.choices[0]!.message.content).toBe(SCRIPTED_ANSWER);
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Count to 5" }],
      stream: true,
    });
    let out = "";
    for await (const chunk of stream)
      if (chunk.choices[0]?.delta.content) out += chunk.choices[0].delta.content;
    expect(out).toBe(SCRIPTED_ANSWER);
  });

  it("the token also works as X-Token; GET /api/v1/models lists the models", async () => {
    const TOKEN = await topupToken(0.05);
    const chat = await curl("/api/v1/chat/completions", {
      headers: { "X-Token": TOKEN },
      body: { model: MODEL, messages: [{ role: "user", content: "hello" }] },
    });
    expect(chat.status).toBe(200);
    const models = await curl("/api/v1/models");
    expect(models.body.data.slice(0, 5).map((m: any) => m.id)).toContain(MODEL);
  });

  it("an underfunded token answers insufficient_balance", async () => {
    const TOKEN = await topupToken(0.00003); // 3 sats
    const res = await curl("/api/v1/chat/completions", {
      headers: { Authorization: `Bearer ${TOKEN}` },
      body: { model: MODEL, messages: [{ role: "user", content: "hello" }], max_tokens: 1_000_000 },
    });
    expect(res.status).toBe(402);
    expect(res.body.error.type).toBe("insufficient_balance");
  });
});

describe("402ai seed: L402 pay-per-request", () => {
  it("no token → 402 with invoice and macaroon; pay; retry with Authorization: L402 <macaroon>:<preimage>", async () => {
    const body = { model: MODEL, messages: [{ role: "user", content: "A neon bitcoin logo" }] };
    const first = await curl("/api/v1/chat/completions", { body });
    expect(first.status).toBe(402);
    expect(first.headers.get("www-authenticate")).toMatch(/^L402 macaroon="[^"]+", invoice="lnbc/);
    const { macaroon, invoice } = first.body.error.l402;
    const preimage = await payInvoice(invoice);
    const paid = await curl("/api/v1/chat/completions", {
      headers: { Authorization: `L402 ${macaroon}:${preimage}` },
      body,
    });
    expect(paid.status).toBe(200);
    expect(paid.body.choices[0].message.content).toBe(SCRIPTED_ANSWER);
    // one-shot settlement at the challenged amount
    expect(paid.body.payment).toMatchObject({ method: "l402", amount_sats: first.body.error.amount_sats });
  });

  it("the estimate counts max_tokens, max_completion_tokens and max_output_tokens alike", async () => {
    const price = async (extra: object) =>
      (
        await curl("/api/v1/price", {
          body: { model: MODEL, messages: [{ role: "user", content: "hello" }], ...extra },
        })
      ).body.sats as number;
    const big = await price({ max_tokens: 500_000 });
    expect(big).toBeGreaterThan(await price({}));
    expect(await price({ max_completion_tokens: 500_000 })).toBe(big);
    expect(await price({ max_output_tokens: 500_000 })).toBe(big);
  });
});

describe("402ai seed: task marketplace at /api/v1/ai-for-hire", () => {
  it("create → quote → update → messages → accept → deliver → confirm → collect → me", async () => {
    const TOKEN = await topupToken(1);
    const WORKER_TOKEN = await topupToken(0.02);
    const x = (token: string) => ({ "X-Token": token });

    const created = await curl("/api/v1/ai-for-hire/tasks", {
      headers: x(TOKEN),
      body: {
        title: "Summarize this PDF",
        description: "Extract key points from a 10-page research paper",
        budget_sats: 500,
      },
    });
    expect(created.status).toBe(201);
    const TASK_ID = created.body.id;
    expect((await curl("/api/v1/ai-for-hire/tasks")).body.tasks.map((t: any) => t.id)).toContain(TASK_ID);
    expect((await curl(`/api/v1/ai-for-hire/tasks/${TASK_ID}`)).body.id).toBe(TASK_ID);

    const quoted = await curl(`/api/v1/ai-for-hire/tasks/${TASK_ID}/quotes`, {
      headers: x(WORKER_TOKEN),
      body: { price_sats: 400, description: "I can summarize this in 5 minutes" },
    });
    expect(quoted.status).toBe(201);
    const QUOTE_ID = quoted.body.id;
    const patched = await curl(`/api/v1/ai-for-hire/tasks/${TASK_ID}/quotes/${QUOTE_ID}`, {
      method: "PATCH",
      headers: x(WORKER_TOKEN),
      body: { price_sats: 350, description: "Updated: can do it for 350 sats" },
    });
    expect(patched.body.price_sats).toBe(350);
    const thread = `/api/v1/ai-for-hire/tasks/${TASK_ID}/quotes/${QUOTE_ID}/messages`;
    expect(
      (await curl(thread, { headers: x(TOKEN), body: { body: "Can you do this for 300 sats?" } })).status,
    ).toBe(201);
    expect((await curl(thread, { headers: x(TOKEN) })).body.messages[0].body).toBe(
      "Can you do this for 300 sats?",
    );

    const accepted = await curl(`/api/v1/ai-for-hire/tasks/${TASK_ID}/quotes/${QUOTE_ID}/accept`, {
      method: "POST",
      headers: x(TOKEN),
    });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ escrow: "locked", escrow_sats: 350 });

    const content = "VGhlIGtleSBwb2ludHMgYXJlLi4u";
    const delivered = await curl(`/api/v1/ai-for-hire/tasks/${TASK_ID}/deliver`, {
      headers: x(WORKER_TOKEN),
      body: { filename: "summary.txt", content_base64: content, notes: "Summary attached" },
    });
    expect(delivered.body.delivery.sha256).toBe(
      createHash("sha256").update(Buffer.from(content, "base64")).digest("hex"),
    );
    const confirmed = await curl(`/api/v1/ai-for-hire/tasks/${TASK_ID}/confirm`, {
      method: "POST",
      headers: x(TOKEN),
    });
    expect(confirmed.body).toMatchObject({ state: "paid", escrow: "released" });

    const collected = await curl("/api/v1/ai-for-hire/collect", {
      headers: x(WORKER_TOKEN),
      body: { invoice: externalInvoice(300), amount_sats: 300 },
    });
    expect(collected.status).toBe(200);
    expect(collected.body).toMatchObject({ state: "paid", amount_sats: 300 });
    const me = await curl("/api/v1/ai-for-hire/me", { headers: x(WORKER_TOKEN) });
    expect(me.body.work.map((t: any) => t.id)).toEqual([TASK_ID]);
  });

  it("fees payable with L402: POST /tasks (and /quotes) with an unfunded X-Token → 402 with invoice and macaroon; pay; retry with Authorization: L402", async () => {
    const x = (token: string) => ({ "X-Token": token });
    const KEY = (await curl("/v1/auth/register", { body: {} })).body.api_key;
    expect(KEY).toMatch(/^rc_/);
    const task = { title: "Translate a page", description: "EN → DE, 300 words", budget_sats: 200 };
    const first = await curl("/api/v1/ai-for-hire/tasks", { headers: x(KEY), body: task });
    expect(first.status).toBe(402);
    expect(first.headers.get("www-authenticate")).toMatch(/^L402 macaroon="[^"]+", invoice="lnbc/);
    const { macaroon, invoice, amount_sats } = first.body.error.l402;
    expect(amount_sats).toBe(first.body.error.required_sats);
    const preimage = await payInvoice(invoice);
    const L402 = { ...x(KEY), Authorization: `L402 ${macaroon}:${preimage}` };
    const created = await curl("/api/v1/ai-for-hire/tasks", { headers: L402, body: task });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ title: task.title, paid_with: "l402", fee_sats: amount_sats });
    // one credential, one fee
    const replay = await curl("/api/v1/ai-for-hire/tasks", { headers: L402, body: task });
    expect(replay.status).toBe(401);
    expect(replay.body.error.type).toBe("token_spent");

    // A quote the same way; the challenge is bound to its route (a task's quotes).
    const path = `/api/v1/ai-for-hire/tasks/${created.body.id}/quotes`;
    const WORKER = (await curl("/v1/auth/register", { body: {} })).body.api_key;
    const quote = { price_sats: 150, description: "done in an hour" };
    const ask = await curl(path, { headers: x(WORKER), body: quote });
    expect(ask.status).toBe(402);
    const l402 = ask.body.error.l402;
    const paidQuote = {
      ...x(WORKER),
      Authorization: `L402 ${l402.macaroon}:${await payInvoice(l402.invoice)}`,
    };
    const wrongRoute = await curl("/api/v1/ai-for-hire/tasks", { headers: paidQuote, body: task });
    expect(wrongRoute.status).toBe(401);
    const quoted = await curl(path, { headers: paidQuote, body: quote });
    expect(quoted.status).toBe(201);
    expect(quoted.body.paid_with).toBe("l402");
  });
});

describe("402ai seed: marketplace fees with L402, money", () => {
  it("a refused write charges nothing: the L402 credential stays paid and presentable, its money on its account", async () => {
    const KEY = (await curl("/v1/auth/register", { body: {} })).body.api_key;
    const path = "/api/v1/ai-for-hire/tasks/00000000-0000-4000-8000-000000000000/quotes";
    const quote = { price_sats: 100, description: "no such task" };
    const ask = await curl(path, { headers: { "X-Token": KEY }, body: quote });
    expect(ask.status).toBe(402);
    const { macaroon, invoice, amount_sats } = ask.body.error.l402;
    const preimage = await payInvoice(invoice);
    const ledger = net.gateway.gateway.ledger;
    const feesBefore = await ledger.balance("equity:market_fees");
    const headers = { "X-Token": KEY, Authorization: `L402 ${macaroon}:${preimage}` };
    for (let i = 0; i < 2; i++) {
      const res = await curl(path, { headers, body: quote });
      expect(res.status).toBe(404); // not 401 token_spent: the refused write released it
    }
    const hash = createHash("sha256").update(Buffer.from(preimage, "hex")).digest("hex");
    expect(await ledger.balance(`user:l402:${hash}`)).toBe(amount_sats * 1000);
    expect(await ledger.balance("equity:market_fees")).toBe(feesBefore);
  });
});

describe("402ai seed: routes by model to the configured provider (upstream OpenAI-compatible APIs)", () => {
  // The operator's upstreams (--upstream): one OpenAI-compatible double standing in for OpenAI,
  // Anthropic's OpenAI endpoint and OpenRouter; the seed's examples run against it as written.
  let upNet: SeedNet;
  let upstream: OpenAIUpstream;
  const UP_KEY = "sk-or-v1-SECRET-seed-402ai-0123456789";
  beforeAll(async () => {
    upstream = await startOpenAIUpstream(UP_KEY);
    upNet = await startSeedNet({
      upstreams: {
        upstreams: [
          {
            name: "openrouter",
            base_url: upstream.baseUrl,
            api_key: UP_KEY,
            margin_pct: 20,
            models: {
              "gpt-4o-mini": {
                upstream_model: "openai/gpt-4o-mini",
                cost: { per_m_input_usd: 0.15, per_m_output_usd: 0.6 },
              },
              "claude-sonnet-4-20250514": {
                upstream_model: "anthropic/claude-sonnet-4",
                price: { per_m_input_usd: 3, per_m_output_usd: 15 },
              },
              "google/gemini-2.0-flash-lite-001": {
                price: { per_m_input_usd: 0.075, per_m_output_usd: 0.3 },
              },
            },
          },
        ],
      },
    });
  }, 120_000);
  afterAll(async () => {
    await upNet?.close();
    await upstream?.close();
  });

  it("OpenAI, Anthropic and OpenRouter model ids through the OpenAI SDK with a topup token; streaming too; billed to the upstream's account", async () => {
    const post = (path: string, body: unknown) =>
      fetch(`${upNet.url}${path}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      }).then((r) => r.json() as Promise<any>);
    const TOPUP = await post("/api/v1/topup", { amount_usd: 1 });
    const CLAIM = await post("/api/v1/topup/claim", { preimage: await payInvoice(TOPUP.invoice) });
    const TOKEN = CLAIM.token as string;

    // curl -sS "$API/api/v1/models" | jq '.data[:5]'
    const models = (await (await fetch(`${upNet.url}/api/v1/models`)).json()) as any;
    expect(models.data.map((m: any) => m.id)).toEqual(
      expect.arrayContaining([
        "gpt-4o-mini",
        "claude-sonnet-4-20250514",
        "google/gemini-2.0-flash-lite-001",
        MODEL,
      ]),
    );
    expect(JSON.stringify(models)).not.toContain(UP_KEY);

    const client = new OpenAI({ baseURL: `${upNet.url}/api/v1`, apiKey: TOKEN });
    let charged = 0;
    for (const model of ["gpt-4o-mini", "claude-sonnet-4-20250514", "google/gemini-2.0-flash-lite-001"]) {
      const resp = await client.chat.completions.create({
        model,
        messages: [{ role: "user", content: "Hello" }],
      });
      expect(resp.choices[0]!.message.content).toBe("Hello from the upstream.");
      charged += (resp.usage as any).cost.sats;
    }
    expect(upstream.seen.map((r) => r.body.model)).toEqual([
      "openai/gpt-4o-mini",
      "anthropic/claude-sonnet-4",
      "google/gemini-2.0-flash-lite-001",
    ]);
    // Streaming works too
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "Count to 5" }],
      stream: true,
    });
    let printed = "";
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) printed += chunk.choices[0].delta.content;
      if (chunk.usage) charged += (chunk.usage as any).cost.sats;
    }
    expect(printed).toBe("Hello from the upstream.");
    // The Owlrun node's model still goes to the node on the same base URL.
    const local = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Hello" }],
    });
    expect(local.choices[0]!.message.content).toBe(SCRIPTED_ANSWER);

    // The operator keeps the whole charge of upstream jobs, booked under the upstream.
    const books = await upNet.gateway.gateway.ledger.audit();
    expect(books.balances.get("equity:upstream:openrouter")).toBe(charged * 1000);
  });
});

describe("402ai seed: not offered here", () => {
  it("/api/v1/images/generations, /audio/*, /video/generations: a clear OpenAI-shaped 404 (text models only)", async () => {
    for (const path of ["/api/v1/images/generations", "/api/v1/audio/speech", "/api/v1/video/generations"]) {
      const res = await curl(path, { body: { model: "dall-e-3", prompt: "an owl" } });
      expect(res.status).toBe(404);
      expect(res.body.error).toMatchObject({ type: "not_found" });
      expect(res.body.error.message).toMatch(/text and embedding models only/);
    }
  });
});
