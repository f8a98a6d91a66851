/**
 * Tiny llama-architecture test models, generated here because no model can be downloaded:
 * - "scripted": answers one fixed sentence to every prompt (one-hot embeddings, zero attention and
 *   feed-forward, so the hidden state is the last token; `output` chains each sentence token to the
 *   next and the last to end-of-sequence). Tests can assert on its text.
 * - "random": random weights, for throughput; its text is gibberish.
 * Their ids say they are test models.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type MetaValue, type Tensor, writeGguf } from "./writer.js";

export const SCRIPTED_MODEL_ID = "owlrun-test-scripted:tiny";
export const RANDOM_MODEL_ID = "owlrun-test-random:tiny";
export const SCRIPTED_ANSWER_WORDS = ["Hello", "from", "the", "owlrun", "test", "model."];
/** The text the scripted model produces (SentencePiece "▁" becomes a space). */
export const SCRIPTED_ANSWER = SCRIPTED_ANSWER_WORDS.join(" ");

const N_EMBD = 64;
const N_HEAD = 4;
const N_LAYER = 2;
const N_FF = 128;

interface Vocab {
  tokens: string[];
  scores: number[];
  types: number[];
}

/** <unk> <s> </s>, 256 byte tokens, ▁, printable ASCII, then the given words (as ▁word pieces). */
function buildVocab(words: string[]): Vocab {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(6);
  }
  tokens.push("▁");
  types.push(1);
  for (let c = 33; c < 127; c++) {
    tokens.push(String.fromCharCode(c));
    types.push(1);
  }
  for (const w of words) {
    const piece = `▁${w}`;
    if (!tokens.includes(piece)) {
      tokens.push(piece);
      types.push(1);
    }
  }
  // Longer pieces score higher so the tokenizer prefers whole words.
  const scores = tokens.map((t, i) => (types[i] === 1 ? -1000 + t.length * 10 : 0));
  return { tokens, scores, types };
}

function meta(name: string, vocab: Vocab): Record<string, MetaValue> {
  return {
    "general.architecture": { type: "string", value: "llama" },
    "general.name": { type: "string", value: name },
    "general.alignment": { type: "u32", value: 32 },
    "llama.context_length": { type: "u32", value: 32_768 },
    "llama.embedding_length": { type: "u32", value: N_EMBD },
    "llama.block_count": { type: "u32", value: N_LAYER },
    "llama.feed_forward_length": { type: "u32", value: N_FF },
    "llama.rope.dimension_count": { type: "u32", value: N_EMBD / N_HEAD },
    "llama.attention.head_count": { type: "u32", value: N_HEAD },
    "llama.attention.head_count_kv": { type: "u32", value: N_HEAD },
    "llama.attention.layer_norm_rms_epsilon": { type: "f32", value: 1e-5 },
    "llama.vocab_size": { type: "u32", value: vocab.tokens.length },
    "tokenizer.ggml.model": { type: "string", value: "llama" },
    "tokenizer.ggml.tokens": { type: "string[]", value: vocab.tokens },
    "tokenizer.ggml.scores": { type: "f32[]", value: vocab.scores },
    "tokenizer.ggml.token_type": { type: "i32[]", value: vocab.types },
    "tokenizer.ggml.unknown_token_id": { type: "u32", value: 0 },
    "tokenizer.ggml.bos_token_id": { type: "u32", value: 1 },
    "tokenizer.ggml.eos_token_id": { type: "u32", value: 2 },
    "tokenizer.ggml.add_bos_token": { type: "bool", value: true },
  };
}

