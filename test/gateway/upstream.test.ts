/**
 * Upstream OpenAI-compatible providers (`--upstream`, issue 17: 402ai and Routstr route to upstream
 * model APIs as well as to nodes). A real gateway with the bundled mint, two local OpenAI-compatible
 * servers (test/support/openai-upstream.ts) configured as upstreams, and a scripted Owlrun node;
 * the buyer is the real `openai` SDK (and the Ollama and Anthropic SDKs for their front ends).
 */
import { randomUUID } from "node:crypto";
import Anthropic from "@anthropic-ai/sdk";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Logger } from "../../src/shared/index.js";
import type { UpstreamsFile } from "../../gateway/routing/index.js";
import { startOpenAIUpstream, type OpenAIUpstream, UPSTREAM_WORDS } from "../support/openai-upstream.js";
import { type PaidGateway, startPaidGateway } from "../support/paid-gateway.js";
import type { OwlrunAgent, JobScript } from "../support/owlrun-agent.js";

const ALPHA_KEY = "sk-alpha-SECRET-7f3c9a1b2d4e6f8091a2b3c4";
const BETA_KEY = "sk-beta-SECRET-0e1d2c3b4a5968778695a4b3";
const ANSWER = UPSTREAM_WORDS.join("");
/** 1,000 / 2,000 USD per 1M tokens at $100,000/BTC: 1 sat per prompt token, 2 per completion token */
const PRICE = { per_m_input_usd: 1000, per_m_output_usd: 2000 };
/** the upstream double reports 11 prompt tokens and one completion token per delta */
const HONEST_SATS = 11 * 1 + UPSTREAM_WORDS.length * 2;

let gw: PaidGateway;
let alpha: OpenAIUpstream;
let beta: OpenAIUpstream;
let node: OwlrunAgent;
/** how the node treats its next job */
let nodeJob: JobScript = {};
const logged: string[] = [];

const capture: Logger = {
  debug: (m, f) => logged.push(`${m} ${JSON.stringify(f ?? {})}`),
  info: (m, f) => logged.push(`${m} ${JSON.stringify(f ?? {})}`),
  warn: (m, f) => logged.push(`${m} ${JSON.stringify(f ?? {})}`),
  error: (m, f) => logged.push(`${m} ${JSON.stringify(f ?? {})}`),
  child: () => capture,
};

beforeAll(async () => {
  alpha = await startOpenAIUpstream(ALPHA_KEY);
  beta = await startOpenAIUpstream(BETA_KEY);
  process.env.OWLRUN_TEST_BETA_KEY = BETA_KEY;
  const upstreams: UpstreamsFile = {
    upstreams: [
      {
        name: "alpha",
        base_url: alpha.baseUrl,
        api_key: ALPHA_KEY,
        timeout_ms: 1_500,
        margin_pct: 100,
        models: {
          "up-chat": { upstream_model: "vendor/up-chat-v1", price: PRICE },
          shared: { price: PRICE },
          "up-margin": { cost: { per_m_input_usd: 500, per_m_output_usd: 1000 } },
          "up-embed": {
            embeddings: true,
            upstream_model: "vendor/embed-v2",
            price: { ...PRICE, per_m_output_usd: 0 },
          },
        },
      },
      {
        name: "beta",
        base_url: beta.baseUrl,
        api_key_env: "OWLRUN_TEST_BETA_KEY",
        models: { "up-chat": { price: PRICE }, shared: { price: PRICE } },
      },
    ],
  };
  gw = await startPaidGateway(20_000, { upstreams, log: capture });
  node = await gw.agent({ models: ["shared"], job: () => nodeJob });
}, 60_000);

afterAll(async () => {
  await gw?.close();
  await alpha?.close();
  await beta?.close();
});

beforeEach(() => {
  alpha.queue.length = 0;
  beta.queue.length = 0;
  alpha.fallback = {};
  beta.fallback = {};
  nodeJob = {};
});

