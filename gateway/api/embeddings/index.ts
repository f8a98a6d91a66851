/**
 * Embeddings, paid per input token on the chat payment pipeline (`runPaidJob`, kind "embeddings"):
 * OpenAI's `POST /v1/embeddings` (floats or base64 float32) and Ollama's `POST /api/embed` and legacy
 * `POST /api/embeddings`. Jobs go only to nodes that announced the model in `embedding_models`;
 * the vectors they relay are checked by routing before anything is billed. Change: `X-Cashu-Change`
 * (and `cashu_change` in Ollama bodies); nothing delivered → nothing charged.
 */
import { type Request, type Response, Router } from "express";
import type { RouteGroup } from "../../../src/shared/discovery/index.js";
import type { SettledPayment } from "../../payments/xcashu.js";
import { type ChatDeps, type PaidJob, receipt, runPaidJob, settleOutcome } from "../chat.js";
import { ApiError, ErrorBodySchema, parseWith } from "../errors.js";
import { OllamaErrorSchema } from "../ollama.js";
import {
  type EmbeddingsRequest,
  EmbeddingsRequestSchema,
  PaymentRequestHeaders,
  PaymentRequiredHeaders,
  PaymentResponseHeaders,
} from "../schemas.js";
import {
  EmbeddingsResponseSchema,
  OllamaEmbedRequestSchema,
  OllamaEmbedResponseSchema,
  OllamaEmbeddingsRequestSchema,
  OllamaEmbeddingsResponseSchema,
} from "./schemas.js";

/** Runs a paid embeddings job; resolves with the vectors and the settlement, or throws 502 (refunded). */
async function embedJob(res: Response, paid: PaidJob, deps: ChatDeps) {
  const { job, payment, model, startedAt } = paid;
  let vectors: number[][] | undefined;
  for await (const chunk of job.chunks) {
    if (Array.isArray(chunk.vectors)) vectors = chunk.vectors as number[][];
  }
  const outcome = await job.outcome;
  const settled = await settleOutcome(payment, outcome, deps, model, startedAt);
  if (settled.changeToken) res.setHeader("X-Cashu-Change", settled.changeToken);
  res.setHeader("X-Cost-Sats", String(settled.chargedSat));
  if (outcome.status !== "completed" || !vectors) {
    throw new ApiError(502, "provider_failed", `the provider failed: ${outcome.error ?? "no vectors"}`);
  }
  return { vectors, settled, promptTokens: outcome.billableUsage.promptTokens };
}

/** OpenAI's base64 encoding: the vector as little-endian float32 bytes. */
export function base64Floats(v: number[]): string {
  const buf = Buffer.alloc(v.length * 4);
  v.forEach((x, i) => buf.writeFloatLE(x, i * 4));
  return buf.toString("base64");
}

const money = (settled: SettledPayment) => ({
  cost: { sats: settled.chargedSat, change_sats: settled.changeSat },
  ...(settled.changeToken ? { cashu_change: settled.changeToken } : {}),
});

