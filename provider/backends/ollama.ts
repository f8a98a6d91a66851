/**
 * Ollama through the official `ollama` npm client: models from /api/tags (refreshed periodically,
 * so freshly pulled models are offered), streaming /api/chat and /api/generate converted to OpenAI
 * chunks, abort, and usage from Ollama's own counts (prompt_eval_count / eval_count).
 */
import {
  type AbortableAsyncIterator,
  type ChatResponse,
  type GenerateResponse,
  type Message,
  Ollama,
  type Tool,
} from "ollama";
import type { Logger } from "../../src/shared/index.js";
import {
  type Backend,
  BackendError,
  type ChatChunk,
  ChunkFactory,
  type CompletionChunk,
  type GenerationParams,
  maxTokensOf,
  messagesOf,
  promptOf,
  stopsOf,
} from "./types.js";

export interface OllamaOptions {
  /** e.g. http://127.0.0.1:11434 */
  url: string;
  /** how often /api/tags is read again; default 60 s */
  refreshMs?: number;
  log: Logger;
}

export interface OllamaBackend extends Backend {
  readonly url: string;
  /** reads /api/tags now */
  refresh(): Promise<string[]>;
}

const ROLES = new Set(["system", "user", "assistant", "tool"]);

/**
 * OpenAI messages in Ollama's /api/chat form: assistant tool calls with their arguments as objects,
 * tool answers naming the tool they answer (Ollama matches by name, not by call id).
 */
export function ollamaMessages(body: { messages?: unknown }): Message[] {
  const raw = Array.isArray(body.messages) ? (body.messages as Record<string, unknown>[]) : [];
  const names = new Map<string, string>();
  return messagesOf(body).map((m, i) => {
    const src = (typeof raw[i] === "object" && raw[i] !== null ? raw[i] : {}) as {
      tool_calls?: { id?: string; function?: { name?: string; arguments?: string } }[];
      tool_call_id?: string;
    };
    const role = ROLES.has(m.role) ? m.role : m.role === "developer" ? "system" : "user";
    const out: Message = { role, content: m.content };
    if (role === "assistant" && Array.isArray(src.tool_calls) && src.tool_calls.length > 0) {
      out.tool_calls = src.tool_calls.map((c) => {
        const name = String(c.function?.name ?? "");
        if (c.id) names.set(c.id, name);
        let args: Record<string, unknown> = {};
        try {
          const v: unknown = JSON.parse(c.function?.arguments || "{}");
          if (typeof v === "object" && v !== null && !Array.isArray(v)) args = v as Record<string, unknown>;
        } catch {
          // not JSON: the model gets no arguments back rather than a failed request
        }
        return { function: { name, arguments: args } };
      });
    }
    if (role === "tool" && typeof src.tool_call_id === "string" && names.has(src.tool_call_id)) {
      out.tool_name = names.get(src.tool_call_id);
    }
    return out;
  });
}

