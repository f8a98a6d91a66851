/**
 * Embedded backend numbers on this machine: load time, first-token latency and tokens/s of the
 * generated test models, alone and with concurrent jobs, directly and through the Ollama facade.
 * Run: npx tsx scripts/provider-bench.ts   (never part of `npm test`)
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ollama } from "ollama";
import {
  type Backend,
  createEmbeddedBackend,
  ensureTestModels,
  RANDOM_MODEL_ID,
  SCRIPTED_MODEL_ID,
  startOllamaFacade,
} from "../provider/index.js";
import { silentLogger } from "../src/shared/index.js";

const dir = mkdtempSync(join(tmpdir(), "owlrun-bench-"));
let t = performance.now();
const paths = ensureTestModels(dir);
const genMs = performance.now() - t;

t = performance.now();
const backend = await createEmbeddedBackend({ models: paths, log: silentLogger });
const loadMs = performance.now() - t;

async function job(b: Backend, model: string, maxTokens: number) {
  const started = performance.now();
  let first = 0;
  let tokens = 0;
  for await (const c of b.chat(
    { model, messages: [{ role: "user", content: "bench" }], max_tokens: maxTokens },
    new AbortController().signal,
  )) {
    if (!first && c.choices[0]?.delta.content) first = performance.now() - started;
    if (c.usage) tokens = c.usage.completion_tokens;
  }
  return { ms: performance.now() - started, first, tokens };
}

const rows: string[] = [];
const rate = (tokens: number, ms: number) => `${Math.round((tokens * 1000) / ms)} tok/s`;
rows.push(`generate both GGUF files: ${genMs.toFixed(0)} ms`);
rows.push(
  `embedded backend ready: ${loadMs.toFixed(0)} ms, of which getLlama + 2 models + contexts ${backend.loadMs} ms ` +
    `(the rest is import("node-llama-cpp"))`,
);
await job(backend, RANDOM_MODEL_ID, 20); // warm up
for (const n of [1, 2, 4]) {
  const started = performance.now();
  const runs = await Promise.all(Array.from({ length: n }, () => job(backend, RANDOM_MODEL_ID, 500)));
  const ms = performance.now() - started;
  const tokens = runs.reduce((a, r) => a + r.tokens, 0);
  const first = runs.reduce((a, r) => a + r.first, 0) / n;
  rows.push(
    `random model, ${n} concurrent job(s) × 500 tokens: ${tokens} tokens in ${ms.toFixed(0)} ms = ${rate(tokens, ms)} total, first token ${first.toFixed(0)} ms avg`,
  );
}
const s = await job(backend, SCRIPTED_MODEL_ID, 50);
rows.push(
  `scripted model: ${s.tokens} tokens in ${s.ms.toFixed(1)} ms (first token ${s.first.toFixed(1)} ms)`,
);

const facade = await startOllamaFacade(backend);
const client = new Ollama({ host: facade.url });
t = performance.now();
let n = 0;
for await (const part of await client.chat({
  model: RANDOM_MODEL_ID,
  messages: [{ role: "user", content: "bench" }],
  options: { num_predict: 500 },
  stream: true,
})) {
  if (part.done) n = part.eval_count;
}
const facadeMs = performance.now() - t;
rows.push(
  `through the Ollama facade (ollama client, NDJSON): ${n} tokens in ${facadeMs.toFixed(0)} ms = ${rate(n, facadeMs)}`,
);
await facade.close();
await backend.close();
console.log(rows.join("\n"));
