/**
 * Wire shapes of the gateway API, defined once with zod: used to validate requests here and to
 * generate OpenAPI and MCP tool schemas later.
 */
import * as z from "zod";
import { ApiError } from "./errors.js";

/** Validates a request body; a bad one is a 400 naming the first problem (nothing is charged). */
export function parseRequest<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    const where = issue?.path.length ? `${issue.path.join(".")}: ` : "";
    throw new ApiError(400, "invalid_request", `invalid request: ${where}${issue?.message ?? "bad body"}`);
  }
  return r.data;
}

export const RoutingPreferencesSchema = z.object({
  order: z.array(z.string().max(200)).max(50).optional(),
  only: z.array(z.string().max(200)).max(50).optional(),
  ignore: z.array(z.string().max(200)).max(50).optional(),
  allow_fallbacks: z.boolean().optional(),
  max_price: z
    .object({ prompt: z.number().nonnegative().optional(), completion: z.number().nonnegative().optional() })
    .optional(),
  sort: z.enum(["price", "latency", "throughput"]).optional(),
});

const ModelName = z.string().min(1).max(200);
const MaxTokens = z.number().int().positive().max(1_000_000);

export const ChatMessageSchema = z.looseObject({
  role: z.enum(["system", "user", "assistant", "tool", "developer", "function"]),
  content: z.union([z.string().max(4_000_000), z.array(z.unknown()).max(1000), z.null()]).optional(),
});

const commonFields = {
  model: ModelName,
  stream: z.boolean().optional(),
  max_tokens: MaxTokens.optional(),
  temperature: z.number().min(0).max(2).optional(),
  top_p: z.number().min(0).max(1).optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).optional(),
  /** OpenRouter-style routing preferences */
  provider: RoutingPreferencesSchema.optional(),
  /** fallback models, tried in order when the first has no provider */
  models: z.array(ModelName).max(10).optional(),
};

export const ChatCompletionRequestSchema = z.looseObject({
  ...commonFields,
  messages: z.array(ChatMessageSchema).min(1).max(2000),
  max_completion_tokens: MaxTokens.optional(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;

export const CompletionRequestSchema = z.looseObject({
  ...commonFields,
  prompt: z.union([z.string().max(4_000_000), z.array(z.string().max(4_000_000)).max(100)]),
});
export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;

/** Ollama's generation `options` (what we map onto OpenAI fields; the rest is ignored). */
const OllamaOptionsSchema = z
  .looseObject({
    num_predict: z.number().int().nullish(),
    temperature: z.number().nullish(),
    top_p: z.number().nullish(),
  })
  .nullish();

const ollamaCommon = {
  model: ModelName,
  /** Ollama streams unless told `false` */
  stream: z.boolean().nullish(),
  options: OllamaOptionsSchema,
};

/** POST /api/chat (Ollama); an empty `messages` only loads the model. */
export const OllamaChatRequestSchema = z.looseObject({
  ...ollamaCommon,
  messages: z
    .array(
      z.looseObject({
        role: z.enum(["system", "user", "assistant", "tool"]),
        content: z.string().max(4_000_000).nullish(),
      }),
    )
    .max(2000)
    .optional(),
});
export type OllamaChatRequest = z.infer<typeof OllamaChatRequestSchema>;

/** POST /api/generate (Ollama); no `prompt` only loads the model. */
export const OllamaGenerateRequestSchema = z.looseObject({
  ...ollamaCommon,
  prompt: z.string().max(4_000_000).nullish(),
  system: z.string().max(4_000_000).nullish(),
});
export type OllamaGenerateRequest = z.infer<typeof OllamaGenerateRequestSchema>;
