/**
 * Embedding jobs on the Owlrun node protocol (our additive extension). A node announces the models
 * it embeds with in `embedding_models` when it registers; only such nodes are offered embedding jobs,
 * as `job {…, endpoint: "/v1/embeddings"}`, so an old node never sees one. The node pulls an OpenAI
 * embeddings request, POSTs it to its backend's `/v1/embeddings` (Ollama's OpenAI-compatible route)
 * and relays the JSON answer as text in `proxy_chunk` frames, then `proxy_done`.
 *
 * The gateway believes nothing it cannot check: one vector per input, finite numbers, one dimension,
 * bounded size; prompt tokens capped by what the input's bytes allow.
 */
import type { PromptBounds } from "./usage.js";

export const EMBEDDINGS_ENDPOINT = "/v1/embeddings";
/** The largest answer a node may relay for one job (about 1,000 vectors of 1,024 dimensions). */
export const MAX_EMBEDDING_ANSWER_BYTES = 32 * 1024 * 1024;
export const MAX_EMBEDDING_DIMENSIONS = 16_384;

/** The inputs of an embeddings request as a list of texts. */
export function embeddingInputs(input: unknown): string[] {
  if (typeof input === "string") return [input];
  return Array.isArray(input) ? input.map((t) => (typeof t === "string" ? t : JSON.stringify(t))) : [];
}

/**
 * Prompt-token bounds of an embeddings job: a tokenizer spends at most one token per UTF-8 byte
 * (byte fallback) plus its begin/end markers per input; a node reporting more is disputed. The
 * estimate (no report) is the usual four bytes a token.
 */
export function embeddingBounds(input: unknown): PromptBounds {
  const texts = embeddingInputs(input);
  const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t, "utf8"), 0);
  return { cap: bytes + 4 * texts.length, estimate: Math.ceil(bytes / 4) + texts.length };
}

/** What the node pulls: the model, the inputs, floats always (the gateway encodes base64 itself). */
export function embeddingNodeBody(body: Record<string, unknown>, model: string): Record<string, unknown> {
  return {
    model,
    input: body.input,
    encoding_format: "float",
    ...(typeof body.dimensions === "number" ? { dimensions: body.dimensions } : {}),
  };
}

export class EmbeddingAnswerError extends Error {}

export interface EmbeddingAnswer {
  vectors: number[][];
  /** prompt tokens the node reported, if any */
  promptTokens?: number;
}

/** Parses and checks a node's `/v1/embeddings` answer for `count` inputs. */
export function parseEmbeddingAnswer(text: string, count: number): EmbeddingAnswer {
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    throw new EmbeddingAnswerError("the provider's embeddings answer is not JSON");
  }
  const a = answer as { data?: unknown; usage?: { prompt_tokens?: unknown }; error?: unknown };
  if (a?.error !== undefined) {
    const e = a.error as { message?: unknown } | string;
    const msg = typeof e === "string" ? e : typeof e?.message === "string" ? e.message : "unknown";
    throw new EmbeddingAnswerError(`backend error: ${msg.slice(0, 300)}`);
  }
  if (!Array.isArray(a?.data) || a.data.length !== count) {
    throw new EmbeddingAnswerError(
      `the provider answered ${Array.isArray(a?.data) ? a.data.length : "no"} vectors for ${count} inputs`,
    );
  }
  const vectors: number[][] = new Array<number[]>(count);
  let dims: number | undefined;
  a.data.forEach((d: unknown, i: number) => {
    const item = d as { index?: unknown; embedding?: unknown };
    const at = typeof item?.index === "number" ? item.index : i;
    const v = item?.embedding;
    if (!Number.isInteger(at) || at < 0 || at >= count || vectors[at]) {
      throw new EmbeddingAnswerError("the provider's vector indexes do not match the inputs");
    }
    if (!Array.isArray(v) || v.length === 0 || v.length > MAX_EMBEDDING_DIMENSIONS) {
      throw new EmbeddingAnswerError("the provider sent an empty or oversized vector");
    }
    if (!v.every((x) => typeof x === "number" && Number.isFinite(x))) {
      throw new EmbeddingAnswerError("the provider sent a vector with non-numbers");
    }
    if (dims !== undefined && v.length !== dims) {
      throw new EmbeddingAnswerError("the provider's vectors differ in dimension");
    }
    dims = v.length;
    vectors[at] = v as number[];
  });
  const p = a.usage?.prompt_tokens;
  return {
    vectors,
    ...(typeof p === "number" && Number.isFinite(p) ? { promptTokens: Math.max(0, Math.floor(p)) } : {}),
  };
}
