/**
 * Some OpenAI-compatible servers answer a streamed request with one `chat.completion` object. The
 * attempt counts what it relays delta by delta, so the answer is replayed as the stream it stands
 * for: the text in word-sized deltas (about a token each: the gateway's count then stays within
 * the usual tolerance of an honest usage report), each tool call whole (as Ollama sends them), the
 * finish reason, and the usage chunk.
 */

/** Text pieces of about a token: a word with the whitespace before it. */
function pieces(text: string): string[] {
  return text.match(/\s*\S+|\s+$/g) ?? [];
}

/** The answer as SSE text, or undefined when it is not a chat completion. */
export function jsonAnswerAsSse(text: string): string | undefined {
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    return undefined;
  }
  const a = answer as {
    id?: unknown;
    created?: unknown;
    model?: unknown;
    choices?: unknown;
    usage?: unknown;
    error?: unknown;
  };
  if (typeof a !== "object" || a === null) return undefined;
  // An error object goes through as a chunk: the attempt reads it as the backend's error.
  if (a.error !== undefined) return `data: ${JSON.stringify({ error: a.error })}\n\n`;
  if (!Array.isArray(a.choices)) return undefined;
  const head = {
    ...(typeof a.id === "string" ? { id: a.id } : {}),
    object: "chat.completion.chunk",
    ...(typeof a.created === "number" ? { created: a.created } : {}),
    ...(typeof a.model === "string" ? { model: a.model } : {}),
  };
  const lines: string[] = [];
  const chunk = (index: number, delta: Record<string, unknown>, finish: unknown = null) =>
    lines.push(
      `data: ${JSON.stringify({ ...head, choices: [{ index, delta, finish_reason: finish }] })}\n\n`,
    );
  for (const [i, c] of (a.choices as unknown[]).entries()) {
    const choice = c as { index?: unknown; message?: Record<string, unknown>; finish_reason?: unknown };
    const index = typeof choice?.index === "number" ? choice.index : i;
    const message = choice?.message ?? {};
    if (typeof message.reasoning_content === "string") {
      for (const p of pieces(message.reasoning_content)) chunk(index, { reasoning_content: p });
    }
    if (typeof message.content === "string") {
      for (const p of pieces(message.content)) chunk(index, { content: p });
    }
    if (Array.isArray(message.tool_calls)) {
      message.tool_calls.forEach((call, n) =>
        chunk(index, { tool_calls: [{ index: n, ...(call as object) }] }),
      );
    }
    chunk(index, {}, typeof choice?.finish_reason === "string" ? choice.finish_reason : "stop");
  }
  if (typeof a.usage === "object" && a.usage !== null) {
    lines.push(`data: ${JSON.stringify({ ...head, choices: [], usage: a.usage })}\n\n`);
  }
  lines.push("data: [DONE]\n\n");
  return lines.join("");
}
