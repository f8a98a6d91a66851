/** What a provider node needs from an inference backend (Ollama, or the embedded llama.cpp). */
export interface GenerateRequest {
  kind: "chat" | "completions";
  /** the buyer's OpenAI request body */
  body: Record<string, unknown>;
  maxTokens: number;
  signal: AbortSignal;
}

export type BackendEvent =
  | { type: "text"; text: string }
  | {
      type: "done";
      promptTokens: number;
      completionTokens: number;
      finishReason: "stop" | "length" | "cancelled";
    };

export interface Backend {
  readonly name: string;
  models(): Promise<string[]>;
  generate(req: GenerateRequest): AsyncIterable<BackendEvent>;
  close(): Promise<void>;
}

export class BackendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BackendError";
  }
}

export interface ChatMessage {
  role: string;
  content: string;
}

/** Message contents as plain text (multi-part contents keep their text parts). */
export function messagesOf(body: Record<string, unknown>): ChatMessage[] {
  const raw = Array.isArray(body.messages) ? body.messages : [];
  return raw.map((m: { role?: unknown; content?: unknown }) => ({
    role: String(m.role ?? "user"),
    content:
      typeof m.content === "string"
        ? m.content
        : Array.isArray(m.content)
          ? m.content.map((p: { text?: unknown }) => (typeof p?.text === "string" ? p.text : "")).join("")
          : "",
  }));
}

export function promptOf(body: Record<string, unknown>): string {
  return Array.isArray(body.prompt) ? body.prompt.join("\n") : String(body.prompt ?? "");
}

/** A push → pull bridge: callbacks push events, the consumer iterates them. */
export class EventQueue<T> {
  private items: T[] = [];
  private done = false;
  private error?: unknown;
  private wake?: () => void;
  push(item: T) {
    this.items.push(item);
    this.wake?.();
  }
  end(error?: unknown) {
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
