/**
 * Anthropic Messages API shapes (https://docs.anthropic.com/en/api/messages), as zod: the request
 * the route validates, the message object and events it answers, and Anthropic's error shape. Fields
 * we do not act on (metadata, thinking, service_tier, cache_control, …) are accepted and ignored.
 */
import * as z from "zod";

const Text = z.string().max(4_000_000);

export const TextBlockSchema = z.looseObject({ type: z.literal("text"), text: Text });
const ImageBlockSchema = z.looseObject({ type: z.literal("image"), source: z.unknown().optional() });
const DocumentBlockSchema = z.looseObject({ type: z.literal("document"), source: z.unknown().optional() });
const ToolUseBlockSchema = z.looseObject({
  type: z.literal("tool_use"),
  id: z.string().min(1).max(200),
  name: z.string().min(1).max(200),
  input: z.unknown(),
});
const ToolResultBlockSchema = z.looseObject({
  type: z.literal("tool_result"),
  tool_use_id: z.string().min(1).max(200),
  content: z
    .union([
      Text,
      z
        .array(z.discriminatedUnion("type", [TextBlockSchema, ImageBlockSchema, DocumentBlockSchema]))
        .max(1000),
    ])
    .optional(),
  is_error: z.boolean().optional(),
});
const ThinkingBlockSchema = z.looseObject({ type: z.literal("thinking"), thinking: Text.optional() });
const RedactedThinkingBlockSchema = z.looseObject({ type: z.literal("redacted_thinking") });

export const ContentBlockSchema = z.discriminatedUnion("type", [
  TextBlockSchema,
  ImageBlockSchema,
  DocumentBlockSchema,
  ToolUseBlockSchema,
  ToolResultBlockSchema,
  ThinkingBlockSchema,
  RedactedThinkingBlockSchema,
]);
export type ContentBlock = z.infer<typeof ContentBlockSchema>;

/** `system` turns mid-conversation: Claude Code sends its environment notes that way. */
export const MessageParamSchema = z.looseObject({
  role: z.enum(["user", "assistant", "system"]),
  content: z.union([Text, z.array(ContentBlockSchema).max(1000)]),
});

/** A client tool; `input_schema` is a JSON Schema, passed to the provider as the function's parameters. */
export const ToolDefinitionSchema = z.looseObject({
  name: z.string().min(1).max(200),
  description: z.string().max(100_000).optional(),
  input_schema: z.record(z.string(), z.unknown()).optional(),
  type: z.string().max(100).optional(),
});

export const ToolChoiceSchema = z.looseObject({
  type: z.enum(["auto", "any", "tool", "none"]),
  name: z.string().min(1).max(200).optional(),
  disable_parallel_tool_use: z.boolean().optional(),
});

const messagesFields = {
  model: z.string().min(1).max(200),
  messages: z.array(MessageParamSchema).min(1).max(5000),
  system: z.union([Text, z.array(TextBlockSchema).max(1000)]).optional(),
  tools: z.array(ToolDefinitionSchema).max(128).optional(),
  tool_choice: ToolChoiceSchema.optional(),
};

export const MessagesRequestSchema = z
  .looseObject({
    ...messagesFields,
    max_tokens: z.number().int().positive().max(1_000_000),
    stop_sequences: z.array(z.string().min(1).max(1000)).max(16).optional(),
    stream: z.boolean().optional(),
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().min(0).max(1).optional(),
    top_k: z.number().int().nonnegative().optional(),
  })
  .meta({ id: "AnthropicMessagesRequest" });
export type MessagesRequest = z.infer<typeof MessagesRequestSchema>;

export const CountTokensRequestSchema = z
  .looseObject(messagesFields)
  .meta({ id: "AnthropicCountTokensRequest" });
export type CountTokensRequest = z.infer<typeof CountTokensRequestSchema>;

// ---- answers ----

export const StopReasonSchema = z.enum(["end_turn", "max_tokens", "stop_sequence", "tool_use"]);
export type StopReason = z.infer<typeof StopReasonSchema>;

const OutputBlockSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("text"), text: z.string() }),
  z.object({
    type: z.literal("tool_use"),
    id: z.string(),
    name: z.string(),
    input: z.record(z.string(), z.unknown()),
  }),
]);
export type OutputBlock = z.infer<typeof OutputBlockSchema>;

export const AnthropicUsageSchema = z.looseObject({
  input_tokens: z.number().int(),
  output_tokens: z.number().int(),
  cache_creation_input_tokens: z.number().int().nullable().optional(),
  cache_read_input_tokens: z.number().int().nullable().optional(),
});

export const MessageSchema = z
  .looseObject({
    id: z.string(),
    type: z.literal("message"),
    role: z.literal("assistant"),
    model: z.string(),
    content: z.array(OutputBlockSchema),
    stop_reason: StopReasonSchema.nullable(),
    stop_sequence: z.string().nullable(),
    usage: AnthropicUsageSchema,
  })
  .meta({ id: "AnthropicMessage" });
export type Message = z.infer<typeof MessageSchema>;

export const CountTokensResponseSchema = z
  .object({ input_tokens: z.number().int() })
  .meta({ id: "AnthropicCountTokens" });

export const AnthropicErrorSchema = z
  .looseObject({
    type: z.literal("error"),
    error: z.looseObject({ type: z.string(), message: z.string() }),
  })
  .meta({ id: "AnthropicError" });

/** With `stream: true`: Anthropic's Server-Sent Events, then our payment and change events. */
export const MessageStreamSchema = z.string().meta({
  id: "AnthropicMessageStream",
  description:
    'Server-Sent Events as Anthropic documents them: `message_start`, `ping`, per content block `content_block_start` / `content_block_delta` (`text_delta`, `input_json_delta`) / `content_block_stop`, `message_delta` (stop_reason, usage), `message_stop`. Then `event: owlrun_payment` (the receipt) and, when paid with X-Cashu, `event: cashu_change` `{"type":"cashu_change","token":"cashuB…","change_sats":N}`; Anthropic clients ignore event types they do not know.',
});
