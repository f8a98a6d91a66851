/**
 * Wire shapes of the gateway API, defined once with zod: used to validate requests here and to
 * generate OpenAPI and MCP tool schemas later.
 */
import * as z from "zod";

/** Request ids (X-Owlrun-Request-Id, change and withdrawal ids) are UUIDs. */
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

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

/** A whole tool call in an assistant message (OpenAI). `arguments` is JSON text, relayed as is. */
export const ToolCallSchema = z.looseObject({
  id: z.string().max(200),
  type: z.literal("function"),
  function: z.looseObject({ name: z.string().min(1).max(200), arguments: z.string().max(4_000_000) }),
});

export const ChatMessageSchema = z.looseObject({
  role: z.enum(["system", "user", "assistant", "tool", "developer", "function"]),
  content: z.union([z.string().max(4_000_000), z.array(z.unknown()).max(1000), z.null()]).optional(),
  /** assistant: the calls it made */
  tool_calls: z.array(ToolCallSchema).max(128).optional(),
  /** tool: which call this message answers */
  tool_call_id: z.string().max(200).optional(),
});

/** A function the model may call (OpenAI `tools[]`); `parameters` is a JSON Schema, passed on as is. */
export const ToolSchema = z.looseObject({
  type: z.literal("function"),
  function: z.looseObject({
    name: z.string().min(1).max(200),
    description: z.string().max(100_000).optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullish(),
  }),
});

export const ToolChoiceSchema = z.union([
  z.enum(["none", "auto", "required"]),
  z.looseObject({ type: z.literal("function"), function: z.object({ name: z.string().min(1).max(200) }) }),
]);

const commonFields = {
  model: ModelName,
  stream: z.boolean().optional(),
  max_tokens: MaxTokens.optional(),
  temperature: z.number().min(0).max(2).optional().meta({ description: "default 0.7 (RouteCat)" }),
  top_p: z.number().min(0).max(1).optional().meta({ description: "default 1.0 (RouteCat)" }),
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
  tools: z.array(ToolSchema).max(128).optional(),
  tool_choice: ToolChoiceSchema.optional(),
  parallel_tool_calls: z.boolean().optional(),
  stop: z.union([z.string().max(1000), z.array(z.string().max(1000)).max(16)]).nullish(),
  /** 402ai names the cap this way too; it counts like max_tokens */
  max_output_tokens: MaxTokens.optional(),
});
export type ChatCompletionRequest = z.infer<typeof ChatCompletionRequestSchema>;

export const CompletionRequestSchema = z.looseObject({
  ...commonFields,
  prompt: z.union([z.string().max(4_000_000), z.array(z.string().max(4_000_000)).max(100)]),
});
export type CompletionRequest = z.infer<typeof CompletionRequestSchema>;

// ---- responses (documented in OpenAPI; the handlers build these shapes) ----

const Usage = z.looseObject({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
  cost: z
    .object({ sats: z.number().int(), change_sats: z.number().int() })
    .optional()
    .meta({ description: "what this request cost in sats and what came back as change" }),
});

export const ChatCompletionResponseSchema = z
  .looseObject({
    id: z.string(),
    object: z.literal("chat.completion"),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        message: z.object({
          role: z.literal("assistant"),
          content: z.string().nullable(),
          tool_calls: z.array(ToolCallSchema).optional(),
        }),
        finish_reason: z.string().nullable(),
      }),
    ),
    usage: Usage,
  })
  .meta({ id: "ChatCompletion" });

export const CompletionResponseSchema = z
  .looseObject({
    id: z.string(),
    object: z.literal("text_completion"),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({ index: z.number().int(), text: z.string(), finish_reason: z.string().nullable() }),
    ),
    usage: Usage,
  })
  .meta({ id: "Completion" });

/**
 * With `stream: true`: Server-Sent Events whose lines carry both OpenAI's and Owlrun's fields; the
 * last line before `[DONE]` is the usage chunk, which is also the `cashu_change` event.
 */
