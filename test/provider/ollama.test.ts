/**
 * The Ollama path end to end with real generation: the embedded backend behind the
 * Ollama-compatible facade, read by the real `ollama` npm client, by our Ollama backend, and by a
 * provider node that picked Ollama by itself and serves a job from the scripted gateway.
 */
import { Ollama } from "ollama";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Backend,
  chooseBackend,
  createEmbeddedBackend,
  createOllamaBackend,
  ensureTestModels,
  type Facade,
  ProviderNode,
  RANDOM_MODEL_ID,
  SCRIPTED_ANSWER,
  SCRIPTED_MODEL_ID,
  startOllamaFacade,
} from "../../provider/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";
import { startFakeGateway } from "../support/fake-gateway.js";

let embedded: Backend;
let facade: Facade;

beforeAll(async () => {
  embedded = await createEmbeddedBackend({ models: ensureTestModels(tempDir()), log: silentLogger });
  facade = await startOllamaFacade(embedded);
}, 60_000);
afterAll(async () => {
  await facade?.close();
  await embedded?.close();
});

describe("Ollama-compatible facade over the embedded backend", () => {
  it("serves the real ollama client: tags, version, streaming chat, generate, token counts, errors", async () => {
    const client = new Ollama({ host: facade.url });
    expect((await client.list()).models.map((m) => m.name).sort()).toEqual(
      [RANDOM_MODEL_ID, SCRIPTED_MODEL_ID].sort(),
    );
    expect((await client.version()).version).toMatch(/owlrun-facade/);

    let text = "";
    const parts = [];
    for await (const part of await client.chat({
      model: SCRIPTED_MODEL_ID,
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    })) {
      text += part.message.content;
      parts.push(part);
    }
    expect(text).toBe(SCRIPTED_ANSWER);
    const last = parts.at(-1)!;
    expect(last.done).toBe(true);
    expect(last.done_reason).toBe("stop");
    expect(last.eval_count).toBe(6);
    expect(last.prompt_eval_count).toBeGreaterThan(0);
    expect(parts.filter((p) => !p.done)).toHaveLength(6); // one NDJSON line per token

    const once = await client.chat({
      model: SCRIPTED_MODEL_ID,
      messages: [{ role: "user", content: "hi" }],
      stream: false,
    });
    expect(once.message.content).toBe(SCRIPTED_ANSWER);

    const gen = await client.generate({
      model: SCRIPTED_MODEL_ID,
      prompt: "once",
      stream: false,
      options: { num_predict: 2 },
    });
    expect(gen.response?.trim()).toBe("Hello from");
    expect(gen.eval_count).toBe(2);
    expect(gen.done_reason).toBe("length");

    let streamed = "";
    for await (const part of await client.generate({ model: SCRIPTED_MODEL_ID, prompt: "x", stream: true })) {
      streamed += part.response;
    }
    expect(streamed.trim()).toBe(SCRIPTED_ANSWER);

    await expect(
      client.chat({ model: "missing:model", messages: [{ role: "user", content: "x" }] }),
    ).rejects.toThrow(/not found/);
    await expect(client.chat({ model: SCRIPTED_MODEL_ID, messages: [] })).rejects.toThrow(/invalid request/);
  });

  it("our Ollama backend reads it: models, chat and completions with Ollama's counts, abort", async () => {
    const ollama = await createOllamaBackend({ url: facade.url, log: silentLogger });
    try {
      expect((await ollama.listModels()).sort()).toEqual([RANDOM_MODEL_ID, SCRIPTED_MODEL_ID].sort());
      let text = "";
      let usage;
      let finish;
      for await (const c of ollama.chat(
        { model: SCRIPTED_MODEL_ID, messages: [{ role: "user", content: "hello" }], max_tokens: 50 },
        new AbortController().signal,
      )) {
        expect(c.object).toBe("chat.completion.chunk");
        text += c.choices[0]?.delta.content ?? "";
        finish = c.choices[0]?.finish_reason ?? finish;
        usage = c.usage ?? usage;
      }
      expect(text).toBe(SCRIPTED_ANSWER);
      expect(finish).toBe("stop");
      expect(usage).toMatchObject({ completion_tokens: 6 });

      let completion = "";
      let cUsage;
      for await (const c of ollama.complete(
        { model: SCRIPTED_MODEL_ID, prompt: "abc", max_tokens: 4 },
        new AbortController().signal,
      )) {
        completion += c.choices[0]?.text ?? "";
        cUsage = c.usage ?? cUsage;
      }
      expect(completion.trim()).toBe("Hello from the owlrun");
      expect(cUsage).toEqual({ prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 });

      const abort = new AbortController();
      let pieces = 0;
      for await (const c of ollama.chat(
        { model: RANDOM_MODEL_ID, messages: [{ role: "user", content: "go" }], max_tokens: 900 },
        abort.signal,
      )) {
        if (c.choices[0]?.delta.content && ++pieces === 5) abort.abort();
      }
      expect(pieces).toBeLessThan(300);
    } finally {
      await ollama.close();
    }
  });

  it("our Ollama backend finds embedding models by /api/show capabilities and embeds on /v1/embeddings", async () => {
    const ollama = await createOllamaBackend({ url: facade.url, log: silentLogger });
    try {
      expect((await ollama.listEmbeddingModels!()).sort()).toEqual(
        [RANDOM_MODEL_ID, SCRIPTED_MODEL_ID].sort(),
      );
      // They also complete, so they stay offered for chat.
      expect((await ollama.listModels()).sort()).toEqual([RANDOM_MODEL_ID, SCRIPTED_MODEL_ID].sort());
      const r = await ollama.embed!(
        { model: SCRIPTED_MODEL_ID, input: ["Hello", "owlrun test"] },
        new AbortController().signal,
      );
      expect(r.vectors.map((v) => v.length)).toEqual([64, 64]);
      expect(r.promptTokens).toBeGreaterThan(0);
      await expect(
        ollama.embed!({ model: "missing:1b", input: "x" }, new AbortController().signal),
      ).rejects.toThrow(/Ollama embeddings failed/);
    } finally {
      await ollama.close();
    }
  });

  it("a provider node picks Ollama when one answers and serves a gateway job through it", async () => {
    const backend = await chooseBackend({ ollamaUrl: facade.url, dataDir: tempDir() }, silentLogger);
    expect(backend.name).toBe("ollama");
    const fake = await startFakeGateway({ keys: ["owlr_prov_o"] });
    const node = new ProviderNode({
      gateway: fake.url,
      apiKey: "owlr_prov_o",
      nodeId: "ollama-node",
      backend,
      ollamaUrl: facade.url,
      version: "test",
      log: silentLogger,
    });
    try {
      await node.start();
      expect(fake.registrations[0]!.body).toMatchObject({
        models: [RANDOM_MODEL_ID, SCRIPTED_MODEL_ID].sort(),
        ollama_url: facade.url,
      });
      const r = await fake.offer(SCRIPTED_MODEL_ID, {
        messages: [{ role: "user", content: "hi" }],
        max_tokens: 64,
      }).result;
      expect(r.text).toBe(SCRIPTED_ANSWER);
      expect(r.usage?.completion_tokens).toBe(6);
      expect(r.sawDone).toBe(true);
    } finally {
      await node.close();
      await fake.close();
      await backend.close();
    }
  });
});
