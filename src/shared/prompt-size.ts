/**
 * The most tokens a prompt can count as, from its size: UTF-8 bytes of the serialized messages / 2
 * (a token is rarely under 2 bytes of JSON; CJK takes 3 bytes for 1–2 tokens) plus what a chat
 * template adds (a default system prompt and markers, and a header per message). The gateway bills
 * a node's prompt report up to this bound, and quotes, holds and the MCP chat tool price a request
 * with the same number, so nothing is ever charged above its quote.
 */
export const TEMPLATE_TOKENS = 32;
export const TEMPLATE_TOKENS_PER_MESSAGE = 8;

/** The instructions a template wraps tool definitions in ("# Tools … <tools></tools> …", Qwen ~100). */
export const TOOLS_TEMPLATE_TOKENS = 128;

/**
 * `messages` (chat) or the prompt (completions), as the request carries it, and the request's tool
 * definitions, which the chat template renders into the prompt.
 */
export function promptTokenBound(messagesOrPrompt: unknown, tools?: unknown): number {
  const bytes = Buffer.byteLength(JSON.stringify(messagesOrPrompt ?? ""), "utf8");
  const messages = Array.isArray(messagesOrPrompt) ? messagesOrPrompt.length : 1;
  const withTools = Array.isArray(tools) && tools.length > 0;
  const toolBytes = withTools ? Buffer.byteLength(JSON.stringify(tools), "utf8") : 0;
  return (
    Math.ceil((bytes + toolBytes) / 2) +
    TEMPLATE_TOKENS +
    TEMPLATE_TOKENS_PER_MESSAGE * messages +
    (withTools ? TOOLS_TEMPLATE_TOKENS : 0)
  );
}
