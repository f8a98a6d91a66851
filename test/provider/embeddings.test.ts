/**
 * Embeddings end to end on real parts: the provider node with the embedded node-llama-cpp backend
 * (the generated test models, `createEmbeddingContext`) announces `embedding_models`, the gateway
 * offers it embedding jobs, and the `openai` and `ollama` clients get llama.cpp's vectors, paid
 * per input token with X-Cashu, change back.
 */
import { Ollama } from "ollama";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signup } from "../support/owlrun-agent.js";
import { type PaidGateway, startPaidGateway } from "../support/paid-gateway.js";
import {
  type Backend,
  createEmbeddedBackend,
  ensureTestModels,
  ProviderNode,
  SCRIPTED_MODEL_ID,
} from "../../provider/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";

let gw: PaidGateway;
let backend: Backend;
let node: ProviderNode;

beforeAll(async () => {
  gw = await startPaidGateway(200);
  backend = await createEmbeddedBackend({ models: ensureTestModels(tempDir()), log: silentLogger });
  node = new ProviderNode({
    gateway: gw.url,
    apiKey: await signup(gw.url),
    nodeId: "node-embed",
    backend,
    version: "test",
    log: silentLogger,
  });
  await node.start();
  const dispatcher = gw.running.gateway.dispatcher;
  for (let i = 0; i < 200 && !dispatcher.embeddingModels?.().length; i++) {
    await new Promise((r) => setTimeout(r, 25));
  }
}, 60_000);
afterAll(async () => {
  await node?.close();
  await backend?.close();
  await gw?.close();
});

const cosine = (a: number[], b: number[]) => {
  let dot = 0;
  let na = 0;
  let nb = 0;
  a.forEach((x, i) => {
    dot += x * b[i]!;
    na += x * x;
    nb += b[i]! * b[i]!;
  });
  return dot / Math.sqrt(na * nb);
};

describe("embeddings from the embedded backend", () => {
  it("the node announces its models for embeddings too", () => {
    const offered = gw.running.gateway.dispatcher.embeddingModels!().map((m) => m.model);
    expect(offered).toContain(SCRIPTED_MODEL_ID);
  });

  it("openai embeddings.create and ollama embed get llama.cpp's vectors, paid with X-Cashu", async () => {
    const token = await gw.token(20);
    const openai = new OpenAI({
      baseURL: `${gw.url}/v1`,
      apiKey: "unused",
      defaultHeaders: { "X-Cashu": token },
      maxRetries: 0,
    });
    const { data, response } = await openai.embeddings
      .create({ model: SCRIPTED_MODEL_ID, input: ["Hello owlrun", "test model."], encoding_format: "float" })
      .withResponse();
    expect(data.data).toHaveLength(2);
    const [a, b] = data.data.map((d) => d.embedding);
    expect(a!.length).toBe(64); // the test model's embedding width
    expect(a!.every((x) => Number.isFinite(x))).toBe(true);
    expect(data.usage.prompt_tokens).toBeGreaterThan(0);
    const cost = (data.usage as unknown as { cost: { sats: number } }).cost.sats;
    expect(await gw.receive(response.headers.get("x-cashu-change")!)).toBe(20 - cost);

    const ollama = new Ollama({ host: gw.url, headers: { "X-Cashu": await gw.token(20) } });
    const again = await ollama.embed({ model: SCRIPTED_MODEL_ID, input: ["Hello owlrun", "test model."] });
    // Same model, same text: the same direction (Ollama clients compare by cosine).
    expect(cosine(again.embeddings[0]!, a!)).toBeCloseTo(1, 5);
    expect(cosine(again.embeddings[1]!, b!)).toBeCloseTo(1, 5);
    await gw.receive((again as unknown as { cashu_change: string }).cashu_change);
  });
});
