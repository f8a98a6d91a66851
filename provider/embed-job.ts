/**
 * An embedding job as a node serves it (our additive protocol extension, `job.endpoint:
 * "/v1/embeddings"`): the pulled OpenAI embeddings body is checked, embedded by the backend, and
 * answered as the `/v1/embeddings` JSON text the node relays in `proxy_chunk` frames.
 */
import type { Backend, Usage } from "./backends/types.js";
import { EmbedJobBody, splitUtf8 } from "./protocol.js";

export interface EmbeddingAnswer {
  /** the JSON answer cut into proxy_chunk-sized pieces */
  frames: string[];
  usage: Usage;
}

export async function embeddingAnswer(
  backend: Backend,
  model: string,
  pulled: unknown,
  signal: AbortSignal,
): Promise<EmbeddingAnswer> {
  const parsed = EmbedJobBody.safeParse(pulled);
  if (!parsed.success) throw new Error(`unusable embeddings body: ${parsed.error.issues[0]?.message}`);
  if (!backend.embed) throw new Error("this backend does not embed");
  const body = parsed.data;
  const { vectors, promptTokens } = await backend.embed(
    { model, input: body.input, ...(body.dimensions ? { dimensions: body.dimensions } : {}) },
    signal,
  );
  const answer = JSON.stringify({
    object: "list",
    data: vectors.map((embedding, index) => ({ object: "embedding", index, embedding })),
    model,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  });
  return {
    frames: splitUtf8(answer),
    usage: { prompt_tokens: promptTokens, completion_tokens: 0, total_tokens: promptTokens },
  };
}
