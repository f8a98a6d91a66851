/**
 * An Ollama-compatible HTTP front over any backend: /api/version, /api/tags, /api/chat and
 * /api/generate with NDJSON streaming (or one JSON object with `stream: false`). It lets the real
 * `ollama` client talk to the embedded backend, so the Ollama path is tested against real generation.
 */
import { createServer, type Server } from "node:http";
import express, { type Request, type Response } from "express";
import * as z from "zod";
import { closeServer, DEFAULT_HOST, listen, VERSION } from "../src/shared/index.js";
import type { Backend } from "./backends/types.js";

const Options = z
  .looseObject({ num_predict: z.number().int().optional(), temperature: z.number().optional() })
  .optional();
const ChatBody = z.looseObject({
  model: z.string().min(1),
  messages: z.array(z.looseObject({ role: z.string(), content: z.string() })).min(1),
  stream: z.boolean().optional(),
  options: Options,
});
const GenerateBody = z.looseObject({
  model: z.string().min(1),
  prompt: z.string(),
  stream: z.boolean().optional(),
  options: Options,
});

export interface Facade {
  url: string;
  close(): Promise<void>;
}

export async function startOllamaFacade(
  backend: Backend,
  opts: { host?: string; port?: number } = {},
): Promise<Facade> {
  const app = express();
  app.use(express.json({ limit: "4mb" }));
  app.get("/api/version", (_req, res) => {
    res.json({ version: `owlrun-facade-${VERSION}` });
  });
  app.get("/api/tags", async (_req, res) => {
    const models = await backend.models();
    res.json({
      models: models.map((name) => ({
        name,
        model: name,
        modified_at: new Date(0).toISOString(),
        size: 0,
        digest: "",
        details: { format: "gguf", family: "llama", parameter_size: "tiny", quantization_level: "F32" },
      })),
    });
  });

  const serve = (kind: "chat" | "completions") => async (req: Request, res: Response) => {
    const parsed = (kind === "chat" ? ChatBody : GenerateBody).safeParse(req.body);
    if (!parsed.success) {
      res.status(400).json({ error: parsed.error.issues[0]?.message ?? "bad request" });
      return;
    }
    const body = parsed.data as Record<string, unknown> & {
      model: string;
      stream?: boolean;
      options?: { num_predict?: number; temperature?: number };
    };
    if (!(await backend.models()).includes(body.model)) {
      res.status(404).json({ error: `model "${body.model}" not found` });
      return;
    }
    const abort = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) abort.abort();
    });
    const stream = body.stream !== false;
    const started = Date.now();
    const openaiBody = {
      ...body,
      ...(body.options?.temperature !== undefined ? { temperature: body.options.temperature } : {}),
    };
    const line = (text: string, done: boolean, extra: Record<string, unknown> = {}) => ({
      model: body.model,
      created_at: new Date().toISOString(),
      ...(kind === "chat" ? { message: { role: "assistant", content: text } } : { response: text }),
      done,
      ...extra,
    });
    if (stream) res.setHeader("Content-Type", "application/x-ndjson");
    let all = "";
    for await (const ev of backend.generate({
      kind,
      body: openaiBody,
      maxTokens: body.options?.num_predict ?? 1024,
      signal: abort.signal,
    })) {
      if (ev.type === "text") {
        all += ev.text;
        if (stream) res.write(`${JSON.stringify(line(ev.text, false))}\n`);
        continue;
      }
      const final = line(stream ? "" : all, true, {
        done_reason: ev.finishReason === "length" ? "length" : "stop",
        total_duration: (Date.now() - started) * 1e6,
        prompt_eval_count: ev.promptTokens,
        eval_count: ev.completionTokens,
      });
      if (stream) res.end(`${JSON.stringify(final)}\n`);
      else res.json(final);
    }
  };
  app.post("/api/chat", serve("chat"));
  app.post("/api/generate", serve("completions"));

  const server: Server = createServer(app);
  const url = await listen(server, opts.host ?? DEFAULT_HOST, opts.port ?? 0);
  return { url, close: () => closeServer(server) };
}