export async function createOllamaBackend(opts: OllamaOptions): Promise<OllamaBackend> {
  const client = new Ollama({ host: opts.url });
  let models: string[] = [];
  /** model → what Ollama's /api/show capabilities say it does; asked once per model */
  const caps = new Map<string, { embed: boolean; chat: boolean }>();
  let warned = false;
  const capabilities = async (list: string[]) => {
    for (const model of list) {
      if (caps.has(model)) continue;
      try {
        const c = (await client.show({ model })).capabilities ?? [];
        caps.set(model, {
          embed: c.includes("embedding"),
          chat: !c.includes("embedding") || c.includes("completion"),
        });
      } catch {
        // an older Ollama without capabilities, or the model went away: ask again next time
      }
    }
  };
  const refresh = async () => {
    try {
      models = (await client.list()).models.map((m) => m.name).sort();
      await capabilities(models);
      warned = false;
    } catch (err) {
      if (!warned) opts.log.warn("could not list Ollama models", { url: opts.url, err: String(err) });
      warned = true;
    }
    return models;
  };
  await refresh();
  const timer = setInterval(() => void refresh(), opts.refreshMs ?? 60_000);
  timer.unref();
  opts.log.info("ollama backend ready", { url: opts.url, models });
  if (models.length === 0) opts.log.warn("Ollama has no models: pull one (`ollama pull qwen2.5:0.5b`)");

  const options = (body: GenerationParams) => {
    const stop = stopsOf(body);
    const max = maxTokensOf(body);
    return {
      ...(max !== undefined ? { num_predict: max } : {}),
      ...(typeof body.temperature === "number" ? { temperature: body.temperature } : {}),
      ...(typeof body.top_p === "number" ? { top_p: body.top_p } : {}),
      ...(typeof body.seed === "number" ? { seed: body.seed } : {}),
      ...(stop.length ? { stop } : {}),
    };
  };

  /** Relays one Ollama stream as OpenAI chunks; aborts it when `signal` fires or the reader stops. */
  async function* relay<K extends "chat" | "completions">(
    make: ChunkFactory<K>,
    start: () => Promise<AbortableAsyncIterator<ChatResponse | GenerateResponse>>,
    signal: AbortSignal,
  ) {
    if (make.kind === "chat") yield make.role();
    if (signal.aborted) {
      yield make.finish("stop");
      return;
    }
    const stream = await start();
    const onAbort = () => stream.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) stream.abort();
    let pieces = 0;
    let calls = 0;
    let done = false;
    try {
      for await (const part of stream) {
        const msg = "message" in part ? part.message : undefined;
        const thinking = msg ? msg.thinking : (part as GenerateResponse).thinking;
        const text = msg ? msg.content : (part as GenerateResponse).response;
        if (thinking && make.kind === "chat") {
          pieces++;
          yield make.text(thinking, "reasoning_content");
        }
        if (text) {
          pieces++;
          yield make.text(text);
        }
        if (msg?.tool_calls?.length && make.kind === "chat") {
          pieces++;
          yield make.toolCalls(
            msg.tool_calls.map((c) => ({
              index: calls,
              id: `call_${calls++}`,
              type: "function" as const,
              function: { name: c.function.name, arguments: JSON.stringify(c.function.arguments ?? {}) },
            })),
          );
        }
        if (part.done) {
          done = true;
          yield make.finish(part.done_reason === "length" ? "length" : calls > 0 ? "tool_calls" : "stop");
          yield make.usage(part.prompt_eval_count ?? 0, part.eval_count ?? pieces);
          return;
        }
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      signal.removeEventListener("abort", onAbort);
      if (!done) stream.abort();
    }
    // Aborted: Ollama sent no counts; one token per piece is what it streams.
    yield make.finish("stop");
    yield make.usage(0, pieces);
  }

  return {
    name: "ollama",
    url: opts.url,
    refresh,
    // Embedding-only models (nomic-embed-text, …) cannot chat: offered for embeddings only.
    listModels: async () => models.filter((m) => caps.get(m)?.chat !== false),
    listEmbeddingModels: async () => models.filter((m) => caps.get(m)?.embed === true),
    async embed(body, signal) {
      // Ollama's OpenAI-compatible route, as the Owlrun protocol names it for embedding jobs.
      const res = await fetch(`${opts.url.replace(/\/+$/, "")}/v1/embeddings`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: body.model,
          input: body.input,
          encoding_format: "float",
          ...(typeof body.dimensions === "number" ? { dimensions: body.dimensions } : {}),
        }),
        signal,
      });
      const answer = (await res.json().catch(() => undefined)) as
        | {
            data?: { index?: number; embedding?: number[] }[];
            usage?: { prompt_tokens?: number };
            error?: unknown;
          }
        | undefined;
      if (!res.ok || !Array.isArray(answer?.data)) {
        const e = answer?.error as { message?: string } | string | undefined;
        throw new BackendError(
          `Ollama embeddings failed (HTTP ${res.status}): ${typeof e === "string" ? e : (e?.message ?? "no data")}`,
        );
      }
      const vectors: number[][] = [];
      answer.data.forEach((d, i) => (vectors[d.index ?? i] = d.embedding ?? []));
      return { vectors, promptTokens: answer.usage?.prompt_tokens ?? 0 };
    },
    chat(body, signal) {
      const model = String(body.model);
      const messages = ollamaMessages(body);
      const tools = Array.isArray(body.tools) && body.tools.length > 0 ? (body.tools as Tool[]) : undefined;
      return relay(
        new ChunkFactory("chat", model),
        () =>
          client.chat({ model, messages, ...(tools ? { tools } : {}), stream: true, options: options(body) }),
        signal,
      ) as AsyncIterable<ChatChunk>;
    },
    complete(body, signal) {
      const model = String(body.model);
      return relay(
        new ChunkFactory("completions", model),
        () => client.generate({ model, prompt: promptOf(body), stream: true, options: options(body) }),
        signal,
      ) as AsyncIterable<CompletionChunk>;
    },
    async close() {
      clearInterval(timer);
    },
  };
}
