/**
 * Server-sent events from `fetch`: yields each `data:` payload as parsed JSON (or "[DONE]").
 * Reads to the end of the stream: the `cashu_change` event is the last one (it also carries the usage).
 */
export async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<unknown> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    buffer += decoder.decode(value, { stream: !done });
    const events = buffer.split(/\r?\n\r?\n/);
    buffer = done ? "" : (events.pop() ?? "");
    for (const event of events) {
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trimStart())
        .join("\n");
      if (!data) continue;
      if (data === "[DONE]") yield data;
      else {
        try {
          yield JSON.parse(data);
        } catch {
          // not JSON: not one of ours, skip it
        }
      }
    }
    if (done) return;
  }
}