export const CompletionStreamSchema = z.string().meta({
  id: "CompletionStream",
  description:
    'Server-Sent Events. Each event is `data: <json>`: OpenAI chunks (`chat.completion.chunk` or `text_completion`) that also carry Owlrun\'s `message: {role, content}` and `done: false`, so both kinds of client read the answer. The last event before `data: [DONE]` is the usage chunk (`choices: []`, `usage` with `usage.cost`, the `payment` receipt, `done: true`); when paid with X-Cashu that same event is `{"type":"cashu_change","token":"cashuB…","change_sats":N}` too. With `X-Stream-Format: owlrun` the events are Owlrun\'s alone: `{model,message,done}` objects, the done event, a `payment` event, then the `cashu_change` event.',
  example:
    'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}],"message":{"role":"assistant","content":"Hi"},"done":false}\n\ndata: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6,"cost":{"sats":2,"change_sats":18}},"payment":{"method":"xcashu","amount_sats":2,"change_sats":18,"request_id":"…"},"message":{"role":"assistant","content":""},"done":true,"type":"cashu_change","token":"cashuB…","change_sats":18}\n\ndata: [DONE]\n\n',
});

/** Request headers of the paid routes: pay per request with ecash, or pick the stream format. */
export const PaymentRequestHeaders = z.object({
  "X-Cashu": z
    .string()
    .optional()
    .meta({ description: "a cashuA/cashuB token from a trusted mint that pays this request" }),
  "X-Stream-Format": z
    .enum(["openai", "owlrun"])
    .optional()
    .meta({ description: "stream chunks in OpenAI (default) or Owlrun shape" }),
});

/** Response headers of a served (or refunded) paid request. */
export const PaymentResponseHeaders = z.object({
  "X-Cashu-Change": z.string().optional().meta({
    description: "the unused part of the X-Cashu token, as a fresh token (non-streaming answers and refunds)",
  }),
  "X-Cost-Sats": z.string().optional().meta({ description: "sats charged (non-streaming)" }),
  "X-Owlrun-Request-Id": z
    .string()
    .optional()
    .meta({ description: "claim lost change later at GET /v1/cashu/change/{id}" }),
  "X-Owlrun-Node": z.string().optional().meta({ description: "the provider node that served the job" }),
});

/** A 402 names how to pay; an L402 challenge (when offered) rides in WWW-Authenticate. */
export const PaymentRequiredHeaders = z.object({
  "WWW-Authenticate": z.string().optional().meta({
    description: 'L402 challenge when offered: `L402 macaroon="…", invoice="lnbc…"`',
  }),
  "X-Cashu": z.string().optional().meta({ description: "NUT-24 payment request (creqA…) when offered" }),
});

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
        tool_calls: z
          .array(
            z.looseObject({
              function: z.looseObject({
                name: z.string().min(1).max(200),
                arguments: z.union([z.record(z.string(), z.unknown()), z.string().max(4_000_000)]).optional(),
              }),
            }),
          )
          .max(128)
          .optional(),
        tool_name: z.string().max(200).optional(),
      }),
    )
    .max(2000)
    .optional(),
  tools: z.array(ToolSchema).max(128).optional(),
});
export type OllamaChatRequest = z.infer<typeof OllamaChatRequestSchema>;

/** POST /api/generate (Ollama); no `prompt` only loads the model. */
export const OllamaGenerateRequestSchema = z.looseObject({
  ...ollamaCommon,
  prompt: z.string().max(4_000_000).nullish(),
  system: z.string().max(4_000_000).nullish(),
});
export type OllamaGenerateRequest = z.infer<typeof OllamaGenerateRequestSchema>;

/** POST /v1/embeddings (OpenAI): one text or a list; vectors as floats or base64 float32. */
export const EmbeddingsRequestSchema = z
  .looseObject({
    model: ModelName,
    input: z.union([z.string().max(1_000_000), z.array(z.string().max(1_000_000)).min(1).max(2048)]),
    encoding_format: z.enum(["float", "base64"]).optional(),
    dimensions: z.number().int().positive().max(16_384).optional(),
    user: z.string().max(256).optional(),
    provider: RoutingPreferencesSchema.optional(),
    models: z.array(ModelName).max(10).optional(),
  })
  .meta({ id: "EmbeddingsRequest" });
export type EmbeddingsRequest = z.infer<typeof EmbeddingsRequestSchema>;
