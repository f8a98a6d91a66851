/**
 * The OpenAI Responses API request and response shapes (`POST /v1/responses`), once, in zod: the
 * handler parses with them and OpenAPI documents them. Only what a chat-completions provider can
 * serve is accepted: messages, function tools, function calls and their outputs.
 */
import * as z from "zod";
import { RoutingPreferencesSchema } from "../schemas.js";

const Text = z.string().max(4_000_000);
const Id = z.string().min(1).max(200);

/** A content part of an input message: text (input_text / output_text) or an image by URL. */
export const ContentPartSchema = z.looseObject({
  type: z.string().max(64),
  text: Text.optional(),
  image_url: z.string().max(8_000_000).nullish(),
});

const Content = z.union([Text, z.array(ContentPartSchema).max(1000)]);

export const MessageItemSchema = z.looseObject({
  type: z.literal("message").optional(),
  role: z.enum(["user", "assistant", "system", "developer"]),
  content: Content,
});

export const FunctionCallItemSchema = z.looseObject({
  type: z.literal("function_call"),
  id: z.string().max(200).optional(),
  call_id: Id,
  name: Id,
  arguments: Text,
});

export const FunctionCallOutputItemSchema = z.looseObject({
  type: z.literal("function_call_output"),
  call_id: Id,
  output: Content,
});

/** Reasoning items a client replays are accepted and dropped (the providers cannot take them). */
const ReasoningItemSchema = z.looseObject({ type: z.literal("reasoning") });

export const InputItemSchema = z.union([
  MessageItemSchema,
  FunctionCallItemSchema,
  FunctionCallOutputItemSchema,
  ReasoningItemSchema,
]);
export type InputItem = z.infer<typeof InputItemSchema>;

export const FunctionToolSchema = z.looseObject({
  type: z.string().max(64).meta({ description: "only `function` tools are served" }),
  name: z.string().max(200).optional(),
  description: z.string().max(100_000).nullish(),
  parameters: z.record(z.string(), z.unknown()).nullish(),
  strict: z.boolean().nullish(),
});

const ToolChoiceSchema = z.union([
  z.enum(["auto", "none", "required"]),
  z.looseObject({ type: z.string().max(64), name: z.string().max(200).optional() }),
]);

export const ResponsesRequestSchema = z
  .looseObject({
    model: z.string().min(1).max(200),
    input: z.union([Text, z.array(InputItemSchema).max(2000)]),
    instructions: Text.nullish(),
    tools: z.array(FunctionToolSchema).max(128).optional(),
    tool_choice: ToolChoiceSchema.optional(),
    parallel_tool_calls: z.boolean().nullish(),
    max_output_tokens: z.number().int().positive().max(1_000_000).nullish(),
    temperature: z.number().min(0).max(2).nullish(),
    top_p: z.number().min(0).max(1).nullish(),
    stream: z.boolean().nullish(),
    store: z.boolean().nullish(),
    previous_response_id: z.string().max(200).nullish(),
    metadata: z.record(z.string(), z.string().max(512)).nullish(),
    text: z
      .looseObject({
        format: z
          .looseObject({
            type: z.string().max(64),
            name: z.string().max(200).optional(),
            schema: z.record(z.string(), z.unknown()).optional(),
            strict: z.boolean().nullish(),
          })
          .optional(),
      })
      .nullish(),
    /** OpenRouter-style routing preferences and fallback models, as on /v1/chat/completions */
    provider: RoutingPreferencesSchema.optional(),
    models: z.array(z.string().min(1).max(200)).max(10).optional(),
  })
  .meta({ id: "ResponsesRequest" });
export type ResponsesRequest = z.infer<typeof ResponsesRequestSchema>;

// ---- what the gateway answers (documented in OpenAPI) ----

const OutputTextSchema = z.object({
  type: z.literal("output_text"),
  text: z.string(),
  annotations: z.array(z.unknown()),
});

export const OutputItemSchema = z.union([
  z.looseObject({
    type: z.literal("message"),
    id: z.string(),
    status: z.string(),
    role: z.literal("assistant"),
    content: z.array(OutputTextSchema),
  }),
  z.looseObject({
    type: z.literal("function_call"),
    id: z.string(),
    call_id: z.string(),
    name: z.string(),
    arguments: z.string(),
    status: z.string(),
  }),
]);

export const ResponseObjectSchema = z
  .looseObject({
    id: z.string(),
    object: z.literal("response"),
    created_at: z.number().int(),
    status: z.enum(["completed", "incomplete", "failed", "in_progress"]),
    model: z.string(),
    output: z.array(OutputItemSchema),
    usage: z
      .looseObject({
        input_tokens: z.number().int(),
        output_tokens: z.number().int(),
        total_tokens: z.number().int(),
        cost: z.object({ sats: z.number().int(), change_sats: z.number().int() }).optional(),
      })
      .nullable(),
    cashu_change: z
      .object({ token: z.string(), change_sats: z.number().int() })
      .optional()
      .meta({ description: "the unused part of the X-Cashu token (also in X-Cashu-Change)" }),
  })
  .meta({ id: "Response" });

export const ResponseStreamSchema = z.string().meta({
  id: "ResponseStream",
  description:
    "Server-Sent Events (`event: <type>` + `data: <json>`), each with a `sequence_number`: response.created, response.in_progress, then per output item response.output_item.added, response.content_part.added, response.output_text.delta…, response.output_text.done, response.content_part.done (messages) or response.function_call_arguments.delta…/.done (function calls), response.output_item.done; then response.completed (or response.incomplete / response.failed) whose response carries usage, `usage.cost`, the `payment` receipt and, when paid with X-Cashu, `cashu_change: {token, change_sats}` (a separate event would break SDK stream helpers, which refuse unknown event types).",
});
