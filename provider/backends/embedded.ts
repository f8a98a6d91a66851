/**
 * In-process generation with node-llama-cpp on GGUF files, so a node runs with no Ollama installed.
 *
 * - node-llama-cpp is loaded with `import()` only when this backend is chosen: MCP users never load
 *   it, and it is an optional peer dependency, so `npx owlrun-mcp` never installs it.
 * - One context per model with `sequences` sequences: that many jobs run at once (llama.cpp batches
 *   them together); more wait for a free sequence. A sequence is cleared before it is reused, so no
 *   buyer's prompt leaks into another's context.
 * - One thread by default: on small machines more threads made tiny models ~100× slower.
 * - The chat wrapper is resolved once per model (GeneralChatWrapper when the file has no chat
 *   template): resolving a Jinja template per job costs seconds.
 * - Usage from the model's tokenizer: prompt tokens are the rendered prompt tokenized; completion
 *   tokens are the generated token ids delivered to the buyer.
 */
import { basename } from "node:path";
import type { Logger } from "../../src/shared/index.js";
import {
  type Backend,
  BackendError,
  type ChatChunk,
  type ChatRequest,
  ChunkFactory,
  type CompletionChunk,
  type EmbeddingRequest,
  type EmbeddingResult,
  EventQueue,
  type FinishReason,
  type GenerationParams,
  maxTokensOf,
  messagesOf,
  promptOf,
  stopsOf,
} from "./types.js";

type Lib = typeof import("node-llama-cpp");
type Llama = Awaited<ReturnType<Lib["getLlama"]>>;
type LlamaModel = Awaited<ReturnType<Llama["loadModel"]>>;
type LlamaContext = Awaited<ReturnType<LlamaModel["createContext"]>>;
type Sequence = ReturnType<LlamaContext["getSequence"]>;
type EmbeddingContext = Awaited<ReturnType<LlamaModel["createEmbeddingContext"]>>;
type ChatWrapper = InstanceType<Lib["ChatWrapper"]>;
type ChatHistoryItem = Parameters<InstanceType<Lib["LlamaChat"]>["generateResponse"]>[0][number];

/** Tokens generated when a request names no max_tokens (the context bounds it anyway). */
const DEFAULT_MAX_TOKENS = 2048;

interface Loaded {
  id: string;
  model: LlamaModel;
  context: LlamaContext;
  wrapper: ChatWrapper;
  /** sequences not in use */
  idle: Sequence[];
  waiters: ((seq: Sequence) => void)[];
  /** created on the first embeddings job; one job at a time embeds on it */
  embedding?: Promise<EmbeddingContext>;
  embedQueue: Promise<unknown>;
}

export interface EmbeddedOptions {
  /** model id (Ollama-style tag) → GGUF path */
  models: Record<string, string>;
  /** concurrent jobs per model (context sequences); default 4 */
  sequences?: number;
  /** tokens per sequence; default 1024 */
  contextSize?: number;
  /** CPU threads per context; default 1 */
  threads?: number;
  /** try a GPU build of llama.cpp (default: CPU only) */
  gpu?: boolean;
  log: Logger;
}

export interface EmbeddedBackend extends Backend {
  /** getLlama + loading every model + creating their contexts, in ms */
  readonly loadMs: number;
}

/** node-llama-cpp (an optional peer dependency) is not installed. */
export class EmbeddedUnavailableError extends BackendError {}

export async function loadNodeLlamaCpp(): Promise<Lib> {
  try {
    return await import("node-llama-cpp");
  } catch {
    throw new EmbeddedUnavailableError(
      "the embedded backend needs node-llama-cpp, an optional dependency: install it next to owlrun-mcp " +
        "(`npm i -g owlrun-mcp node-llama-cpp@3`, or run `npx -p owlrun-mcp -p node-llama-cpp@3 owlrun-mcp provider --embedded`), " +
        "or run Ollama and pass --ollama-url",
    );
  }
}

/**
 * This backend does not call tools (node-llama-cpp's function calling is not wired in): with
 * `tool_choice` "auto" or "none" the model answers in text, which the API allows; a request that
 * demands a call ("required", or a named function) is refused clearly rather than answered wrongly.
 */
export function refuseForcedTools(body: GenerationParams): void {
  const tools = Array.isArray(body.tools) && body.tools.length > 0;
  const choice = body.tool_choice;
  if (tools && choice !== undefined && choice !== "auto" && choice !== "none") {
    throw new BackendError(
      "the embedded backend does not call tools: it can only answer in text (tool_choice auto or none); " +
        "serve the model with Ollama for tool calls",
    );
  }
}

