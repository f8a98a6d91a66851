/**
 * Builds a Responses API answer from the provider's chat-completion chunks: output items (a message
 * with output_text, function calls from `delta.tool_calls` fragments) and, for streams, the
 * documented `response.*` events in order, each with its sequence number. The same builder serves
 * the non-streaming answer (events are then simply not written).
 */
import { randomBytes } from "node:crypto";
import type { StreamChunk, ToolCallDelta } from "../../routing/types.js";
import type { ResponsesRequest } from "./schemas.js";

export type ResponseEvent = Record<string, unknown> & { type: string };

const rid = (prefix: string) => `${prefix}_${randomBytes(16).toString("hex")}`;

interface MessageItem {
  type: "message";
  id: string;
  status: string;
  role: "assistant";
  content: { type: "output_text"; text: string; annotations: unknown[] }[];
}

interface FunctionItem {
  type: "function_call";
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: string;
}

type Item = MessageItem | FunctionItem;

export interface FinalState {
  status: "completed" | "incomplete" | "failed";
  usage: Record<string, unknown> | null;
  error?: { code: string; message: string };
  extra?: Record<string, unknown>;
}

export class ResponseBuilder {
  readonly id = rid("resp");
  readonly createdAt = Math.floor(Date.now() / 1000);
  readonly output: Item[] = [];
  private seq = 0;
  private message?: MessageItem;
  /** open function calls by their chat `tool_calls[].index` */
  private readonly calls = new Map<number, { item: FunctionItem; index: number }>();
  finishReason: string | null = null;

  constructor(
    private readonly request: ResponsesRequest,
    readonly model: string,
    /** where events go (a stream writes them; a JSON answer drops them) */
    private readonly emit: (event: ResponseEvent) => void = () => undefined,
  ) {}

  /** anything delivered at all (text or a call) */
  get empty(): boolean {
    return this.output.length === 0;
  }

  private event(type: string, fields: Record<string, unknown>): void {
    this.emit({ type, sequence_number: this.seq++, ...fields });
  }

  /** The response object in its current state. */
  snapshot(state: Omit<Partial<FinalState>, "status"> & { status: string }): Record<string, unknown> {
    const r = this.request;
    return {
      id: this.id,
      object: "response",
      created_at: this.createdAt,
      status: state.status,
      background: false,
      error: state.error ?? null,
      incomplete_details: state.status === "incomplete" ? { reason: "max_output_tokens" } : null,
      instructions: r.instructions ?? null,
      max_output_tokens: r.max_output_tokens ?? null,
      model: this.model,
      output: state.status === "in_progress" ? [] : structuredClone(this.output),
      parallel_tool_calls: r.parallel_tool_calls ?? true,
      previous_response_id: null,
      reasoning: { effort: null, summary: null },
      store: false,
      temperature: r.temperature ?? 1,
      text: { format: r.text?.format ?? { type: "text" } },
      tool_choice: r.tool_choice ?? "auto",
      tools: r.tools ?? [],
      top_p: r.top_p ?? 1,
      truncation: "disabled",
      usage: state.usage ?? null,
      user: null,
      metadata: r.metadata ?? {},
      ...state.extra,
    };
  }

  start(): void {
    this.event("response.created", { response: this.snapshot({ status: "in_progress" }) });
    this.event("response.in_progress", { response: this.snapshot({ status: "in_progress" }) });
  }

  add(chunk: StreamChunk): void {
    for (const choice of chunk.choices ?? []) {
      if ((choice.index ?? 0) !== 0) continue; // one choice: the node body asks for one
      const text = choice.delta?.content ?? choice.text ?? "";
      if (text) this.text(text);
      for (const frag of choice.delta?.tool_calls ?? []) this.toolFragment(frag);
      if (choice.finish_reason) this.finishReason = choice.finish_reason;
    }
  }

  private text(delta: string): void {
    if (!this.message) {
      const item: MessageItem = {
        type: "message",
        id: rid("msg"),
        status: "in_progress",
        role: "assistant",
        content: [],
      };
      this.output.push(item);
      this.message = item;
      const output_index = this.output.length - 1;
      this.event("response.output_item.added", { output_index, item: structuredClone(item) });
      item.content.push({ type: "output_text", text: "", annotations: [] });
      this.event("response.content_part.added", {
        item_id: item.id,
        output_index,
        content_index: 0,
        part: { type: "output_text", text: "", annotations: [] },
      });
    }
    const item = this.message;
    item.content[0]!.text += delta;
    this.event("response.output_text.delta", {
      item_id: item.id,
      output_index: this.output.indexOf(item),
      content_index: 0,
      delta,
      logprobs: [],
    });
  }

  private closeMessage(): void {
    const item = this.message;
    if (!item) return;
    this.message = undefined;
    const output_index = this.output.indexOf(item);
    const part = item.content[0]!;
    item.status = "completed";
    this.event("response.output_text.done", {
      item_id: item.id,
      output_index,
      content_index: 0,
      text: part.text,
      logprobs: [],
    });
    this.event("response.content_part.done", {
      item_id: item.id,
      output_index,
      content_index: 0,
      part: structuredClone(part),
    });
    this.event("response.output_item.done", { output_index, item: structuredClone(item) });
  }

  private toolFragment(frag: ToolCallDelta): void {
    const key = typeof frag.index === "number" ? frag.index : this.calls.size;
    let open = this.calls.get(key);
    if (!open) {
      this.closeMessage(); // text before a call is its own item
      const item: FunctionItem = {
        type: "function_call",
        id: rid("fc"),
        call_id: frag.id || rid("call"),
        name: frag.function?.name ?? "",
        arguments: "",
        status: "in_progress",
      };
      this.output.push(item);
      open = { item, index: this.output.length - 1 };
      this.calls.set(key, open);
      this.event("response.output_item.added", { output_index: open.index, item: structuredClone(item) });
    } else if (frag.function?.name && !open.item.name) {
      open.item.name = frag.function.name;
    }
    const delta = frag.function?.arguments ?? "";
    if (delta) {
      open.item.arguments += delta;
      this.event("response.function_call_arguments.delta", {
        item_id: open.item.id,
        output_index: open.index,
        delta,
      });
    }
  }

  /** Closes every open item (message first, then the calls in order). */
  closeItems(): void {
    this.closeMessage();
    for (const { item, index } of this.calls.values()) {
      item.status = "completed";
      this.event("response.function_call_arguments.done", {
        item_id: item.id,
        output_index: index,
        name: item.name,
        arguments: item.arguments,
      });
      this.event("response.output_item.done", { output_index: index, item: structuredClone(item) });
    }
    this.calls.clear();
  }

  /** The last lifecycle event (completed / incomplete / failed); returns the final object. */
  finish(state: FinalState): Record<string, unknown> {
    this.closeItems();
    const response = this.snapshot(state);
    this.event(`response.${state.status}`, { response });
    return response;
  }
}
