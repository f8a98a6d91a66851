/**
 * What a provider node needs from an inference backend (Ollama, the embedded llama.cpp, …): its
 * models, and OpenAI-shaped streams. `chat()` and `complete()` take an OpenAI request body and yield
 * OpenAI stream chunks: content chunks, one chunk with `finish_reason`, then a `choices: []` chunk
 * carrying `usage` (always, also after an abort, when the backend knows the counts).
 */
import { randomUUID } from "node:crypto";

export type FinishReason = "stop" | "length" | "tool_calls";

/** One whole tool call as a streamed OpenAI fragment (backends that parse calls send them whole). */
export interface ToolCallChunk {
  index: number;
  id: string;
  type: "function";
  function: { name: string; arguments: string };
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ChatChunk {
  id: string;
  object: "chat.completion.chunk";
  created: number;
  model: string;
  choices: {
    index: number;
    delta: {
      role?: "assistant";
      content?: string;
      reasoning_content?: string;
      tool_calls?: ToolCallChunk[];
    };
    finish_reason: FinishReason | null;
  }[];
  usage?: Usage;
}

export interface CompletionChunk {
  id: string;
  object: "text_completion";
  created: number;
  model: string;
  choices: { index: number; text: string; logprobs: null; finish_reason: FinishReason | null }[];
  usage?: Usage;
}

export type Chunk = ChatChunk | CompletionChunk;

export interface ChatMessage {
  role: string;
  content: string;
}

/** The OpenAI request fields backends read; anything else is carried along and ignored. */
export interface GenerationParams {
  model: string;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  seed?: number;
  stop?: string | string[];
  [field: string]: unknown;
}

export interface ChatRequest extends GenerationParams {
  messages: unknown[];
}

export interface CompletionRequest extends GenerationParams {
  prompt: string | string[];
}

/** An OpenAI embeddings request as a node pulls it (texts only). */
export interface EmbeddingRequest {
  model: string;
  input: string | string[];
  dimensions?: number;
  [field: string]: unknown;
}

/** One vector per input, in order, and the input tokens the backend spent. */
export interface EmbeddingResult {
  vectors: number[][];
  promptTokens: number;
}

export interface Backend {
  /** "ollama", "embedded", … */
  readonly name: string;
  /** model ids (Ollama tags) served right now; cheap, callers may ask often */
  listModels(): Promise<string[]>;
  /** models it embeds with (announced as `embedding_models`); absent = no embeddings */
  listEmbeddingModels?(): Promise<string[]>;
  /** embeds the inputs (OpenAI `/v1/embeddings` semantics) */
  embed?(body: EmbeddingRequest, signal: AbortSignal): Promise<EmbeddingResult>;
  chat(body: ChatRequest, signal: AbortSignal): AsyncIterable<ChatChunk>;
  complete(body: CompletionRequest, signal: AbortSignal): AsyncIterable<CompletionChunk>;
  close(): Promise<void>;
}

export class BackendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BackendError";
  }
}

/** Message contents as plain text (multi-part contents keep their text parts). */
export function messagesOf(body: { messages?: unknown }): ChatMessage[] {
  const raw = Array.isArray(body.messages) ? (body.messages as unknown[]) : [];
  return raw.map((m) => {
    const { role, content } = (typeof m === "object" && m !== null ? m : {}) as {
      role?: unknown;
      content?: unknown;
    };
    return {
      role: typeof role === "string" ? role : "user",
      content:
        typeof content === "string"
          ? content
          : Array.isArray(content)
            ? content.map((p: { text?: unknown }) => (typeof p?.text === "string" ? p.text : "")).join("")
            : "",
    };
  });
}

export function promptOf(body: { prompt?: unknown }): string {
  return Array.isArray(body.prompt) ? body.prompt.map(String).join("\n") : String(body.prompt ?? "");
}

export function stopsOf(body: { stop?: unknown }): string[] {
  const s = body.stop;
  const list = typeof s === "string" ? [s] : Array.isArray(s) ? s : [];
  return list.filter((x): x is string => typeof x === "string" && x !== "").slice(0, 4);
}

/** A positive integer max_tokens from the body, else undefined. */
export function maxTokensOf(body: { max_tokens?: unknown }): number | undefined {
  const n = body.max_tokens;
  return typeof n === "number" && Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

export const usageOf = (prompt: number, completion: number): Usage => ({
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
});

type ChunkOf<K extends "chat" | "completions"> = K extends "chat" ? ChatChunk : CompletionChunk;

/**
 * Builds the OpenAI chunks of one response: a backend pushes text pieces and ends with the counts.
 * `kind` picks chat (`chat.completion.chunk`, first chunk carries the role) or legacy completions.
 */
export class ChunkFactory<K extends "chat" | "completions"> {
  readonly id: string;
  readonly created = Math.floor(Date.now() / 1000);

  constructor(
    readonly kind: K,
    readonly model: string,
  ) {
    this.id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomUUID().replaceAll("-", "").slice(0, 24)}`;
  }

  private make(
    choice: { text?: string; delta?: ChatChunk["choices"][number]["delta"] },
    finish: FinishReason | null,
  ) {
    const base = { id: this.id, created: this.created, model: this.model };
    const chunk: Chunk =
      this.kind === "chat"
        ? {
            ...base,
            object: "chat.completion.chunk",
            choices: [{ index: 0, delta: choice.delta ?? {}, finish_reason: finish }],
          }
        : {
            ...base,
            object: "text_completion",
            choices: [{ index: 0, text: choice.text ?? "", logprobs: null, finish_reason: finish }],
          };
    return chunk as ChunkOf<K>;
  }

  /** Chat only: the opening chunk with the assistant role and empty content. */
  role(): ChunkOf<K> {
    return this.make({ delta: { role: "assistant", content: "" } }, null);
  }

  text(text: string, field: "content" | "reasoning_content" = "content"): ChunkOf<K> {
    return this.make({ text, delta: { [field]: text } }, null);
  }

  /** Chat only: whole tool calls in one delta (as Ollama's OpenAI endpoint sends them). */
  toolCalls(calls: ToolCallChunk[]): ChunkOf<K> {
    return this.make({ delta: { tool_calls: calls } }, null);
  }

  finish(reason: FinishReason): ChunkOf<K> {
    return this.make({}, reason);
  }

  usage(promptTokens: number, completionTokens: number): ChunkOf<K> {
    const chunk = this.make({}, null);
    chunk.choices = [];
    chunk.usage = usageOf(promptTokens, completionTokens);
    return chunk;
  }
}

/** A push → pull bridge: callbacks push items, the consumer iterates them. */
export class EventQueue<T> {
  private items: T[] = [];
  private done = false;
  private error?: unknown;
  private wake?: () => void;

  push(item: T): void {
    this.items.push(item);
    this.wake?.();
  }

  end(error?: unknown): void {
    this.done = true;
    this.error = error;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      while (this.items.length) yield this.items.shift()!;
      if (this.done) {
        if (this.error) throw this.error;
        return;
      }
      await new Promise<void>((r) => (this.wake = r));
      this.wake = undefined;
    }
  }
}