/** A model id for a GGUF path: its file name without `.gguf`, lower case. */
export function modelIdForFile(path: string): string {
  return basename(path)
    .replace(/\.gguf$/i, "")
    .toLowerCase();
}

export async function createEmbeddedBackend(opts: EmbeddedOptions): Promise<EmbeddedBackend> {
  const lib = await loadNodeLlamaCpp();
  const started = Date.now();
  const llama = await lib.getLlama({
    gpu: opts.gpu ? "auto" : false,
    build: "never",
    logLevel: lib.LlamaLogLevel.error,
  });
  const nSequences = Math.max(1, opts.sequences ?? 4);
  const loaded = new Map<string, Loaded>();
  try {
    for (const [id, path] of Object.entries(opts.models)) {
      const model = await llama.loadModel({ modelPath: path });
      const context = await model.createContext({
        contextSize: opts.contextSize ?? 1024,
        sequences: nSequences,
        threads: opts.threads ?? 1,
      });
      const hasTemplate = typeof model.fileInfo.metadata.tokenizer?.chat_template === "string";
      const wrapper = hasTemplate
        ? lib.resolveChatWrapper(model, { warningLogs: false })
        : new lib.GeneralChatWrapper();
      const idle = Array.from({ length: nSequences }, () => context.getSequence());
      loaded.set(id, { id, model, context, wrapper, idle, waiters: [], embedQueue: Promise.resolve() });
    }
  } catch (err) {
    await llama.dispose();
    throw new BackendError(`could not load a model: ${(err as Error).message ?? err}`);
  }
  const loadMs = Date.now() - started;
  opts.log.info("embedded backend ready", {
    models: [...loaded.keys()],
    loadMs,
    sequences: nSequences,
    wrappers: Object.fromEntries([...loaded.values()].map((l) => [l.id, l.wrapper.wrapperName])),
  });

  const modelFor = (body: GenerationParams): Loaded => {
    const l = loaded.get(String(body.model ?? ""));
    if (!l) throw new BackendError(`model ${String(body.model)} is not loaded here`);
    return l;
  };

  /** A free sequence, or undefined when the signal aborts first. */
  const acquire = (l: Loaded, signal: AbortSignal): Promise<Sequence | undefined> => {
    const seq = l.idle.pop();
    if (seq) return Promise.resolve(seq);
    return new Promise((resolve) => {
      const waiter = (s: Sequence) => {
        signal.removeEventListener("abort", onAbort);
        resolve(s);
      };
      const onAbort = () => {
        l.waiters.splice(l.waiters.indexOf(waiter), 1);
        resolve(undefined);
      };
      if (signal.aborted) return resolve(undefined);
      signal.addEventListener("abort", onAbort, { once: true });
      l.waiters.push(waiter);
    });
  };
  const release = async (l: Loaded, seq: Sequence) => {
    await seq.clearHistory().catch(() => undefined);
    const next = l.waiters.shift();
    if (next) next(seq);
    else l.idle.push(seq);
  };

  const sampling = (body: GenerationParams) => ({
    maxTokens: maxTokensOf(body) ?? DEFAULT_MAX_TOKENS,
    ...(typeof body.temperature === "number" ? { temperature: body.temperature } : {}),
    ...(typeof body.top_p === "number" ? { topP: body.top_p } : {}),
    ...(typeof body.seed === "number" && Number.isSafeInteger(body.seed) ? { seed: body.seed } : {}),
  });

  /** What chat and completion generation share: sampling, the chunk callbacks, stops. */
  const generation = <C extends object>(body: GenerationParams, cb: C) => ({
    ...sampling(body),
    ...cb,
    stopOnAbortSignal: true,
    customStopTriggers: stopsOf(body),
  });

  /**
   * Runs one generation on a free sequence of the body's model, turning its callbacks into chunks.
   * Stops when `signal` aborts or the consumer stops reading.
   */
  async function* generate<K extends "chat" | "completions">(
    kind: K,
    body: GenerationParams,
    signal: AbortSignal,
    run: (
      l: Loaded,
      seq: Sequence,
      cb: {
        signal: AbortSignal;
        onToken: (tokens: readonly unknown[]) => void;
        onTextChunk: (text: string) => void;
      },
    ) => Promise<{ promptTokens: number; stopReason: string }>,
  ): AsyncGenerator<K extends "chat" ? ChatChunk : CompletionChunk> {
    const l = modelFor(body);
    const make = new ChunkFactory(kind, l.id);
    const stop = new AbortController();
    const onAbort = () => stop.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    if (signal.aborted) stop.abort();
    const seq = await acquire(l, stop.signal);
    try {
      if (!seq) {
        yield make.finish("stop");
        yield make.usage(0, 0);
        return;
      }
      const queue = new EventQueue<K extends "chat" ? ChatChunk : CompletionChunk>();
      if (kind === "chat") queue.push(make.role());
      let completionTokens = 0;
      const job = run(l, seq, {
        signal: stop.signal,
        onToken: (tokens) => {
          completionTokens += tokens.length;
        },
        onTextChunk: (text) => {
          if (text) queue.push(make.text(text));
        },
      }).then(
        ({ promptTokens, stopReason }) => {
          const finish: FinishReason = stopReason === "maxTokens" ? "length" : "stop";
          queue.push(make.finish(finish));
          queue.push(make.usage(promptTokens, completionTokens));
          queue.end();
        },
        (err: unknown) => queue.end(stop.signal.aborted ? undefined : err),
      );
      try {
        yield* queue;
      } finally {
        stop.abort(); // the consumer may have stopped reading early
        await job;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      if (seq) await release(l, seq);
    }
  }

  const historyOf = (body: ChatRequest): ChatHistoryItem[] => {
    const items: ChatHistoryItem[] = messagesOf(body).map((m) =>
      m.role === "system" || m.role === "developer"
        ? { type: "system", text: m.content }
        : m.role === "assistant"
          ? { type: "model", response: [m.content] }
          : { type: "user", text: m.content },
    );
    items.push({ type: "model", response: [] });
    return items;
  };

  /**
   * Embeds texts one after another on the model's embedding context (llama.cpp pools the last
   * hidden states); jobs on the same model queue so a context never runs two at once.
   */
  const embed = async (body: EmbeddingRequest, signal: AbortSignal): Promise<EmbeddingResult> => {
    const l = modelFor(body);
    const texts = typeof body.input === "string" ? [body.input] : body.input;
    const run = l.embedQueue.then(async () => {
      l.embedding ??= l.model.createEmbeddingContext({
        contextSize: opts.contextSize ?? 1024,
        threads: opts.threads ?? 1,
      });
      const ctx = await l.embedding;
      const vectors: number[][] = [];
      let promptTokens = 0;
      for (const text of texts) {
        if (signal.aborted) throw new BackendError("embedding cancelled");
        promptTokens += l.model.tokenize(text).length;
        vectors.push([...(await ctx.getEmbeddingFor(text)).vector]);
      }
      return { vectors, promptTokens };
    });
    l.embedQueue = run.catch(() => undefined);
    return run;
  };

  return {
    name: "embedded",
    loadMs,
    listModels: async () => [...loaded.keys()],
    listEmbeddingModels: async () => [...loaded.keys()],
    embed,
    chat(body, signal) {
      refuseForcedTools(body);
      return generate("chat", body, signal, async (l, seq, cb) => {
        const history = historyOf(body);
        const promptTokens = l.wrapper
          .generateContextState({ chatHistory: history })
          .contextText.tokenize(l.model.tokenizer).length;
        const chat = new lib.LlamaChat({ contextSequence: seq, chatWrapper: l.wrapper });
        try {
          const result = await chat.generateResponse(history, generation(body, cb));
          return { promptTokens, stopReason: result.metadata.stopReason };
        } finally {
          chat.dispose({ disposeSequence: false });
        }
      });
    },
    complete(body, signal) {
      return generate("completions", body, signal, async (l, seq, cb) => {
        const prompt = promptOf(body);
        const bos = l.model.tokens.shouldPrependBosToken ? 1 : 0;
        const promptTokens =
          bos + l.model.tokenize(prompt, false, bos ? "trimLeadingSpace" : undefined).length;
        const completion = new lib.LlamaCompletion({ contextSequence: seq });
        try {
          const result = await completion.generateCompletionWithMeta(prompt, generation(body, cb));
          return { promptTokens, stopReason: result.metadata.stopReason };
        } finally {
          completion.dispose({ disposeSequence: false });
        }
      });
    },
    async close() {
      for (const l of loaded.values()) {
        await l.embedQueue;
        if (l.embedding) await (await l.embedding.catch(() => undefined))?.dispose();
        await l.context.dispose();
        await l.model.dispose();
      }
      await llama.dispose();
    },
  };
}
