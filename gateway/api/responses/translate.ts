/**
 * A Responses API request as the chat-completions request every provider already serves: input
 * items become messages (function calls → assistant `tool_calls`, their outputs → `role: "tool"`),
 * `instructions` a leading system message, function tools and `tool_choice` the chat shapes,
 * `max_output_tokens` → `max_tokens`. What a provider cannot do is refused with a clear 400.
 */
import { ApiError } from "../errors.js";
import type { InputItem, ResponsesRequest } from "./schemas.js";

type ChatMessage = Record<string, unknown> & { role: string };
type Part = { type: string; text?: string; image_url?: string | null };

const refuse = (message: string) => new ApiError(400, "invalid_request", message);

/** A content list as chat content: plain text when it is all text, else chat parts (images). */
function contentOf(content: string | Part[], where: string): string | Record<string, unknown>[] {
  if (typeof content === "string") return content;
  const parts = content.map((p) => {
    if (p.type === "input_text" || p.type === "output_text" || p.type === "text") {
      return { type: "text", text: p.text ?? "" };
    }
    if (p.type === "input_image" && typeof p.image_url === "string") {
      return { type: "image_url", image_url: { url: p.image_url } };
    }
    throw refuse(`${where}: content parts of type ${p.type} are not supported here`);
  });
  return parts.every((p) => p.type === "text") ? parts.map((p) => p.text).join("") : parts;
}

/** Output of a function call as the tool message's text. */
const outputText = (output: string | Part[]) =>
  typeof output === "string" ? output : output.map((p) => p.text ?? "").join("");

function messagesOf(input: ResponsesRequest["input"]): ChatMessage[] {
  if (typeof input === "string") return [{ role: "user", content: input }];
  const out: ChatMessage[] = [];
  input.forEach((raw, i) => {
    const item = raw as InputItem & Record<string, unknown>;
    const where = `input[${i}]`;
    if (item.type === "reasoning") return;
    if (item.type === "function_call") {
      const call = {
        id: item.call_id,
        type: "function",
        function: { name: item.name, arguments: item.arguments },
      };
      // A message and the calls right after it (parallel tool calls) are one assistant turn.
      const last = out.at(-1);
      if (last?.role === "assistant") {
        last.tool_calls = [...((last.tool_calls as unknown[]) ?? []), call];
      } else {
        out.push({ role: "assistant", content: "", tool_calls: [call] });
      }
      return;
    }
    if (item.type === "function_call_output") {
      out.push({
        role: "tool",
        tool_call_id: item.call_id,
        content: outputText(item.output as string | Part[]),
      });
      return;
    }
    const m = item as { role: string; content: string | Part[] };
    out.push({ role: m.role, content: contentOf(m.content, where) });
  });
  return out;
}

function toolsOf(tools: ResponsesRequest["tools"]) {
  if (!tools?.length) return undefined;
  return tools.map((t, i) => {
    if (t.type !== "function") {
      throw refuse(`tools[${i}]: only function tools are served here (got ${t.type})`);
    }
    if (!t.name) throw refuse(`tools[${i}]: a function tool needs a name`);
    return {
      type: "function",
      function: {
        name: t.name,
        ...(t.description ? { description: t.description } : {}),
        parameters: t.parameters ?? { type: "object", properties: {} },
        ...(typeof t.strict === "boolean" ? { strict: t.strict } : {}),
      },
    };
  });
}

function toolChoiceOf(choice: ResponsesRequest["tool_choice"]) {
  if (choice === undefined || typeof choice === "string") return choice;
  if (choice.type === "function" && choice.name) {
    return { type: "function", function: { name: choice.name } };
  }
  throw refuse(`tool_choice: ${choice.type} is not supported here; use auto, none, required or a function`);
}

function responseFormatOf(text: ResponsesRequest["text"]) {
  const f = text?.format;
  if (!f || f.type === "text") return undefined;
  if (f.type === "json_object") return { type: "json_object" };
  if (f.type === "json_schema") {
    return {
      type: "json_schema",
      json_schema: {
        name: f.name ?? "response",
        ...(f.schema ? { schema: f.schema } : {}),
        ...(typeof f.strict === "boolean" ? { strict: f.strict } : {}),
      },
    };
  }
  throw refuse(`text.format: ${f.type} is not supported`);
}

/** The chat-completions body the payment pipeline validates, bills and dispatches. */
export function toChatRequest(r: ResponsesRequest): Record<string, unknown> {
  if (r.previous_response_id) {
    throw refuse("previous_response_id: responses are not stored here; send the whole conversation in input");
  }
  const messages = messagesOf(r.input);
  if (r.instructions) messages.unshift({ role: "system", content: r.instructions });
  if (messages.length === 0) throw refuse("input: nothing to answer");
  const tools = toolsOf(r.tools);
  const toolChoice = toolChoiceOf(r.tool_choice);
  const format = responseFormatOf(r.text);
  return {
    model: r.model,
    messages,
    stream: r.stream === true,
    ...(tools ? { tools } : {}),
    ...(toolChoice !== undefined ? { tool_choice: toolChoice } : {}),
    ...(typeof r.parallel_tool_calls === "boolean" ? { parallel_tool_calls: r.parallel_tool_calls } : {}),
    ...(r.max_output_tokens ? { max_tokens: r.max_output_tokens } : {}),
    ...(typeof r.temperature === "number" ? { temperature: r.temperature } : {}),
    ...(typeof r.top_p === "number" ? { top_p: r.top_p } : {}),
    ...(format ? { response_format: format } : {}),
    ...(r.provider ? { provider: r.provider } : {}),
    ...(r.models ? { models: r.models } : {}),
  };
}
