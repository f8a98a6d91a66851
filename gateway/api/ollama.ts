/**
 * Ollama's HTTP API on the gateway — `POST /api/chat`, `POST /api/generate`, `GET /api/tags`,
 * `GET /api/version` — so the official `ollama` client works with `host=<gateway>`. Paid exactly as
 * /v1/chat/completions (same pipeline, `runPaidJob`): Bearer key (rc_, sk-, cashu token) or X-Cashu.
 *
 * Change for X-Cashu: NDJSON streams end with the `done: true` object carrying
 * `cost: {sats, change_sats}` and `cashu_change: "cashuB…"`; non-streaming answers carry the same
 * fields and the `X-Cashu-Change` header. Errors use Ollama's shape (`error` is the message, which
 * the ollama client shows) plus our stable `type` and `code`.
 */
import { type NextFunction, type Request, type Response, Router } from "express";
import * as z from "zod";
import type { RouteDoc, RouteGroup } from "../../src/shared/discovery/index.js";
import { VERSION } from "../../src/shared/index.js";
import {
  type ChatDeps,
  Collector,
  type Kind,
  type PaidJob,
  parseBody,
  runPaidJob,
  settleOutcome,
  turnCork,
} from "./chat.js";
import { ollamaToolCalls, openAiMessages } from "./ollama-tools.js";
import { type ToolCall, toolDeltas } from "./tools.js";
import { classifyError, type ErrorRenderer, parseWith, sendError } from "./errors.js";
import {
  PaymentRequestHeaders,
  PaymentRequiredHeaders,
  PaymentResponseHeaders,
  type OllamaChatRequest,
  OllamaChatRequestSchema,
  type OllamaGenerateRequest,
  OllamaGenerateRequestSchema,
} from "./schemas.js";

const ollamaError: ErrorRenderer = (status, type, message, extra) => ({
  error: message,
  type,
  code: status,
  ...extra,
});

type OllamaRequest = OllamaChatRequest | OllamaGenerateRequest;

/** The OpenAI request the shared pipeline validates and bills (Ollama `options` → OpenAI fields). */
function asOpenAi(kind: Kind, o: OllamaRequest, stream: boolean): unknown {
  const opts = o.options;
  const chat = o as OllamaChatRequest;
  const input =
    kind === "chat"
      ? {
          messages: openAiMessages(chat.messages ?? []),
          ...(chat.tools?.length ? { tools: chat.tools } : {}),
        }
      : (() => {
          const { prompt, system } = o as OllamaGenerateRequest;
          return { prompt: system ? `${system}\n\n${prompt ?? ""}` : (prompt ?? "") };
        })();
  return {
    model: o.model,
    stream,
    ...input,
    ...(opts?.num_predict && opts.num_predict > 0 ? { max_tokens: opts.num_predict } : {}),
    ...(typeof opts?.temperature === "number" ? { temperature: opts.temperature } : {}),
    ...(typeof opts?.top_p === "number" ? { top_p: opts.top_p } : {}),
  };
}

/** Ollama loads a model when asked to generate nothing: free, nothing to pay for. */
const onlyLoads = (kind: Kind, o: OllamaRequest) =>
  kind === "chat" ? !(o as OllamaChatRequest).messages?.length : !(o as OllamaGenerateRequest).prompt;

function line(
  kind: Kind,
  model: string,
  text: string,
  extra: Record<string, unknown> = {},
  calls: ToolCall[] = [],
) {
  const message = {
    role: "assistant",
    content: text,
    ...(calls.length > 0 ? { tool_calls: ollamaToolCalls(calls) } : {}),
  };
  return {
    model,
    created_at: new Date().toISOString(),
    ...(kind === "chat" ? { message } : { response: text }),
    done: false,
    ...extra,
  };
}

async function ollamaResponse(res: Response, paid: PaidJob, deps: ChatDeps, kind: Kind, streaming: boolean) {
  const { job, payment, model, startedAt } = paid;
  const started = process.hrtime.bigint();
  let firstAt: bigint | undefined;
  if (streaming) {
    res.status(200);
    res.setHeader("Content-Type", "application/x-ndjson");
    res.flushHeaders();
  }
  const collector = new Collector();
  const cork = turnCork(res);
  for await (const chunk of job.chunks) {
    if (res.destroyed) continue; // keep draining so the outcome settles
    collector.add(chunk);
    const text = (chunk.choices ?? []).map((c) => c.delta?.content ?? c.text ?? "").join("");
    if (!text) {
      if (toolDeltas(chunk)) firstAt ??= process.hrtime.bigint();
      continue;
    }
    firstAt ??= process.hrtime.bigint();
    if (!streaming) continue;
    cork.hold();
    res.write(`${JSON.stringify(line(kind, model, text))}\n`);
  }
  cork.release();
  const outcome = await job.outcome;
  const settled = await settleOutcome(payment, outcome, deps, model, startedAt);
  if (res.destroyed) return; // change is stored server-side under X-Owlrun-Request-Id
  const money = {
    cost: { sats: settled.chargedSat, change_sats: settled.changeSat },
    ...(settled.changeToken ? { cashu_change: settled.changeToken } : {}),
  };
  if (!streaming) {
    if (settled.changeToken) res.setHeader("X-Cashu-Change", settled.changeToken);
    res.setHeader("X-Cost-Sats", String(settled.chargedSat));
  }
  if (outcome.status === "failed" && (streaming || collector.empty)) {
    const failure = ollamaError(
      502,
      "provider_failed",
      `the provider failed: ${outcome.error ?? "unknown"}; you were not charged`,
      money,
    );
    if (streaming) res.end(`${JSON.stringify(failure)}\n`);
    else res.status(502).json(failure);
    return;
  }
  const calls = collector.tools.calls;
  // Ollama sends tool calls whole, in a message of their own before the done object.
  if (streaming && calls.length > 0) res.write(`${JSON.stringify(line(kind, model, "", {}, calls))}\n`);
  const now = process.hrtime.bigint();
  const usage = outcome.billableUsage;
  const final = line(
    kind,
    model,
    streaming ? "" : collector.text,
    {
      done: true,
      done_reason: collector.finishReason === "length" ? "length" : "stop",
      total_duration: Number(now - started),
      load_duration: 0,
      prompt_eval_count: usage.promptTokens,
      prompt_eval_duration: Number((firstAt ?? now) - started),
      eval_count: usage.completionTokens,
      eval_duration: Number(now - (firstAt ?? now)),
      ...money,
    },
    streaming ? [] : calls,
  );
  if (streaming) res.end(`${JSON.stringify(final)}\n`);
  else res.json(final);
}

