/**
 * Ollama through the official `ollama` npm client: models from /api/tags (refreshed periodically),
 * streaming /api/chat and /api/generate, abort, token counts from prompt_eval_count / eval_count.
 */
import { Ollama } from "ollama";
import type { Logger } from "../../src/shared/index.js";
import { type Backend, type BackendEvent, type GenerateRequest, messagesOf, promptOf } from "./types.js";

export interface OllamaOptions {
  url: string;
  refreshMs?: number;
  log: Logger;
}

export async function createOllamaBackend(opts: OllamaOptions): Promise<Backend> {
  const client = new Ollama({ host: opts.url });
  let models: string[] = [];
  const refresh = async () => {
    try {
      models = (await client.list()).models.map((m) => m.name);
    } catch (err) {
      opts.log.warn("could not list Ollama models", { err: String(err) });
    }
  };
  await refresh();
  const timer = setInterval(() => void refresh(), opts.refreshMs ?? 60_000);
  timer.unref();
  opts.log.info("ollama backend ready", { url: opts.url, models });

  async function* run(req: GenerateRequest): AsyncGenerator<BackendEvent> {
    const model = String(req.body.model ?? "");
    const options = {
      num_predict: req.maxTokens,
      ...(typeof req.body.temperature === "number" ? { temperature: req.body.temperature } : {}),
      ...(typeof req.body.top_p === "number" ? { top_p: req.body.top_p } : {}),
    };
    const stream =
      req.kind === "chat"
        ? await client.chat({ model, messages: messagesOf(req.body), stream: true, options })
        : await client.generate({ model, prompt: promptOf(req.body), stream: true, options });
    const onAbort = () => stream.abort();
    req.signal.addEventListener("abort", onAbort, { once: true });
    let completion = 0;
    try {
      for await (const part of stream) {
        const text = "message" in part ? part.message.content : part.response;
        if (text) {
          completion++;
          yield { type: "text", text };
        }
        if (part.done) {
          yield {
            type: "done",
            promptTokens: part.prompt_eval_count ?? 0,
            completionTokens: part.eval_count ?? completion,
            finishReason: part.done_reason === "length" ? "length" : "stop",
          };
          return;
        }
      }
    } catch (err) {
      if (!req.signal.aborted) throw err;
    } finally {
      req.signal.removeEventListener("abort", onAbort);
    }
    yield { type: "done", promptTokens: 0, completionTokens: completion, finishReason: "cancelled" };
  }

  return {
    name: "ollama",
    models: async () => models,
    generate: (req) => run(req),
    async close() {
      clearInterval(timer);
    },
  };
}