const balances = async () => (await gw.running.gateway.ledger.audit()).balances;
const msat = (b: Map<string, number>, account: string) => b.get(account) ?? 0;
const providerMsat = (b: Map<string, number>) =>
  [...b].filter(([a]) => a.startsWith("provider:")).reduce((s, [, v]) => s + v, 0);

/** An openai client paying with one X-Cashu token of `sats`, its request id fixed (to fetch change). */
async function client(sats: number) {
  const requestId = randomUUID();
  const openai = new OpenAI({
    baseURL: `${gw.url}/v1`,
    apiKey: "unused",
    maxRetries: 0,
    defaultHeaders: { "X-Cashu": await gw.token(sats), "X-Owlrun-Request-Id": requestId },
  });
  return { openai, requestId };
}

/** The change of request `id` as stored by the gateway, received into the purse: its value. */
async function changeOf(id: string): Promise<number> {
  const res = await fetch(`${gw.url}/v1/cashu/change/${id}`);
  if (res.status === 404) return 0;
  const body = (await res.json()) as { token?: string };
  return body.token ? gw.receive(body.token) : 0;
}

const ask = (model: string, extra: Record<string, unknown> = {}) =>
  ({ model, messages: [{ role: "user" as const, content: "hi" }], max_tokens: 20, ...extra }) as any;

describe("upstream providers: discovery", () => {
  it("/v1/models lists upstream models with their prices (price, or cost + margin) and capabilities, never a key", async () => {
    const res = await fetch(`${gw.url}/v1/models`);
    const text = await res.text();
    expect(text).not.toContain("SECRET");
    const data = JSON.parse(text).data as any[];
    const byId = new Map(data.map((m) => [m.id, m]));
    expect(byId.get("up-chat")).toMatchObject({ providers: 2, capabilities: ["completion"], pricing: PRICE });
    // cost 500/1000 + 100 % margin
    expect(byId.get("up-margin").pricing).toEqual(PRICE);
    // one node and two upstreams
    expect(byId.get("shared").providers).toBe(3);
    expect(byId.get("up-embed").capabilities).toEqual(["embedding"]);
    const tags = (await (await fetch(`${gw.url}/api/tags`)).json()) as any;
    expect(tags.models.map((m: any) => m.name)).toEqual(expect.arrayContaining(["up-chat", "up-embed"]));
    for (const path of ["/openapi.json", "/v1/stats", "/v1/info", "/llms-full.txt"]) {
      expect(await (await fetch(`${gw.url}${path}`)).text()).not.toContain("SECRET");
    }
  });
});

