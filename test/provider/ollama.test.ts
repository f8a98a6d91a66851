/**
 * The Ollama path end to end with real generation: the embedded backend behind the
 * Ollama-compatible facade, read by the real `ollama` npm client and by our Ollama backend.
 */
import { Ollama } from "ollama";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Backend,
  createEmbeddedBackend,
  createOllamaBackend,
  ensureTestModels,
  RANDOM_MODEL_ID,
  SCRIPTED_ANSWER,
  SCRIPTED_MODEL_ID,
  startOllamaFacade,
} from "../../provider/index.js";
import { silentLogger } from "../../src/shared/index.js";
import { tempDir } from "../support/cli-process.js";

let embedded: Backend;
let facade: Awaited<ReturnType<typeof startOllamaFacade>>;

beforeAll(async () => {
  embedded = await createEmbeddedBackend({ models: ensureTestModels(tempDir()), log: silentLogger });
  facade = await startOllamaFacade(embedded);
}, 60_000);
afterAll(async () => {
  await facade.close();
  await embedded.close();
});

describe("Ollama-compatible facade over the embedded backend", () => {
  it("serves the real ollama client: tags, version, streaming chat and generate, token counts", async () => {
    const client = new Ollama({ host: facade.url });
    expect((await client.list()).models.map((m) => m.name).sort()).toEqual(
      [RANDOM_MODEL_ID, SCRIPTED_MODEL_ID].sort(),
    );
    expect((await client.version()).version).toMatch(/^owlrun-facade/);
    let text = "";
    let last: { eval_count?: number; prompt_eval_count?: number; done?: boolean } = {};
    for await (const part of await client.chat({
      model: SCRIPTED_MODEL_ID,
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    })) {
      text += part.message.content;
      last = part;
    }
    expect(text).toBe(SCRIPTED_ANSWER);
    expect(last.done).toBe(true);
    expect(last.eval_count).toBe(6);
    expect(last.prompt_eval_count).toBeGreaterThan(0);
    const gen = await client.generate({
      model: SCRIPTED_MODEL_ID,
      prompt: "once",
      stream: false,
      options: { num_predict: 2 },
    });
    expect(gen.response?.trim()).toBe("Hello from");
    expect(gen.eval_count).toBe(2);
    await expect(
      client.chat({ model: "missing:model", messages: [{ role: "user", content: "x" }] }),
    ).rejects.toThrow(/not found/);
  });

  it("our Ollama backend reads it: models, generation with usage, abort", async () => {
    const ollama = await createOllamaBackend({ url: facade.url, log: silentLogger });
    expect((await ollama.models()).sort()).toEqual([RANDOM_MODEL_ID, SCRIPTED_MODEL_ID].sort());
    let text = "";
    let done: { promptTokens?: number; completionTokens?: number } = {};
    for await (const ev of ollama.generate({
      kind: "chat",
      body: { model: SCRIPTED_MODEL_ID, messages: [{ role: "user", content: "hello" }] },
      maxTokens: 50,
      signal: new AbortController().signal,
    })) {
      if (ev.type === "text") text += ev.text;
      else done = ev;
    }
    expect(text).toBe(SCRIPTED_ANSWER);
    expect(done.completionTokens).toBe(6);

    const abort = new AbortController();
    let pieces = 0;
    for await (const ev of ollama.generate({
      kind: "chat",
      body: { model: RANDOM_MODEL_ID, messages: [{ role: "user", content: "go" }] },
      maxTokens: 5000,
      signal: abort.signal,
    })) {
      if (ev.type === "text" && ++pieces === 5) abort.abort();
      if (ev.type === "done") expect(ev.finishReason).toBe("cancelled");
    }
    expect(pieces).toBeLessThan(200);
    await ollama.close();
  });

  it("the embedded backend runs concurrent jobs on separate sequences", async () => {
    const run = async (prompt: string) => {
      let t = "";
      for await (const ev of embedded.generate({
        kind: "chat",
        body: { model: SCRIPTED_MODEL_ID, messages: [{ role: "user", content: prompt }] },
        maxTokens: 20,
        signal: new AbortController().signal,
      })) {
        if (ev.type === "text") t += ev.text;
      }
      return t;
    };
    expect(await Promise.all(["a", "b", "c", "d", "e"].map(run))).toEqual(Array(5).fill(SCRIPTED_ANSWER));
  });
});
