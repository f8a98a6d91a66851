/**
 * An Ollama-compatible HTTP front over any backend: `/api/version`, `/api/tags`, `/api/show`,
 * `/api/chat` and `/api/generate` with NDJSON streaming (or one JSON object with `"stream": false`),
 * and `/v1/embeddings` (Ollama's OpenAI-compatible route) when the backend embeds. It lets the real
 * `ollama` client (and our Ollama backend) talk to the embedded backend, so the Ollama path is tested
 * against real generation, and it is the Ollama-native front door a gateway can offer later.
 */
import { createServer, type Server } from "node:http";
import express, { type NextFunction, type Request, type Response } from "express";
import * as z from "zod";
import { closeServer, DEFAULT_HOST, listen, VERSION } from "../src/shared/index.js";
import type { Backend, Chunk, GenerationParams } from "./backends/types.js";

const Options = z
  .looseObject({
    num_predict: z.number().int().nullish(),
    temperature: z.number().nullish(),
    top_p: z.number().nullish(),
    seed: z.number().int().nullish(),
    stop: z.array(z.string()).nullish(),
  })
  .nullish();
const Common = {
  model: z.string().min(1).max(200),
  stream: z.boolean().nullish(),
  options: Options,
};
const ChatBody = z.looseObject({
  ...Common,
  messages: z
    .array(z.looseObject({ role: z.string().max(32), content: z.string().nullish() }))
    .min(1)
    .max(10_000),
});
const GenerateBody = z.looseObject({ ...Common, prompt: z.string().nullish(), system: z.string().nullish() });
const EmbeddingsBody = z.looseObject({
  model: z.string().min(1).max(200),
  input: z.union([z.string(), z.array(z.string()).min(1).max(4096)]),
});

export interface Facade {
  url: string;
  close(): Promise<void>;
}

const fail = (res: Response, status: number, error: string) => res.status(status).json({ error });

/** Ollama's `options` as OpenAI request fields. */
function openaiParams(model: string, o: z.infer<typeof Options>): GenerationParams {
  return {
    model,
    ...(o?.num_predict && o.num_predict > 0 ? { max_tokens: o.num_predict } : {}),
    ...(typeof o?.temperature === "number" ? { temperature: o.temperature } : {}),
    ...(typeof o?.top_p === "number" ? { top_p: o.top_p } : {}),
    ...(typeof o?.seed === "number" ? { seed: o.seed } : {}),
    ...(o?.stop?.length ? { stop: o.stop } : {}),
  };
}

