/**
 * The rest of Ollama's surface on the gateway: `POST /api/show` and `GET /api/ps` (shapes from
 * Ollama's API docs, filled from what the network serves), JSON bodies whatever their Content-Type
 * (Ollama's own curl examples send none), and Ollama's `{"error":"…"}` shape on every `/api/*`
 * answer, unknown routes, malformed JSON and too-large bodies included. `/api/v1/…` is the seeds'
 * alias of `/v1/…` and keeps the OpenAI shape.
 */
import express, { type NextFunction, type Request, type Response, Router } from "express";
import * as z from "zod";
import type { RouteGroup } from "../../src/shared/discovery/index.js";
import type { Logger } from "../../src/shared/index.js";
import type { Dispatcher } from "../routing/types.js";
import { ApiError, classifyError, type ErrorRenderer, parseWith, sendError } from "./errors.js";
import { OllamaErrorSchema } from "./ollama.js";

/** Ollama's error body (`error` is the message the `ollama` client shows) plus our type word. */
export const ollamaError: ErrorRenderer = (status, type, message, extra) => ({
  error: message,
  type,
  code: status,
  ...extra,
});

/** `/api/…` but not the `/api/v1/…` aliases of the OpenAI-shaped routes. */
export const isOllamaPath = (path: string) => path.startsWith("/api/") && !/^\/api\/v1(\/|$)/.test(path);

/**
 * Parses every `/api/*` POST body as JSON, whatever its Content-Type (`curl -d` sends
 * application/x-www-form-urlencoded). Runs after the gateway's own JSON parser, which leaves such
 * bodies alone; same size limit.
 */
export function ollamaBodyParser(limit: number) {
  const parse = express.json({ type: () => true, limit });
  return (req: Request, res: Response, next: NextFunction) =>
    isOllamaPath(req.path) ? parse(req, res, next) : next();
}

export interface OllamaMetaDeps {
  dispatcher: Pick<Dispatcher, "models"> & Partial<Pick<Dispatcher, "embeddingModels">>;
}

/** What the network knows of a model: it has no files here, so sizes and digests stay empty. */
const details = () => ({
  parent_model: "",
  format: "gguf",
  family: "",
  families: [] as string[],
  parameter_size: "",
  quantization_level: "",
});

const ShowRequestSchema = z.looseObject({
  model: z.string().min(1).max(200).optional(),
  /** the older clients' name for `model` */
  name: z.string().min(1).max(200).optional(),
  verbose: z.boolean().nullish(),
});

/** How long Ollama would keep a model loaded; the network keeps it as long as a node serves it. */
const KEEP_ALIVE_MS = 5 * 60_000;

export function ollamaMetaRouter(deps: OllamaMetaDeps): Router {
  const router = Router();
  const chat = () => new Map(deps.dispatcher.models().map((m) => [m.model, m.nodes]));
  const embed = () => new Map((deps.dispatcher.embeddingModels?.() ?? []).map((m) => [m.model, m.nodes]));

  router.post("/api/show", (req, res) => {
    const body = parseWith(ShowRequestSchema, req.body ?? {});
    const model = body.model ?? body.name;
    if (!model) throw new ApiError(400, "invalid_request", "model is required");
    const capabilities = [
      ...(chat().has(model) ? ["completion"] : []),
      ...(embed().has(model) ? ["embedding"] : []),
    ];
    if (capabilities.length === 0) {
      throw new ApiError(404, "model_not_found", `model '${model}' not found`);
    }
    res.json({
      license: "",
      modelfile: `# served by the Owlrun network through this gateway\nFROM ${model}\n`,
      parameters: "",
      template: "{{ .Prompt }}",
      details: details(),
      model_info: {},
      capabilities,
      modified_at: new Date(0).toISOString(),
    });
  });

  router.get("/api/ps", (_req, res) => {
    const names = new Set([...chat().keys(), ...embed().keys()]);
    const expires = new Date(Date.now() + KEEP_ALIVE_MS).toISOString();
    res.json({
      models: [...names].sort().map((name) => ({
        name,
        model: name,
        size: 0,
        digest: "",
        details: details(),
        expires_at: expires,
        size_vram: 0,
      })),
    });
  });
  return router;
}

/**
 * Mounted after every route: an unknown `/api/*` path answers Ollama's 404, and any error on an
 * `/api/*` request (malformed JSON, too large, thrown by a route) leaves in Ollama's shape.
 */
export function ollamaFallback(log: Logger) {
  return [
    (req: Request, _res: Response, next: NextFunction) =>
      next(
        isOllamaPath(req.path)
          ? new ApiError(404, "not_found", `404 page not found: ${req.method} ${req.path}`)
          : undefined,
      ),
    (err: unknown, req: Request, res: Response, next: NextFunction) => {
      if (!isOllamaPath(req.path)) return next(err);
      if (res.headersSent) return void res.end();
      sendError(res, classifyError(err, log), ollamaError);
    },
  ];
}

// ---- documented shapes (OpenAPI) ----
const DetailsSchema = z.looseObject({ format: z.string(), family: z.string() });
const ShowResponseSchema = z.looseObject({
  modelfile: z.string(),
  parameters: z.string(),
  template: z.string(),
  details: DetailsSchema,
  model_info: z.record(z.string(), z.unknown()),
  capabilities: z.array(z.string()).meta({ description: "completion and/or embedding" }),
  modified_at: z.string(),
});
const PsResponseSchema = z.object({
  models: z.array(
    z.looseObject({
      name: z.string(),
      model: z.string(),
      size: z.number().int(),
      digest: z.string(),
      details: DetailsSchema,
      expires_at: z.string(),
      size_vram: z.number().int(),
    }),
  ),
});

export const ollamaMetaRoutes: RouteGroup = {
  name: "ollama-meta",
  description: "Ollama model metadata (free): what the network serves, in Ollama's shapes",
  errorSchema: OllamaErrorSchema,
  routes: [
    {
      method: "post",
      path: "/api/show",
      summary: "Model details (Ollama shape); capabilities say completion and/or embedding",
      tags: ["ollama"],
      body: ShowRequestSchema,
      responses: { 200: { description: "the model", schema: ShowResponseSchema } },
      errors: { 400: "no model named", 404: "no node serves the model" },
    },
    {
      method: "get",
      path: "/api/ps",
      summary: "Models running now on the network (Ollama shape)",
      tags: ["ollama"],
      responses: { 200: { description: "models served right now", schema: PsResponseSchema } },
    },
  ],
};
