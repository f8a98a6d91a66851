/**
 * In-process generation with node-llama-cpp on GGUF files, so a node runs with no Ollama installed.
 * node-llama-cpp is loaded with `import()` only when this backend is chosen (MCP users never pay
 * for it). One thread per context (more is ~100× slower on 2 cores), several sequences per model
 * for concurrent jobs, GeneralChatWrapper (no slow Jinja template); completion tokens are the
 * generated token ids themselves, prompt tokens what the sequence holds besides them.
 */
import type { Logger } from "../../src/shared/index.js";
import {
  type Backend,
  BackendError,
  type BackendEvent,
  EventQueue,
  type GenerateRequest,
  messagesOf,
  promptOf,
} from "./types.js";

type Llama = typeof import("node-llama-cpp");
type LlamaModel = Awaited<ReturnType<Awaited<ReturnType<Llama["getLlama"]>>["loadModel"]>>;
type LlamaContext = Awaited<ReturnType<LlamaModel["createContext"]>>;

type Sequence = ReturnType<LlamaContext["getSequence"]>;

interface Loaded {
  model: LlamaModel;
  context: LlamaContext;
  /** sequences created once per model; a job takes one and gives it back cleared */
  idle: Sequence[];
  waiters: (() => void)[];
}

export interface EmbeddedOptions {
  /** model id → GGUF path */
  models: Record<string, string>;
  /** concurrent jobs per model */
  sequences?: number;
  contextSize?: number;
  threads?: number;
  log: Logger;
}

export async function loadNodeLlamaCpp(): Promise<Llama> {
  try {
    return await import("node-llama-cpp");
  } catch {
    throw new BackendError(
      "the embedded backend needs node-llama-cpp: run `npm i -g node-llama-cpp@3` (or `npx -p node-llama-cpp@3 -p owlrun-mcp owlrun-mcp provider --embedded`)",
    );
  }
}

export async function createEmbeddedBackend(opts: EmbeddedOptions): Promise<Backend & { loadMs: number }> {
  const lib = await loadNodeLlamaCpp();
  const started = Date.now();
  const llama = await lib.getLlama({ gpu: false, build: "never", logLevel: lib.LlamaLogLevel.error });
  const sequences = opts.sequences ?? 4;
  const loaded = new Map<string, Loaded>();
  for (const [id, path] of Object.entries(opts.models)) {
    const model = await llama.loadModel({ modelPath: path });
    const context = await model.createContext({
      contextSize: opts.contextSize ?? 1024,
      sequences,
      threads: opts.threads ?? 1,
    });
    const idle = Array.from({ length: sequences }, () => context.getSequence());
    loaded.set(id, { model, context, idle, waiters: [] });
  }
  const loadMs = Date.now() - started;
  opts.log.info("embedded backend ready", { models: [...loaded.keys()], loadMs });

  const acquire = async (l: Loaded): Promise<Sequence> => {
    while (l.idle.length === 0) await new Promise<void>((r) => l.waiters.push(r));
    return l.idle.pop()!;
  };
  const release = async (l: Loaded, seq: Sequence) => {
    await seq.clearHistory();
    l.idle.push(seq);
    l.waiters.shift()?.();
  };

  async function* run(req: GenerateRequest): AsyncGenerator<BackendEvent> {
    const id = String(req.body.model ?? "");
    const l = loaded.get(id);
    if (!l) throw new BackendError(`model ${id} is not loaded here`);
    const seq = await acquire(l);
    const queue = new EventQueue<BackendEvent>();
    const temperature = typeof req.body.temperature === "number" ? req.body.temperature : undefined;
    // Generated token ids, counted as they come: re-tokenizing the text would not round-trip.
    let generated = 0;
    const onToken = (tokens: readonly unknown[]) => {
      generated += tokens.length;
    };
    const onTextChunk = (t: string) => queue.push({ type: "text", text: t });
    const finish = (reason: "stop" | "length" | "cancelled") => {
      const completionTokens = generated;
      const promptTokens = Math.max(0, seq.nextTokenIndex - completionTokens);
      queue.push({ type: "done", promptTokens, completionTokens, finishReason: reason });
      queue.end();
    };
    const job = (async () => {
      if (req.kind === "chat") {
        const messages = messagesOf(req.body);
        const last = messages.at(-1);
        const session = new lib.LlamaChatSession({
          contextSequence: seq,
          chatWrapper: new lib.GeneralChatWrapper(),
          systemPrompt: messages.find((m) => m.role === "system")?.content ?? "",
          autoDisposeSequence: false,
        });
        const history = messages.slice(0, -1).filter((m) => m.role !== "system");
        session.setChatHistory([
          ...(session.getChatHistory().filter((h) => h.type === "system") as ReturnType<
            typeof session.getChatHistory
          >),
          ...history.map((m) =>
            m.role === "assistant"
              ? { type: "model" as const, response: [m.content] }
              : { type: "user" as const, text: m.content },
          ),
        ]);
        const result = await session.promptWithMeta(last?.content ?? "", {
          maxTokens: req.maxTokens,
          temperature,
          signal: req.signal,
          stopOnAbortSignal: true,
          onTextChunk,
          onToken,
        });
        session.dispose({ disposeSequence: false });
        return result.stopReason === "maxTokens" ? "length" : req.signal.aborted ? "cancelled" : "stop";
      }
      const completion = new lib.LlamaCompletion({ contextSequence: seq });
      await completion.generateCompletion(promptOf(req.body), {
        maxTokens: req.maxTokens,
        temperature,
        signal: req.signal,
        stopOnAbortSignal: true,
        onTextChunk,
        onToken,
      });
      completion.dispose({ disposeSequence: false });
      return req.signal.aborted ? "cancelled" : "stop";
    })();
    job.then(
      (reason) => finish(reason as "stop" | "length" | "cancelled"),
      (err) => (req.signal.aborted ? finish("cancelled") : queue.end(err)),
    );
    try {
      yield* queue;
    } finally {
      await job.catch(() => undefined);
      await release(l, seq);
    }
  }

  return {
    name: "embedded",
    loadMs,
    models: async () => [...loaded.keys()],
    generate: (req) => run(req),
    async close() {
      for (const l of loaded.values()) {
        await l.context.dispose();
        await l.model.dispose();
      }
      await llama.dispose();
    },
  };
}
