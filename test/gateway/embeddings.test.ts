/**
 * Embeddings through the gateway with the official clients: `openai` `embeddings.create` (its
 * default base64 and explicit floats) and `ollama` `embed` / legacy `embeddings`, served by a
 * scripted Owlrun node that announced `embedding_models`, paid per input token with X-Cashu or a raw
 * cashu token as the Bearer key, change back. A node that never announced embeddings never gets an
 * embedding job; a node that relays bad vectors or inflates its token count is not believed.
 */
import { Ollama } from "ollama";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { embeddingOf, type JobScript, type OwlrunAgent } from "../support/owlrun-agent.js";
import { type PaidGateway, startPaidGateway } from "../support/paid-gateway.js";

const CHAT = "owlrun-test-scripted:tiny";
const EMBED = "nomic-embed-text:latest";
let gw: PaidGateway;
let oldNode: OwlrunAgent;
let embedNode: OwlrunAgent;
let next: JobScript[] = [];

const openai = (headers: Record<string, string>, apiKey = "unused") =>
  new OpenAI({ baseURL: `${gw.url}/v1`, apiKey, defaultHeaders: headers, maxRetries: 0 });

beforeAll(async () => {
  gw = await startPaidGateway(1000);
  // An Owlrun agent as it exists today: it serves CHAT and knows nothing of embeddings.
  oldNode = await gw.agent({ models: [CHAT] });
  embedNode = await gw.agent({ models: [], embeddingModels: [EMBED], job: () => next.shift() ?? {} });
});
afterAll(async () => {
  await gw?.close();
});