describe("upstream providers: served and billed", () => {
  it("non-streaming chat served by an upstream: the model renamed for it, usage billed exactly, the whole charge the operator's", async () => {
    const before = await balances();
    alpha.seen.length = 0;
    const { openai } = await client(200);
    const { data, response } = await openai.chat.completions
      .create(ask("up-chat", { provider: { only: ["upstream:alpha"] } }))
      .withResponse();
    expect(data.choices[0]!.message.content).toBe(ANSWER);
    expect(response.headers.get("x-owlrun-node")).toBe("upstream:alpha");
    expect((data.usage as any).cost.sats).toBe(HONEST_SATS);
    expect(data.usage).toMatchObject({ prompt_tokens: 11, completion_tokens: UPSTREAM_WORDS.length });
    expect(await gw.receive(response.headers.get("x-cashu-change")!)).toBe(200 - HONEST_SATS);

    const seen = alpha.seen.at(-1)!;
    expect(seen.path).toBe("/v1/chat/completions");
    expect(seen.authorization).toBe(`Bearer ${ALPHA_KEY}`);
    expect(seen.body).toMatchObject({
      model: "vendor/up-chat-v1",
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 20,
    });
    const after = await balances();
    expect(msat(after, "equity:upstream:alpha") - msat(before, "equity:upstream:alpha")).toBe(
      HONEST_SATS * 1000,
    );
    // no provider earnings and no gateway fee split: the operator keeps it all, booked by upstream
    expect(providerMsat(after)).toBe(providerMsat(before));
    expect(msat(after, "equity:fees")).toBe(msat(before, "equity:fees"));
  });

  it("streaming with the openai SDK: the answer, then the usage chunk with the cost", async () => {
    const { openai } = await client(200);
    const stream = await openai.chat.completions.create(
      ask("up-chat", { stream: true, stream_options: { include_usage: true } }),
    );
    let text = "";
    let usage: any;
    for await (const chunk of stream as any) {
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe(ANSWER);
    expect(usage.cost.sats).toBe(HONEST_SATS);
  });

  it("an inflated usage report is believed no further than what was relayed (as for nodes)", async () => {
    alpha.queue.push({ usage: { prompt_tokens: 100_000, completion_tokens: 5_000 } });
    const before = await balances();
    const { openai } = await client(200);
    const data = await openai.chat.completions.create(
      ask("up-chat", { provider: { only: ["upstream:alpha"] } }),
    );
    expect(data.choices[0]!.message.content).toBe(ANSWER);
    // completion: the gateway's own count (5); prompt: capped by the request's size bound
    expect(data.usage!.completion_tokens).toBe(UPSTREAM_WORDS.length);
    expect(data.usage!.prompt_tokens).toBeLessThan(100);
    const charged = (data.usage as any).cost.sats;
    expect(charged).toBe(data.usage!.prompt_tokens + 2 * UPSTREAM_WORDS.length);
    const after = await balances();
    expect(msat(after, "equity:upstream:alpha") - msat(before, "equity:upstream:alpha")).toBe(charged * 1000);
  });

  it("tool calls from an upstream reach the openai SDK assembled", async () => {
    alpha.queue.push({
      words: [],
      toolCalls: [{ id: "call_1", name: "get_weather", arguments: '{"city":"Zürich"}' }],
    });
    const { openai } = await client(300);
    const data = await openai.chat.completions.create(
      ask("up-chat", {
        provider: { only: ["upstream:alpha"] },
        tools: [{ type: "function", function: { name: "get_weather", parameters: { type: "object" } } }],
      }),
    );
    expect(data.choices[0]!.finish_reason).toBe("tool_calls");
    expect(data.choices[0]!.message.tool_calls).toEqual([
      { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Zürich"}' } },
    ]);
    expect(alpha.seen.at(-1)!.body.tools).toHaveLength(1);
  });

  it("an upstream that answers one JSON object instead of a stream is relayed and billed the same", async () => {
    alpha.queue.push({ action: "json" });
    const { openai } = await client(200);
    const data = await openai.chat.completions.create(
      ask("up-chat", { provider: { only: ["upstream:alpha"] } }),
    );
    expect(data.choices[0]!.message.content).toBe(ANSWER);
    expect((data.usage as any).cost.sats).toBe(HONEST_SATS);
  });

  it("embeddings through an upstream (POST {base}/embeddings), billed on input tokens", async () => {
    const { openai } = await client(200);
    const res = await openai.embeddings.create({ model: "up-embed", input: ["abc", "hello"] });
    expect(res.data.map((d) => d.embedding)).toEqual([
      [3, 0.5, -0.25],
      [5, 0.5, -0.25],
    ]);
    const seen = alpha.seen.at(-1)!;
    expect(seen.path).toBe("/v1/embeddings");
    expect(seen.body.model).toBe("vendor/embed-v2");
    // 8 characters reported as 8 prompt tokens, 1 sat each
    expect((res.usage as any).cost.sats).toBe(8);
  });

  it("the Ollama and Anthropic front ends are served by the same upstream unchanged", async () => {
    const ollama = new Ollama({ host: gw.url, headers: { "X-Cashu": await gw.token(200) } });
    const chat = await ollama.chat({
      model: "up-chat",
      messages: [{ role: "user", content: "hi" }],
      options: { num_predict: 20 },
    });
    expect(chat.message.content).toBe(ANSWER);
    const anthropic = new Anthropic({ baseURL: gw.url, apiKey: await gw.token(200), maxRetries: 0 });
    const msg = await anthropic.messages.create({
      model: "up-chat",
      max_tokens: 20,
      messages: [{ role: "user", content: "hi" }],
    });
    expect(msg.content[0]).toMatchObject({ type: "text", text: ANSWER });
  });
});

describe("upstream providers: failover before the first token", () => {
  it("upstream → upstream on a 500: served by the next, the failed one charged nothing", async () => {
    alpha.queue.push({ action: "status", status: 500 });
    const before = await balances();
    const { openai } = await client(200);
    const { data, response } = await openai.chat.completions
      .create(ask("up-chat", { provider: { order: ["upstream:alpha", "upstream:beta"] } }))
      .withResponse();
    expect(data.choices[0]!.message.content).toBe(ANSWER);
    expect(response.headers.get("x-owlrun-node")).toBe("upstream:beta");
    expect(beta.seen.at(-1)!.authorization).toBe(`Bearer ${BETA_KEY}`);
    const after = await balances();
    expect(msat(after, "equity:upstream:alpha")).toBe(msat(before, "equity:upstream:alpha"));
    expect(msat(after, "equity:upstream:beta") - msat(before, "equity:upstream:beta")).toBe(
      HONEST_SATS * 1000,
    );
    expect(await gw.receive(response.headers.get("x-cashu-change")!)).toBe(200 - HONEST_SATS);
  });

  it("upstream → upstream on a hang (no headers within timeout_ms)", async () => {
    alpha.queue.push({ action: "hang" });
    const { openai } = await client(200);
    const { data, response } = await openai.chat.completions
      .create(ask("up-chat", { provider: { order: ["upstream:alpha", "upstream:beta"] } }))
      .withResponse();
    expect(data.choices[0]!.message.content).toBe(ANSWER);
    expect(response.headers.get("x-owlrun-node")).toBe("upstream:beta");
  });

  it("a 429 with Retry-After moves the job on and keeps that upstream out of rotation until then", async () => {
    alpha.queue.push({ action: "status", status: 429, retryAfter: "1" });
    const first = await client(200);
    const { response } = await first.openai.chat.completions
      .create(
        ask("shared", {
          provider: { order: ["upstream:alpha", "upstream:beta"], only: ["upstream:alpha", "upstream:beta"] },
        }),
      )
      .withResponse();
    expect(response.headers.get("x-owlrun-node")).toBe("upstream:beta");
    const asked = alpha.seen.length;
    const second = await client(200);
    const again = await second.openai.chat.completions
      .create(
        ask("shared", { provider: { order: ["upstream:alpha"], only: ["upstream:alpha", "upstream:beta"] } }),
      )
      .withResponse();
    expect(again.response.headers.get("x-owlrun-node")).toBe("upstream:beta");
    expect(alpha.seen.length).toBe(asked); // not even asked while cooling down
    await new Promise((r) => setTimeout(r, 1_100)); // back in rotation for the next tests
  });

  it("node → upstream: the node rejects, the upstream serves; the node earns nothing", async () => {
    nodeJob = { action: "reject", rejectReason: "busy" };
    const before = await balances();
    const { openai } = await client(200);
    const { data, response } = await openai.chat.completions
      .create(ask("shared", { provider: { order: [node.nodeId, "upstream:alpha"] } }))
      .withResponse();
    expect(data.choices[0]!.message.content).toBe(ANSWER);
    expect(response.headers.get("x-owlrun-node")).toBe("upstream:alpha");
    const after = await balances();
    expect(providerMsat(after)).toBe(providerMsat(before));
    expect(msat(after, "equity:upstream:alpha") - msat(before, "equity:upstream:alpha")).toBe(
      HONEST_SATS * 1000,
    );
  });

  it("upstream → node: the upstream refuses the connection, the node serves and earns as usual", async () => {
    alpha.queue.push({ action: "status", status: 503 });
    nodeJob = { words: ["From", " a", " node"] };
    const before = await balances();
    const { openai } = await client(200);
    const { data, response } = await openai.chat.completions
      .create(ask("shared", { provider: { order: ["upstream:alpha", node.nodeId] } }))
      .withResponse();
    expect(data.choices[0]!.message.content).toBe("From a node");
    expect(response.headers.get("x-owlrun-node")).toBe(node.nodeId);
    const after = await balances();
    expect(providerMsat(after)).toBeGreaterThan(providerMsat(before));
    expect(msat(after, "equity:upstream:alpha")).toBe(msat(before, "equity:upstream:alpha"));
  });

  it("every target failing answers 503 and refunds the whole token", async () => {
    alpha.queue.push({ action: "status", status: 500 });
    beta.queue.push({ action: "status", status: 502 });
    const { openai, requestId } = await client(150);
    const err = await openai.chat.completions.create(ask("up-chat")).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect(err.status).toBe(503);
    expect(await changeOf(requestId)).toBe(150);
  });
});

describe("upstream providers: death mid-stream", () => {
  it("an upstream dying mid-stream ends like a node dying: provider_failed, nothing charged, the token back", async () => {
    const outcome = async (order: string[], prepare: () => void) => {
      prepare();
      const before = await balances();
      const { openai, requestId } = await client(200);
      const stream = await openai.chat.completions.create(
        ask("shared", { stream: true, provider: { order, allow_fallbacks: false } }),
      );
      let text = "";
      const err = await (async () => {
        for await (const chunk of stream as any) text += chunk.choices[0]?.delta?.content ?? "";
      })().catch((e) => e);
      const after = await balances();
      return {
        text,
        error: err?.error?.type ?? err?.type,
        refunded: await changeOf(requestId),
        upstreamGain: msat(after, "equity:upstream:alpha") - msat(before, "equity:upstream:alpha"),
        providerGain: providerMsat(after) - providerMsat(before),
      };
    };
    const upstream = await outcome(["upstream:alpha"], () => alpha.queue.push({ dieAfterWords: 2 }));
    const nodeDied = await outcome(
      [node.nodeId],
      () => (nodeJob = { words: UPSTREAM_WORDS, dieAfterWords: 2 }),
    );
    expect(upstream).toEqual({
      text: "Hello from",
      error: "provider_failed",
      refunded: 200,
      upstreamGain: 0,
      providerGain: 0,
    });
    expect(nodeDied).toEqual({ ...upstream, upstreamGain: 0 });
  });
});

describe("upstream providers: the API key never leaks", () => {
  it("an upstream error body or error chunk quoting the key reaches neither the buyer nor the log", async () => {
    logged.length = 0;
    alpha.queue.push({
      action: "status",
      status: 500,
      errorBody: `{"error":{"message":"bad key ${ALPHA_KEY}"}}`,
    });
    const first = await client(150);
    const err = await first.openai.chat.completions
      .create(ask("up-chat", { provider: { only: ["upstream:alpha"] } }))
      .catch((e) => e);
    expect(err.status).toBe(503);
    expect(JSON.stringify(err.error)).not.toContain(ALPHA_KEY);

    alpha.queue.push({ errorChunk: `quota exceeded for key ${ALPHA_KEY}` });
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Cashu": await gw.token(150) },
      body: JSON.stringify(ask("up-chat", { stream: true, provider: { only: ["upstream:alpha"] } })),
    });
    const body = await res.text();
    expect(body).toContain("[redacted]");
    expect(body).not.toContain(ALPHA_KEY);
    expect(logged.join("\n")).toContain("[redacted]");
    for (const line of logged) {
      expect(line).not.toContain(ALPHA_KEY);
      expect(line).not.toContain(BETA_KEY);
    }
  });
});