function layers(fill: (n: number) => Float32Array, ones: (n: number) => Float32Array): Tensor[] {
  const t: Tensor[] = [];
  for (let i = 0; i < N_LAYER; i++) {
    t.push(
      { name: `blk.${i}.attn_norm.weight`, dims: [N_EMBD], data: ones(N_EMBD) },
      { name: `blk.${i}.attn_q.weight`, dims: [N_EMBD, N_EMBD], data: fill(N_EMBD * N_EMBD) },
      { name: `blk.${i}.attn_k.weight`, dims: [N_EMBD, N_EMBD], data: fill(N_EMBD * N_EMBD) },
      { name: `blk.${i}.attn_v.weight`, dims: [N_EMBD, N_EMBD], data: fill(N_EMBD * N_EMBD) },
      { name: `blk.${i}.attn_output.weight`, dims: [N_EMBD, N_EMBD], data: fill(N_EMBD * N_EMBD) },
      { name: `blk.${i}.ffn_norm.weight`, dims: [N_EMBD], data: ones(N_EMBD) },
      { name: `blk.${i}.ffn_gate.weight`, dims: [N_EMBD, N_FF], data: fill(N_EMBD * N_FF) },
      { name: `blk.${i}.ffn_up.weight`, dims: [N_EMBD, N_FF], data: fill(N_EMBD * N_FF) },
      { name: `blk.${i}.ffn_down.weight`, dims: [N_FF, N_EMBD], data: fill(N_FF * N_EMBD) },
    );
  }
  return t;
}

const ones = (n: number) => new Float32Array(n).fill(1);

export function scriptedModel(): Buffer {
  const vocab = buildVocab(SCRIPTED_ANSWER_WORDS);
  const nVocab = vocab.tokens.length;
  const ids = SCRIPTED_ANSWER_WORDS.map((w) => vocab.tokens.indexOf(`▁${w}`));
  // Slot 0: every token outside the sentence; slots 1..k: the sentence tokens.
  const embd = new Float32Array(N_EMBD * nVocab);
  for (let v = 0; v < nVocab; v++) {
    const slot = ids.indexOf(v) + 1; // 0 when not a sentence token
    embd[v * N_EMBD + slot] = 1;
  }
  const out = new Float32Array(N_EMBD * nVocab);
  const BIG = 40;
  out[ids[0]! * N_EMBD + 0] = BIG; // anything → first word
  ids.forEach((id, i) => {
    const next = i + 1 < ids.length ? ids[i + 1]! : 2; // last word → </s>
    out[next * N_EMBD + (i + 1)] = BIG;
  });
  const zero = (n: number) => new Float32Array(n);
  return writeGguf(meta("owlrun scripted test model", vocab), [
    { name: "token_embd.weight", dims: [N_EMBD, nVocab], data: embd },
    ...layers(zero, ones),
    { name: "output_norm.weight", dims: [N_EMBD], data: ones(N_EMBD) },
    { name: "output.weight", dims: [N_EMBD, nVocab], data: out },
  ]);
}

export function randomModel(seed = 7): Buffer {
  const vocab = buildVocab(["the", "owl", "runs", "sats", "ecash", "model", "node", "token"]);
  const nVocab = vocab.tokens.length;
  let s = seed;
  const rand = (n: number) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      s = (s * 1_103_515_245 + 12_345) % 2 ** 31;
      a[i] = (s / 2 ** 31 - 0.5) * 0.2;
    }
    return a;
  };
  return writeGguf(meta("owlrun random test model", vocab), [
    { name: "token_embd.weight", dims: [N_EMBD, nVocab], data: rand(N_EMBD * nVocab) },
    ...layers(rand, ones),
    { name: "output_norm.weight", dims: [N_EMBD], data: ones(N_EMBD) },
    { name: "output.weight", dims: [N_EMBD, nVocab], data: rand(N_EMBD * nVocab) },
  ]);
}

/** Bump when the generated files change, so cached copies are regenerated. */
const GENERATION = 2;

/** The test models by id, as file name and generator. */
export const TEST_MODELS = {
  [SCRIPTED_MODEL_ID]: { file: `owlrun-test-scripted-v${GENERATION}.gguf`, make: scriptedModel },
  [RANDOM_MODEL_ID]: { file: `owlrun-test-random-v${GENERATION}.gguf`, make: randomModel },
} as const;

/**
 * Writes the test models into `dir` once (a cache: later calls reuse the files) and returns their
 * paths by model id. Written under a temporary name and renamed, so concurrent starts are safe.
 */
export function ensureTestModels(dir: string): Record<string, string> {
  mkdirSync(dir, { recursive: true });
  const paths: Record<string, string> = {};
  for (const [id, { file, make }] of Object.entries(TEST_MODELS)) {
    const path = join(dir, file);
    if (!existsSync(path)) {
      const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
      writeFileSync(tmp, make());
      renameSync(tmp, path);
    }
    paths[id] = path;
  }
  return paths;
}