describe("embeddings", () => {
  it("openai embeddings.create (base64 by default, decoded by the SDK) paid with X-Cashu; change back", async () => {
    const token = await gw.token(20);
    const { data, response } = await openai({ "X-Cashu": token })
      .embeddings.create({ model: EMBED, input: ["hello", "a longer text"] })
      .withResponse();
    expect(data.data.map((d) => d.index)).toEqual([0, 1]);
    ["hello", "a longer text"].forEach((text, i) => {
      const want = embeddingOf(text);
      data.data[i]!.embedding.forEach((x, j) => expect(x).toBeCloseTo(want[j]!, 6));
    });
    expect(data.usage.prompt_tokens).toBe("helloa longer text".length);
    const cost = (data.usage as unknown as { cost: { sats: number; change_sats: number } }).cost;
    expect(cost.sats).toBe(2);
    expect(await gw.receive(response.headers.get("x-cashu-change")!)).toBe(18);
    // The node pulled an OpenAI embeddings body on the embeddings endpoint, floats asked for.
    expect(embedNode.offers.at(-1)).toMatchObject({ model: EMBED, endpoint: "/v1/embeddings" });
    expect(embedNode.bodies.at(-1)).toEqual({
      model: EMBED,
      input: ["hello", "a longer text"],
      encoding_format: "float",
    });
  });

  it("answers floats byte-exact when asked, paid by a raw cashu token as the API key", async () => {
    const r = await openai({}, await gw.token(10)).embeddings.create({
      model: EMBED,
      input: "one text",
      encoding_format: "float",
    });
    expect(r.data).toEqual([{ object: "embedding", index: 0, embedding: embeddingOf("one text") }]);
    expect(r.model).toBe(EMBED);
  });

  it("ollama embed and legacy embeddings: vectors, counts, cost and change in the body", async () => {
    const token = await gw.token(20);
    const ollama = new Ollama({ host: gw.url, headers: { "X-Cashu": token } });
    const r = await ollama.embed({ model: EMBED, input: ["why is the sky blue?", "because"] });
    expect(r.embeddings).toEqual([embeddingOf("why is the sky blue?"), embeddingOf("because")]);
    expect(r.prompt_eval_count).toBe("why is the sky blue?because".length);
    const extra = r as unknown as { cost: { sats: number; change_sats: number }; cashu_change: string };
    expect(await gw.receive(extra.cashu_change)).toBe(20 - extra.cost.sats);

    const legacy = await new Ollama({ host: gw.url, headers: { "X-Cashu": await gw.token(10) } }).embeddings({
      model: EMBED,
      prompt: "hi",
    });
    expect(legacy.embedding).toEqual(embeddingOf("hi"));
  });

  it("never offers an embedding job to a node that did not announce embeddings", async () => {
    const offers = oldNode.offers.length;
    const token = await gw.token(10);
    const res = await fetch(`${gw.url}/v1/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-cashu": token },
      body: JSON.stringify({ model: CHAT, input: "hi" }),
    });
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe("no_providers");
    expect(await gw.receive(res.headers.get("x-cashu-change")!)).toBe(10);
    expect(oldNode.offers.length).toBe(offers);
    // And Ollama's shape on the Ollama route.
    const o = await fetch(`${gw.url}/api/embed`, {
      method: "POST",
      headers: { "x-cashu": await gw.token(10) },
      body: JSON.stringify({ model: CHAT, input: "hi" }),
    });
    expect(o.status).toBe(503);
    expect(typeof ((await o.json()) as { error: unknown }).error).toBe("string");
    await gw.receive(o.headers.get("x-cashu-change")!);
  });

  it("refuses vectors that do not match the inputs: not served, the whole token back", async () => {
    for (const rogue of [
      () => JSON.stringify({ data: [{ index: 0, embedding: [1, 2] }] }), // one vector for two inputs
      () => JSON.stringify({ data: [{ embedding: [1, "x"] }, { embedding: [1, 2] }] }),
      () => JSON.stringify({ data: [{ embedding: [1, 2, 3] }, { embedding: [1, 2] }] }),
      () => "not json at all",
    ]) {
      next = [{ embedAnswer: rogue }];
      const token = await gw.token(10);
      const err = (await openai({ "X-Cashu": token })
        .embeddings.create({ model: EMBED, input: ["a", "b"], encoding_format: "float" })
        .catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
      // Checked before the first byte counts: the job fails over, and with no other node it is 503.
      expect(err.status).toBe(503);
      expect(JSON.stringify(err.error)).toMatch(/vector|JSON/);
      expect(await gw.receive(err.headers!.get("x-cashu-change")!)).toBe(10);
    }
  });

  it("an rc_ account pays per request, settled once; an unserved request costs nothing", async () => {
    const api = (path: string, key?: string, body?: unknown) =>
      fetch(`${gw.url}${path}`, {
        method: body === undefined ? "GET" : "POST",
        headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const { api_key } = (await (await api("/v1/auth/register", undefined, {})).json()) as { api_key: string };
    await api("/v1/balance/topup", api_key, { token: await gw.token(50) });
    const balance = async () =>
      (await (await api("/v1/balance", api_key)).json()) as { balance_sats: number; free_remaining: number };
    const embed = () => openai({}, api_key).embeddings.create({ model: EMBED, input: "paid by account" });
    expect((await balance()).balance_sats).toBe(50);
    const r = await embed();
    expect((r.usage as unknown as { cost: { sats: number } }).cost.sats).toBe(2);
    expect((await balance()).balance_sats).toBe(48);
    next = [{ embedAnswer: () => "{}" }];
    await expect(embed()).rejects.toMatchObject({ status: 503 });
    expect((await balance()).balance_sats).toBe(48);
  });

  it("caps an inflated token report at what the input's bytes allow", async () => {
    next = [{ embedPromptTokens: 5_000_000 }];
    const r = await openai({ "X-Cashu": await gw.token(40) }).embeddings.create({
      model: EMBED,
      input: "ten chars!",
      encoding_format: "float",
    });
    expect(r.usage.prompt_tokens).toBe(10 + 4); // bytes + 4 markers, not five million
    expect((r.usage as unknown as { cost: { sats: number } }).cost.sats).toBe(2);
  });

  it("answers an empty Ollama embed for free; a bad body and a missing payment in Ollama's shape", async () => {
    const r = await new Ollama({ host: gw.url }).embed({ model: EMBED, input: [] });
    expect(r.embeddings).toEqual([]);
    const bad = await fetch(`${gw.url}/api/embed`, { method: "POST", body: '{"model":"x","input":5}' });
    expect(bad.status).toBe(400);
    expect(typeof ((await bad.json()) as { error: unknown }).error).toBe("string");
    // No credentials: the 402 challenge, in Ollama's shape too.
    const unpaid = await fetch(`${gw.url}/api/embed`, {
      method: "POST",
      body: `{"model":"${EMBED}","input":"x"}`,
    });
    expect(unpaid.status).toBe(402);
    expect(typeof ((await unpaid.json()) as { error: unknown }).error).toBe("string");
  });

  it("lists embedding models in /api/show, /api/ps and /api/tags", async () => {
    const ollama = new Ollama({ host: gw.url });
    expect((await ollama.show({ model: EMBED })).capabilities).toEqual(["embedding"]);
    expect((await ollama.ps()).models.map((m) => m.name)).toEqual([EMBED, CHAT].sort());
    expect((await ollama.list()).models.map((m) => m.name)).toEqual([CHAT, EMBED]);
  });

  it("lists embedding models in /v1/models with their capabilities (the openai client's models.list)", async () => {
    const openai = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "unused" });
    const listed = new Map<string, unknown>();
    for await (const m of openai.models.list())
      listed.set(m.id, (m as { capabilities?: unknown }).capabilities);
    expect(listed.get(EMBED)).toEqual(["embedding"]);
    expect(listed.get(CHAT)).toEqual(["completion"]);
  });
});
