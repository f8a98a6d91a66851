/**
 * Tool calls in relayed streams: providers stream them as OpenAI `delta.tool_calls` fragments (the
 * first fragment of a call carries its id and name, later ones append to `arguments`; Ollama sends a
 * call whole in one delta). Streaming answers relay the fragments as they are; non-streaming answers
 * and the other APIs (Ollama, Anthropic) need each call whole, which this assembles byte for byte.
 */
import type { StreamChunk, ToolCallDelta } from "../routing/types.js";

export interface ToolCall {
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

/** Calls a model may make in one answer; more is a runaway or hostile provider. */
const MAX_TOOL_CALLS = 128;

/** Assembles streamed tool-call fragments into whole calls, in the order of their `index`. */
export class ToolCallCollector {
  private readonly byIndex = new Map<number, ToolCall>();
  private lastIndex = -1;

  /** Adds one delta's fragments; returns the calls that this delta opened (for stream translators). */
  add(deltas: readonly ToolCallDelta[] | undefined): { index: number; call: ToolCall; fragment: string }[] {
    const seen: { index: number; call: ToolCall; fragment: string }[] = [];
    if (!Array.isArray(deltas)) return seen;
    for (const d of deltas) {
      if (typeof d !== "object" || d === null) continue;
      // A fragment without an index continues the last call, or opens the first.
      let index = Number.isSafeInteger(d.index) && (d.index as number) >= 0 ? (d.index as number) : undefined;
      if (index === undefined) index = d.id || this.lastIndex < 0 ? this.lastIndex + 1 : this.lastIndex;
      let call = this.byIndex.get(index);
      if (!call) {
        if (this.byIndex.size >= MAX_TOOL_CALLS) continue;
        call = {
          id: typeof d.id === "string" && d.id !== "" ? d.id : `call_${index}`,
          type: "function",
          function: { name: "", arguments: "" },
        };
        this.byIndex.set(index, call);
      }
      this.lastIndex = index;
      if (typeof d.function?.name === "string") call.function.name += d.function.name;
      const fragment = typeof d.function?.arguments === "string" ? d.function.arguments : "";
      call.function.arguments += fragment;
      seen.push({ index, call, fragment });
    }
    return seen;
  }

  get calls(): ToolCall[] {
    return [...this.byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => c);
  }
}

/** The tool-call fragments of a chunk's first choice (our jobs always ask for one choice). */
export function toolDeltas(chunk: StreamChunk): ToolCallDelta[] | undefined {
  const calls = chunk.choices?.[0]?.delta?.tool_calls;
  return Array.isArray(calls) && calls.length > 0 ? calls : undefined;
}

/** True when a streamed choice carries something the client must see. */
export function choiceCarries(c: NonNullable<StreamChunk["choices"]>[number]): boolean {
  return (
    (c.delta?.content ?? c.text ?? "") !== "" ||
    !!c.finish_reason ||
    !!c.delta?.role ||
    (Array.isArray(c.delta?.tool_calls) && c.delta.tool_calls.length > 0)
  );
}