export function ollamaRouter(deps: ChatDeps): Router {
  const router = Router();
  router.get("/api/version", (_req, res) => {
    res.json({ version: VERSION });
  });
  router.get("/api/tags", (_req, res) => {
    res.json({
      // Embedding models too (Open WebUI picks its embedding model from this list).
      models: [
        ...new Set(
          [...deps.dispatcher.models(), ...(deps.dispatcher.embeddingModels?.() ?? [])].map((m) => m.model),
        ),
      ].map((model) => ({
        name: model,
        model,
        modified_at: new Date(0).toISOString(),
        size: 0,
        digest: "",
        details: { format: "gguf", family: "", families: [], parameter_size: "", quantization_level: "" },
      })),
    });
  });
  const serve = (kind: Kind) => async (req: Request, res: Response) => {
    const o = parseWith(kind === "chat" ? OllamaChatRequestSchema : OllamaGenerateRequestSchema, req.body);
    const streaming = o.stream !== false;
    if (onlyLoads(kind, o)) {
      const loaded = { ...line(kind, o.model, ""), done: true, done_reason: "load" };
      if (streaming) res.type("application/x-ndjson").end(`${JSON.stringify(loaded)}\n`);
      else res.json(loaded);
      return;
    }
    const body = parseBody(kind, asOpenAi(kind, o, streaming));
    await runPaidJob(req, res, deps, kind, body, (paid) => ollamaResponse(res, paid, deps, kind, streaming));
  };
  router.post("/api/chat", serve("chat"));
  router.post("/api/generate", serve("completions"));
  router.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    if (res.headersSent) return void res.end();
    sendError(res, classifyError(err, deps.log), ollamaError);
  });
  return router;
}

// ---- documented shapes (OpenAPI) ----
export const OllamaErrorSchema = z
  .looseObject({ error: z.string(), type: z.string(), code: z.number().int() })
  .meta({ id: "OllamaError" });
const OllamaVersionSchema = z.object({ version: z.string() });
const OllamaTagsSchema = z.object({
  models: z.array(z.looseObject({ name: z.string(), model: z.string() })),
});
/** The last (or only) object of an answer: Ollama's counts plus what it cost and the change. */
const OllamaDoneSchema = z.looseObject({
  model: z.string(),
  created_at: z.string(),
  done: z.boolean(),
  done_reason: z.string().optional(),
  eval_count: z.number().int().optional(),
  prompt_eval_count: z.number().int().optional(),
  cost: z.object({ sats: z.number().int(), change_sats: z.number().int() }).optional(),
  cashu_change: z.string().optional().meta({ description: "the unused part of the X-Cashu token" }),
});

const paidOllamaRoute = (path: string, summary: string, body: z.ZodType): RouteDoc => ({
  method: "post",
  path,
  summary,
  description:
    "Ollama's API, paid like /v1/chat/completions: `X-Cashu: <token>` or `Authorization: Bearer <rc_…|sk-…|cashu token>`. Streams NDJSON unless `stream: false`; the `done: true` object carries `cost` and `cashu_change`.",
  tags: ["ollama"],
  security: ["cashu", "bearer", "l402"],
  headers: PaymentRequestHeaders,
  body,
  responses: {
    200: {
      description: "NDJSON lines (or one object with stream: false), the last with done: true",
      schema: OllamaDoneSchema,
      alternatives: { "application/x-ndjson": z.string() },
      headers: PaymentResponseHeaders,
    },
    402: {
      description: "payment required or short",
      schema: OllamaErrorSchema,
      headers: PaymentRequiredHeaders,
    },
  },
  errors: { 400: "malformed body or token", 401: "unknown key", 503: "no provider serves the model" },
});

export const ollamaRoutes: RouteGroup = {
  name: "ollama",
  description: "Ollama-compatible routes (the official ollama client works with host=<gateway>)",
  errorSchema: OllamaErrorSchema,
  routes: [
    {
      method: "get",
      path: "/api/version",
      summary: "Gateway version (Ollama shape)",
      tags: ["ollama"],
      responses: { 200: { description: "version", schema: OllamaVersionSchema } },
    },
    {
      method: "get",
      path: "/api/tags",
      summary: "Models online (Ollama shape)",
      tags: ["ollama"],
      responses: { 200: { description: "models", schema: OllamaTagsSchema } },
    },
    paidOllamaRoute("/api/chat", "Chat (Ollama format)", OllamaChatRequestSchema),
    paidOllamaRoute("/api/generate", "Generate (Ollama format)", OllamaGenerateRequestSchema),
  ],
};