export async function startOllamaFacade(
  backend: Backend,
  opts: { host?: string; port?: number } = {},
): Promise<Facade> {
  const app = express();
  app.disable("x-powered-by");
  app.use(express.json({ limit: "8mb" }));

  app.get("/", (_req, res) => {
    res.type("text/plain").send("Ollama is running");
  });
  app.get("/api/version", (_req, res) => {
    res.json({ version: `0.0.0-owlrun-facade-${VERSION}` });
  });
  app.get("/api/tags", async (_req, res) => {
    const models = await backend.listModels();
    res.json({
      models: models.map((name) => ({
        name,
        model: name,
        modified_at: new Date(0).toISOString(),
        size: 0,
        digest: "",
        details: {
          parent_model: "",
          format: "gguf",
          family: "llama",
          families: ["llama"],
          parameter_size: "",
          quantization_level: "",
        },
      })),
    });
  });

  const serve = (kind: "chat" | "completions") => async (req: Request, res: Response) => {
    const parsed = (kind === "chat" ? ChatBody : GenerateBody).safeParse(req.body);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return fail(res, 400, `invalid request: ${issue?.path.join(".") || "body"}: ${issue?.message}`);
    }
    const body = parsed.data;
    if (!(await backend.listModels()).includes(body.model)) {
      return fail(res, 404, `model "${body.model}" not found, try pulling it first`);
    }
    const abort = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) abort.abort();
    });
    const params = openaiParams(body.model, body.options);
    let stream: AsyncIterable<Chunk>;
    if (kind === "chat") {
      const { messages } = body as z.infer<typeof ChatBody>;
      stream = backend.chat(
        { ...params, messages: messages.map((m) => ({ role: m.role, content: m.content ?? "" })) },
        abort.signal,
      );
    } else {
      const { prompt, system } = body as z.infer<typeof GenerateBody>;
      stream = backend.complete(
        { ...params, prompt: system ? `${system}\n\n${prompt ?? ""}` : (prompt ?? "") },
        abort.signal,
      );
    }
    const streaming = body.stream !== false;
    const started = process.hrtime.bigint();
    let firstAt: bigint | undefined;
    const line = (text: string, extra: Record<string, unknown> = {}) => ({
      model: body.model,
      created_at: new Date().toISOString(),
      ...(kind === "chat" ? { message: { role: "assistant", content: text } } : { response: text }),
      done: false,
      ...extra,
    });
    let all = "";
    let finish = "stop";
    let usage = { prompt_tokens: 0, completion_tokens: 0 };
    try {
      for await (const chunk of stream) {
        if (chunk.usage) usage = chunk.usage;
        for (const c of chunk.choices) {
          const text = "text" in c ? c.text : (c.delta.content ?? "");
          if (c.finish_reason) finish = c.finish_reason;
          if (!text) continue;
          firstAt ??= process.hrtime.bigint();
          if (!streaming) all += text;
          else {
            if (!res.headersSent) res.setHeader("Content-Type", "application/x-ndjson");
            res.write(`${JSON.stringify(line(text))}\n`);
          }
        }
      }
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      if (!res.headersSent) return fail(res, 500, message);
      return void res.end(`${JSON.stringify({ error: message })}\n`);
    }
    if (abort.signal.aborted) return;
    const now = process.hrtime.bigint();
    const final = line(streaming ? "" : all, {
      done: true,
      done_reason: finish === "length" ? "length" : "stop",
      total_duration: Number(now - started),
      load_duration: 0,
      prompt_eval_count: usage.prompt_tokens,
      prompt_eval_duration: Number((firstAt ?? now) - started),
      eval_count: usage.completion_tokens,
      eval_duration: Number(now - (firstAt ?? now)),
    });
    if (!streaming) return void res.json(final);
    if (!res.headersSent) res.setHeader("Content-Type", "application/x-ndjson");
    res.end(`${JSON.stringify(final)}\n`);
  };
  app.post("/api/chat", serve("chat"));
  app.post("/api/generate", serve("completions"));

  // What Ollama answers about a model; capabilities say whether it embeds.
  app.post("/api/show", async (req, res) => {
    const model = String((req.body as { model?: unknown; name?: unknown })?.model ?? req.body?.name ?? "");
    const chat = (await backend.listModels()).includes(model);
    const embeds = (await backend.listEmbeddingModels?.())?.includes(model) ?? false;
    if (!chat && !embeds) return fail(res, 404, `model '${model}' not found`);
    res.json({
      modelfile: `FROM ${model}\n`,
      parameters: "",
      template: "",
      details: { format: "gguf", family: "llama", families: ["llama"] },
      model_info: {},
      capabilities: [...(chat ? ["completion"] : []), ...(embeds ? ["embedding"] : [])],
    });
  });

  // Ollama's OpenAI-compatible embeddings route (what a node calls for an embedding job).
  app.post("/v1/embeddings", async (req, res) => {
    const body = EmbeddingsBody.safeParse(req.body);
    if (!body.success) return fail(res, 400, "invalid embeddings request");
    if (!backend.embed) return fail(res, 404, "this backend does not embed");
    const { vectors, promptTokens } = await backend.embed(body.data, new AbortController().signal);
    res.json({
      object: "list",
      data: vectors.map((embedding, index) => ({ object: "embedding", index, embedding })),
      model: body.data.model,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    });
  });
  app.use((_req, res) => fail(res, 404, "not found"));
  app.use((err: { type?: string; status?: number }, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    if (err?.type === "entity.too.large") return fail(res, 413, "request too large");
    if (err?.type === "entity.parse.failed") return fail(res, 400, "malformed JSON body");
    return fail(res, 500, "internal error");
  });

  const server: Server = createServer(app);
  const url = await listen(server, opts.host ?? DEFAULT_HOST, opts.port ?? 0);
  return { url, close: () => closeServer(server) };
}