export function embeddingsRouter(deps: ChatDeps): Router {
  const router = Router();

  router.post("/v1/embeddings", async (req: Request, res: Response) => {
    const body = parseWith(EmbeddingsRequestSchema, req.body);
    await runPaidJob(req, res, deps, "embeddings", body, async (paid) => {
      const { vectors, settled, promptTokens } = await embedJob(res, paid, deps);
      res.json({
        object: "list",
        data: vectors.map((v, index) => ({
          object: "embedding",
          index,
          embedding: body.encoding_format === "base64" ? base64Floats(v) : v,
        })),
        model: paid.model,
        usage: {
          prompt_tokens: promptTokens,
          total_tokens: promptTokens,
          cost: { sats: settled.chargedSat, change_sats: settled.changeSat },
        },
        payment: receipt(paid.payment, settled),
      });
    });
  });

  /** Ollama's embed routes share one job; `answer` shapes the result. */
  const ollama = async (
    req: Request,
    res: Response,
    openAi: EmbeddingsRequest,
    answer: (vectors: number[][], promptTokens: number, ms: number) => Record<string, unknown>,
  ) => {
    const started = process.hrtime.bigint();
    await runPaidJob(req, res, deps, "embeddings", openAi, async (paid) => {
      const { vectors, settled, promptTokens } = await embedJob(res, paid, deps);
      const ns = Number(process.hrtime.bigint() - started);
      res.json({ ...answer(vectors, promptTokens, ns), ...money(settled) });
    });
  };

  router.post("/api/embed", async (req: Request, res: Response) => {
    const o = parseWith(OllamaEmbedRequestSchema, req.body);
    const inputs = typeof o.input === "string" ? [o.input] : o.input;
    if (inputs.length === 0) {
      res.json({ model: o.model, embeddings: [] }); // Ollama only loads the model: free
      return;
    }
    const dimensions = o.dimensions ?? undefined;
    const body = parseWith(EmbeddingsRequestSchema, {
      model: o.model,
      input: o.input,
      ...(dimensions ? { dimensions } : {}),
    });
    await ollama(req, res, body, (embeddings, promptTokens, ns) => ({
      model: o.model,
      embeddings,
      total_duration: ns,
      load_duration: 0,
      prompt_eval_count: promptTokens,
    }));
  });

  router.post("/api/embeddings", async (req: Request, res: Response) => {
    const o = parseWith(OllamaEmbeddingsRequestSchema, req.body);
    if (!o.prompt) {
      res.json({ embedding: [] }); // what Ollama answers for an empty prompt
      return;
    }
    const body = parseWith(EmbeddingsRequestSchema, { model: o.model, input: o.prompt });
    await ollama(req, res, body, ([embedding]) => ({ embedding }));
  });
  return router;
}

const paid = {
  security: ["cashu", "bearer", "l402"] as ("cashu" | "bearer" | "l402")[],
  headers: PaymentRequestHeaders,
};
const errors = {
  400: "malformed body or token",
  401: "unknown key",
  502: "the provider failed (nothing charged; X-Cashu comes back in X-Cashu-Change)",
  503: "no provider embeds with the model",
};
const required = (schema: typeof ErrorBodySchema | typeof OllamaErrorSchema) => ({
  description: "payment required or short",
  schema,
  headers: PaymentRequiredHeaders,
});

export const embeddingsRoutes: RouteGroup = {
  name: "embeddings",
  description: "OpenAI-compatible embeddings, paid per input token",
  errorSchema: ErrorBodySchema,
  routes: [
    {
      method: "post",
      path: "/v1/embeddings",
      summary: "Embeddings (OpenAI format; encoding_format float or base64)",
      description:
        "Served by provider nodes that announced the model as an embedding model. Paid per input token like /v1/chat/completions: `X-Cashu` (change in `X-Cashu-Change`) or `Authorization: Bearer <rc_…|sk-…|cashu token>`.",
      ...paid,
      body: EmbeddingsRequestSchema,
      responses: {
        200: {
          description: "the vectors",
          schema: EmbeddingsResponseSchema,
          headers: PaymentResponseHeaders,
        },
        402: required(ErrorBodySchema),
      },
      errors,
    },
  ],
};

export const ollamaEmbedRoutes: RouteGroup = {
  name: "ollama-embed",
  description: "Ollama-compatible embeddings, paid per input token",
  errorSchema: OllamaErrorSchema,
  routes: [
    {
      method: "post",
      path: "/api/embed",
      summary: "Embeddings (Ollama format); the answer carries cost and cashu_change",
      tags: ["ollama"],
      ...paid,
      body: OllamaEmbedRequestSchema,
      responses: {
        200: {
          description: "the vectors",
          schema: OllamaEmbedResponseSchema,
          headers: PaymentResponseHeaders,
        },
        402: required(OllamaErrorSchema),
      },
      errors,
    },
    {
      method: "post",
      path: "/api/embeddings",
      summary: "One embedding (Ollama's legacy format)",
      tags: ["ollama"],
      ...paid,
      body: OllamaEmbeddingsRequestSchema,
      responses: {
        200: {
          description: "the vector",
          schema: OllamaEmbeddingsResponseSchema,
          headers: PaymentResponseHeaders,
        },
        402: required(OllamaErrorSchema),
      },
      errors,
    },
  ],
};
