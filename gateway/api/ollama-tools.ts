/**
 * Tool calling on Ollama's `/api/chat`, translated to and from the OpenAI shape the providers speak.
 * Ollama's calls carry `arguments` as a JSON object and no ids; its `role: "tool"` messages name the
 * tool (`tool_name`) instead of a call id. Ids are made up here (`call_<n>`) and tool answers are
 * matched to the calls in order, by name when given.
 */
import type { ToolCall } from "./tools.js";

export interface OllamaToolCall {
  function: { name: string; arguments?: unknown };
}

interface OllamaMessage {
  role: string;
  content?: string | null;
  tool_calls?: OllamaToolCall[];
  tool_name?: string;
  [k: string]: unknown;
}

/** Ollama messages → OpenAI messages (assistant tool calls with ids, tool answers naming them). */
export function openAiMessages(messages: readonly OllamaMessage[]): Record<string, unknown>[] {
  let n = 0;
  // Calls made and not answered yet, oldest first.
  let open: { id: string; name: string }[] = [];
  return messages.map((m) => {
    const { tool_calls, tool_name, ...rest } = m;
    if (m.role === "assistant" && Array.isArray(tool_calls) && tool_calls.length > 0) {
      const calls = tool_calls.map((c) => ({
        id: `call_${n++}`,
        type: "function" as const,
        function: {
          name: c.function.name,
          arguments:
            typeof c.function.arguments === "string"
              ? c.function.arguments
              : JSON.stringify(c.function.arguments ?? {}),
        },
      }));
      open = calls.map((c) => ({ id: c.id, name: c.function.name }));
      return { ...rest, content: m.content ?? "", tool_calls: calls };
    }
    if (m.role === "tool") {
      const i = Math.max(
        0,
        open.findIndex((c) => tool_name === undefined || c.name === tool_name),
      );
      const answered = open.splice(i, 1)[0];
      return {
        ...rest,
        content: m.content ?? "",
        tool_call_id: answered?.id ?? `call_${n++}`,
        ...(tool_name !== undefined ? { name: tool_name } : {}),
      };
    }
    return { ...rest, content: m.content ?? "" };
  });
}

/** Whole OpenAI calls → Ollama's `message.tool_calls` (arguments parsed back into an object). */
export function ollamaToolCalls(calls: readonly ToolCall[]): OllamaToolCall[] {
  return calls.map((c) => {
    let args: unknown;
    try {
      args = JSON.parse(c.function.arguments === "" ? "{}" : c.function.arguments);
    } catch {
      args = c.function.arguments; // not JSON: hand over what the model wrote
    }
    return { function: { name: c.function.name, arguments: args } };
  });
}
