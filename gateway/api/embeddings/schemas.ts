/**
 * Embedding shapes: Ollama's requests (`/api/embed`, legacy `/api/embeddings`) and the answers of
 * all three routes, for validation and OpenAPI. The OpenAI request lives in ../schemas.ts (the
 * payment pipeline types its bodies with it).
 */
import * as z from "zod";

const Cost = z.object({ sats: z.number().int(), change_sats: z.number().int() });

export const OllamaEmbedRequestSchema = z.looseObject({
  model: z.string().min(1).max(200),
  input: z.union([z.string().max(1_000_000), z.array(z.string().max(1_000_000)).max(2048)]),
  truncate: z.boolean().nullish(),
  dimensions: z.number().int().positive().max(16_384).nullish(),
  keep_alive: z.union([z.string().max(100), z.number()]).nullish(),
  options: z.record(z.string(), z.unknown()).nullish(),
});

export const OllamaEmbeddingsRequestSchema = z.looseObject({
  model: z.string().min(1).max(200),
  prompt: z.string().max(1_000_000).nullish(),
  keep_alive: z.union([z.string().max(100), z.number()]).nullish(),
  options: z.record(z.string(), z.unknown()).nullish(),
});

export const EmbeddingsResponseSchema = z
  .looseObject({
    object: z.literal("list"),
    data: z.array(
      z.object({
        object: z.literal("embedding"),
        index: z.number().int(),
        embedding: z.union([z.array(z.number()), z.string().meta({ description: "base64 float32 LE" })]),
      }),
    ),
    model: z.string(),
    usage: z.looseObject({ prompt_tokens: z.number().int(), total_tokens: z.number().int(), cost: Cost }),
  })
  .meta({ id: "Embeddings" });

export const OllamaEmbedResponseSchema = z.looseObject({
  model: z.string(),
  embeddings: z.array(z.array(z.number())),
  prompt_eval_count: z.number().int().optional(),
  cost: Cost.optional(),
  cashu_change: z.string().optional().meta({ description: "the unused part of the X-Cashu token" }),
});

export const OllamaEmbeddingsResponseSchema = z.looseObject({
  embedding: z.array(z.number()),
  cost: Cost.optional(),
  cashu_change: z.string().optional(),
});
