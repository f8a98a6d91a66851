/**
 * Anthropic Messages ⇄ the OpenAI chat body providers serve. `tool_use` blocks become assistant
 * `tool_calls` (input → JSON `arguments`), `tool_result` blocks become `role: "tool"` messages, the
 * system prompt a system message, `stop_sequences` → `stop`, `tool_choice` any → required. Back,
 * provider tool calls become `tool_use` blocks and finish reasons Anthropic's stop reasons.
 */
import { randomBytes } from "node:crypto";
import type { ErrorRenderer } from "../errors.js";
import { ApiError } from "../errors.js";
import type { ToolCall } from "../tools.js";
import type {
  ContentBlock,
  CountTokensRequest,
  MessagesRequest,
  OutputBlock,
  StopReason,
} from "./schemas.js";

type OpenAiMessage = Record<string, unknown>;

const refuse = (message: string) => new ApiError(400, "invalid_request", message);

const MEDIA = new Set(["image", "document"]);

function mediaRefusal(type: string): ApiError {
  return refuse(
    `${type} content blocks are not supported: the models served here take text only (send the ${type} as text, or leave it out)`,
  );
}

/** The text of a tool result's content (string or text blocks). */
function resultText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((b: { type?: string; text?: string }) => {
      if (b.type && MEDIA.has(b.type)) throw mediaRefusal(b.type);
      return typeof b.text === "string" ? b.text : "";
    })
    .join("\n");
}

function userMessages(content: string | ContentBlock[]): OpenAiMessage[] {
  if (typeof content === "string") return [{ role: "user", content }];
  const out: OpenAiMessage[] = [];
  const text: string[] = [];
  for (const block of content) {
    if (MEDIA.has(block.type)) throw mediaRefusal(block.type);
    if (block.type === "tool_result") {
      const body = resultText(block.content);
      // Tool answers come first in OpenAI's order: right after the assistant's calls.
      out.push({
        role: "tool",
        tool_call_id: block.tool_use_id,
        content: block.is_error ? `Error: ${body}` : body,
      });
    } else if (block.type === "text") text.push(block.text);
  }
  if (text.length > 0) out.push({ role: "user", content: text.join("\n") });
  return out;
}

function systemText(content: string | ContentBlock[]): string {
  if (typeof content === "string") return content;
  return content
    .map((b) => {
      if (MEDIA.has(b.type)) throw mediaRefusal(b.type);
      return b.type === "text" ? b.text : "";
    })
    .join("\n");
}

function assistantMessage(content: string | ContentBlock[]): OpenAiMessage {
  if (typeof content === "string") return { role: "assistant", content };
  const text: string[] = [];
  const calls: ToolCall[] = [];
  for (const block of content) {
    if (MEDIA.has(block.type)) throw mediaRefusal(block.type);
    if (block.type === "text") text.push(block.text);
    else if (block.type === "tool_use") {
      calls.push({
        id: block.id,
        type: "function",
        function: { name: block.name, arguments: JSON.stringify(block.input ?? {}) },
      });
    }
    // thinking blocks are the model's own scratchpad: not replayed to another model
  }
  return {
    role: "assistant",
    content: text.length > 0 ? text.join("\n") : calls.length > 0 ? null : "",
    ...(calls.length > 0 ? { tool_calls: calls } : {}),
  };
}

/** The system prompt, the conversation and the tools in OpenAI form (also what count_tokens counts). */
export function openAiConversation(req: CountTokensRequest): {
  messages: OpenAiMessage[];
  tools?: unknown[];
  tool_choice?: unknown;
  parallel_tool_calls?: boolean;
} {
  const messages: OpenAiMessage[] = [];
  const system = typeof req.system === "string" ? req.system : req.system?.map((b) => b.text).join("\n\n");
  if (system) messages.push({ role: "system", content: system });
  for (const m of req.messages) {
    if (m.role === "user") messages.push(...userMessages(m.content));
    else if (m.role === "system") messages.push({ role: "system", content: systemText(m.content) });
    else messages.push(assistantMessage(m.content));
  }
  const tools = req.tools?.map((t) => {
    if (t.type !== undefined && t.type !== "custom")
      throw refuse(`tool type ${t.type} is not supported: only client tools (name, input_schema) are`);
    return {
      type: "function",
      function: {
        name: t.name,
        ...(t.description !== undefined ? { description: t.description } : {}),
        parameters: t.input_schema ?? { type: "object", properties: {} },
      },
    };
  });
  const choice = req.tool_choice;
  const toolChoice =
    choice === undefined
      ? undefined
      : choice.type === "any"
        ? "required"
        : choice.type === "tool"
          ? (() => {
              if (!choice.name) throw refuse("tool_choice.name: required when tool_choice.type is tool");
              return { type: "function", function: { name: choice.name } };
            })()
          : choice.type;
  return {
    messages,
    ...(tools?.length ? { tools } : {}),
    ...(tools?.length && toolChoice !== undefined ? { tool_choice: toolChoice } : {}),
    ...(choice?.disable_parallel_tool_use ? { parallel_tool_calls: false } : {}),
  };
}

/** The OpenAI chat body the paid pipeline validates, bills and sends to a provider. */
export function openAiBody(req: MessagesRequest, model: string): Record<string, unknown> {
  return {
    model,
    stream: req.stream === true,
    max_tokens: req.max_tokens,
    ...openAiConversation(req),
    ...(req.stop_sequences?.length ? { stop: req.stop_sequences } : {}),
    ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
    ...(req.top_p !== undefined ? { top_p: req.top_p } : {}),
  };
}

/** Anthropic's stop reason for a provider's finish reason (and whether it called tools). */
export function stopReason(finish: string | null | undefined, calledTools: boolean): StopReason {
  if (finish === "length") return "max_tokens";
  if (calledTools || finish === "tool_calls") return "tool_use";
  return "end_turn";
}

const ID_CHARS = /^[A-Za-z0-9_-]{1,200}$/;

/** A tool_use id: the provider's own when Anthropic's pattern allows it, else a fresh `toolu_…`. */
export function toolUseId(providerId: string | undefined): string {
  return providerId && ID_CHARS.test(providerId) ? providerId : `toolu_${randomBytes(12).toString("hex")}`;
}

export const messageId = () => `msg_${randomBytes(12).toString("hex")}`;

/** A tool call's arguments as the `input` object Anthropic promises (not an object: wrapped). */
export function toolInput(args: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(args === "" ? "{}" : args);
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // the model wrote something that is not JSON: hand it over as is
  }
  return { _raw: args };
}

export function outputBlocks(text: string, calls: readonly ToolCall[]): OutputBlock[] {
  return [
    ...(text !== "" ? [{ type: "text" as const, text }] : []),
    ...calls.map((c) => ({
      type: "tool_use" as const,
      id: toolUseId(c.id),
      name: c.function.name,
      input: toolInput(c.function.arguments),
    })),
  ];
}

/** Anthropic's error type for a status (their documented set; 402 is `billing_error`). */
export function anthropicErrorType(status: number): string {
  switch (status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 402:
      return "billing_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 413:
      return "request_too_large";
    case 429:
      return "rate_limit_error";
    case 503:
    case 529:
      return "overloaded_error";
    default:
      return "api_error";
  }
}

/** `{"type":"error","error":{"type","message"}}`, plus our stable word and payment details. */
export const anthropicError: ErrorRenderer = (status, type, message, extra) => ({
  type: "error",
  error: { type: anthropicErrorType(status), message, owlrun_type: type, ...extra },
});
