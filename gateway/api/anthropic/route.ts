/**
 * `POST /v1/messages` (also `?beta=true`, as Claude Code sends it) and `POST /v1/messages/count_tokens`:
 * Anthropic's Messages API on the paid pipeline. Credentials as Anthropic clients send them —
 * `x-api-key` or `Authorization: Bearer` (rc_ key, sk- session, raw cashu token), or `X-Cashu` —
 * with `anthropic-version` / `anthropic-beta` accepted and ignored. Every error, also a malformed
 * body, answers in Anthropic's shape, so this router parses its own JSON (mounted before the
 * gateway's parser).
 */
import express, { type NextFunction, type Request, type Response, Router } from "express";
import type { RouteDoc, RouteGroup } from "../../../src/shared/discovery/index.js";
import { promptBounds } from "../../routing/index.js";
import { type ChatDeps, parseBody, runPaidJob } from "../chat.js";
import { classifyError, parseWith, sendError } from "../errors.js";
import { PaymentRequiredHeaders, PaymentResponseHeaders } from "../schemas.js";
import {
  AnthropicErrorSchema,
  CountTokensRequestSchema,
  CountTokensResponseSchema,
  MessageSchema,
  MessagesRequestSchema,
  MessageStreamSchema,
} from "./schemas.js";
import { anthropicResponse } from "./stream.js";
import { anthropicError, openAiBody, openAiConversation } from "./translate.js";
import * as z from "zod";

/** Anthropic clients send the key in `x-api-key`: the paywall reads Bearer keys. */
function apiKeyAsBearer(req: Request): void {
  const key = req.get("x-api-key");
  if (key && !req.get("authorization")) req.headers.authorization = `Bearer ${key.trim()}`;
}

/**
 * Routstr documents `ANTHROPIC_BASE_URL=https://…/v1` for Claude Code; the Anthropic SDKs append
 * `/v1/messages` to the base, so those clients call `/v1/v1/messages`: the same routes.
 */
const DOUBLED_V1 = ["/v1/v1/messages", "/v1/v1/messages/count_tokens"];

export function anthropicRouter(deps: ChatDeps, maxBodyBytes: number): Router {
  const router = Router();
  const json = express.json({ limit: maxBodyBytes, type: () => true });
  for (const path of DOUBLED_V1)
    router.post(path, (req: Request, _res: Response, next: NextFunction) => {
      req.url = req.url.slice("/v1".length);
      next();
    });
  router.post("/v1/messages/count_tokens", json, (req: Request, res: Response) => {
    const body = parseWith(CountTokensRequestSchema, req.body);
    res.json({ input_tokens: promptBounds(openAiConversation(body)).estimate });
  });
  router.post("/v1/messages", json, async (req: Request, res: Response, next: NextFunction) => {
    try {
      apiKeyAsBearer(req);
      const request = parseWith(MessagesRequestSchema, req.body);
      const conversation = openAiBody(request, request.model);
      const body = parseBody("chat", conversation);
      await runPaidJob(req, res, deps, "chat", body, (paid) =>
        anthropicResponse(res, paid, deps, {
          stream: request.stream === true,
          model: request.model,
          inputEstimate: promptBounds(conversation).estimate,
        }),
      );
    } catch (err) {
      next(err);
    }
  });
  router.use(
    ["/v1/messages", "/v1/messages/count_tokens"],
    (err: unknown, _req: Request, res: Response, _next: NextFunction) => {
      if (res.headersSent) return void res.end();
      sendError(res, classifyError(err, deps.log), anthropicError);
    },
  );
  return router;
}

// ---- documented shapes (OpenAPI) ----

const AnthropicHeaders = z.object({
  "x-api-key": z
    .string()
    .optional()
    .meta({ description: "rc_ key, sk- session key or a raw cashu token (same as Authorization: Bearer)" }),
  "X-Cashu": z.string().optional().meta({ description: "a cashu token that pays this request" }),
  "anthropic-version": z.string().optional().meta({ description: "accepted, not needed" }),
  "anthropic-beta": z.string().optional().meta({ description: "accepted, ignored" }),
});

const messagesRoute: RouteDoc = {
  method: "post",
  path: "/v1/messages",
  summary: "Anthropic Messages API (Claude Code, the Anthropic SDKs), streaming or not",
  description:
    "Anthropic's Messages API served by the models online here (`claude-…` names map to them: `--model-alias`, else the model most nodes serve). Pay with `x-api-key` / `Authorization: Bearer <rc_…|sk-…|cashu token>` or `X-Cashu: <token>` (change in `X-Cashu-Change`, or the `cashu_change` event after `message_stop` when streaming). Tools (`tool_use` / `tool_result`) work; image and document blocks are refused. Also at `/v1/messages?beta=true`.",
  tags: ["anthropic"],
  security: ["cashu", "bearer", "l402"],
  headers: AnthropicHeaders,
  body: MessagesRequestSchema,
  responses: {
    200: {
      description: "the message, or (stream: true) Anthropic's event stream",
      schema: MessageSchema,
      alternatives: { "text/event-stream": MessageStreamSchema },
      headers: PaymentResponseHeaders,
    },
    402: {
      description: "payment required or short (billing_error)",
      schema: AnthropicErrorSchema,
      headers: PaymentRequiredHeaders,
    },
  },
  errors: {
    400: "malformed body (invalid_request_error), image blocks, or a bad token",
    401: "unknown key (authentication_error)",
    413: "request too large",
    429: "rate limited (rate_limit_error)",
    502: "the provider failed (api_error)",
    503: "no provider serves the model (overloaded_error)",
  },
};

export const anthropicRoutes: RouteGroup = {
  name: "anthropic",
  description: "Anthropic Messages API (Claude Code points ANTHROPIC_BASE_URL here)",
  errorSchema: AnthropicErrorSchema,
  routes: [
    messagesRoute,
    {
      method: "post",
      path: "/v1/messages/count_tokens",
      summary: "Count a Messages request's input tokens (the gateway's estimate; free)",
      tags: ["anthropic"],
      body: CountTokensRequestSchema,
      responses: { 200: { description: "input tokens", schema: CountTokensResponseSchema } },
      errors: { 400: "malformed body (invalid_request_error)" },
    },
    ...DOUBLED_V1.map((path): RouteDoc => ({
      method: "post",
      path,
      summary: `${path.slice("/v1".length)} for clients whose ANTHROPIC_BASE_URL ends in /v1 (Routstr's Claude Code setup)`,
      tags: ["anthropic"],
      responses: { 200: { description: `as ${path.slice("/v1".length)}`, schema: z.looseObject({}) } },
    })),
  ],
};
