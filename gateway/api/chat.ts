/**
 * POST /v1/chat/completions and /v1/completions, paid per request (X-Cashu, keys, L402, BSV).
 * Stream lines carry OpenAI's `choices` and Owlrun's `message`/`done` together, so the `openai`
 * client and the Owlrun seed's clients both work unmodified; `X-Stream-Format: owlrun` (or
 * `?format=owlrun`) sends Owlrun's shape alone.
 *
 * Money order: check → claim → hold → dispatch → stream → settle → change. Anything failing
 * before the first byte refunds in full in `X-Cashu-Change`.
 */
import { randomUUID } from "node:crypto";
import type { Request, Response } from "express";
import * as z from "zod";
import type { RouteDoc, RouteGroup } from "../../src/shared/discovery/index.js";
import type { SettledPayment } from "../payments/xcashu.js";
import type { JobOutcome } from "../routing/index.js";
import { ErrorBodySchema, errorBody } from "./errors.js";
import { choiceCarries } from "./tools.js";
import {
  ChatCompletionRequestSchema,
  ChatCompletionResponseSchema,
  type ChatCompletionRequest,
  type CompletionRequest,
  CompletionRequestSchema,
  CompletionResponseSchema,
  CompletionStreamSchema,
  PaymentRequestHeaders,
  PaymentRequiredHeaders,
  PaymentResponseHeaders,
} from "./schemas.js";
import {
  type ChatDeps,
  type Kind,
  type PaidJob,
  parseBody,
  receipt,
  runPaidJob,
  settleOutcome,
} from "./paid-job.js";
import {
  collectAndSettle,
  owlrunLine,
  relayedEvent,
  relayedEventHead,
  sse,
  turnCork,
} from "./relay-write.js";

export {
  type ChatDeps,
  DEFAULT_MAX_TOKENS,
  estimateRequest,
  type Kind,
  type PaidJob,
  type PaidKind,
  parseBody,
  PaymentReceiptSchema,
  receipt,
  runPaidJob,
  settleOutcome,
} from "./paid-job.js";
export {
  collectAndSettle,
  Collector,
  owlrunLine,
  relayedEvent,
  relayedEventHead,
  sse,
  turnCork,
} from "./relay-write.js";

function costFields(settled: SettledPayment) {
  return { cost: { sats: settled.chargedSat, change_sats: settled.changeSat } };
}

/** RouteCat's documented defaults, sent to the node when the request has none. */
export const DEFAULT_TEMPERATURE = 0.7;
export const DEFAULT_TOP_P = 1.0;
function withSamplingDefaults<T extends ChatCompletionRequest | CompletionRequest>(body: T): T {
  return {
    ...body,
    temperature: body.temperature ?? DEFAULT_TEMPERATURE,
    top_p: body.top_p ?? DEFAULT_TOP_P,
  };
}

export function chatHandler(kind: Kind, deps: ChatDeps) {
  return async (req: Request, res: Response) => {
    const body = withSamplingDefaults(parseBody(kind, req.body));
    const owlrunFormat = req.get("x-stream-format") === "owlrun" || req.query.format === "owlrun";
    await runPaidJob(req, res, deps, kind, body, (paid) =>
      body.stream
        ? streamResponse(res, paid, deps, { kind, owlrunFormat })
        : jsonResponse(res, paid, deps, { kind }),
    );
  };
}

function usageBody(outcome: JobOutcome, settled: SettledPayment) {
  const u = outcome.billableUsage;
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    ...costFields(settled),
  };
}

async function streamResponse(
  res: Response,
  { job, payment, model, startedAt }: PaidJob,
  deps: ChatDeps,
  ctx: { kind: Kind; owlrunFormat: boolean },
) {
  res.status(200);
  res.setHeader("Content-Type", "text/event-stream");
  res.setHeader("Cache-Control", "no-cache");
  res.setHeader("Connection", "keep-alive");
  res.flushHeaders();
  const id = `chatcmpl-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  const object = ctx.kind === "chat" ? "chat.completion.chunk" : "text_completion";
  const head = relayedEventHead(id, object, created, model);
  const cork = turnCork(res);
  for await (const chunk of job.chunks) {
    if (res.destroyed) continue; // keep draining so the outcome settles
    cork.hold();
    const choices = (chunk.choices ?? []).filter(choiceCarries);
    if (choices.length === 0) continue; // the node's own usage chunk: we send ours at the end
    if (ctx.owlrunFormat) sse(res, { model, ...owlrunLine(choices, false) });
    else res.write(relayedEvent(head, choices));
  }
  cork.release();
  const outcome = await job.outcome;
  const settled = await settleOutcome(payment, outcome, deps, model, startedAt);
  if (res.destroyed) return; // change is stored server-side under X-Owlrun-Request-Id
  const usage = usageBody(outcome, settled);
  if (outcome.status === "failed") {
    sse(
      res,
      errorBody(
        502,
        "provider_failed",
        `the provider failed mid-stream: ${outcome.error ?? "unknown"}; you were not charged`,
      ),
    );
  }
  // The receipt and the change (X-Cashu) ride in the last event before [DONE]: OpenAI clients find
  // the usage chunk last, Owlrun clients find the cashu_change event last (docs/architecture.md).
  const paid = receipt(payment, settled);
  const change =
    settled.changeSat > 0 || settled.changeToken
      ? { type: "cashu_change", token: settled.changeToken ?? "", change_sats: settled.changeSat }
      : undefined;
  if (ctx.owlrunFormat) {
    // Owlrun's own shape (opt-in): the done event, the receipt, then the change event.
    sse(res, { model, ...owlrunLine([], true), usage });
    sse(res, { type: "payment", payment: paid });
    if (change) sse(res, change);
  } else {
    sse(res, {
      id,
      object,
      created,
      model,
      choices: [],
      usage,
      payment: paid,
      ...owlrunLine([], true),
      ...change,
    });
  }
  sse(res, "[DONE]");
  res.end();
}

async function jsonResponse(res: Response, paid: PaidJob, deps: ChatDeps, ctx: { kind: Kind }) {
  const { payment, model } = paid;
  const { collector, outcome, settled } = await collectAndSettle(res, paid, deps);
  if (outcome.status === "failed" && collector.empty) {
    res
      .status(502)
      .json(errorBody(502, "provider_failed", `the provider failed: ${outcome.error ?? "unknown"}`));
    return;
  }
  const created = collector.created ?? Math.floor(Date.now() / 1000);
  const usage = usageBody(outcome, settled);
  const calls = collector.tools.calls;
  let finish = collector.finishReason ?? (outcome.status === "completed" ? "stop" : "length");
  if (calls.length > 0 && finish === "stop") finish = "tool_calls";
  if (ctx.kind === "chat") {
    // OpenAI: content is null when the answer is only tool calls.
    const message =
      calls.length > 0
        ? { role: "assistant", content: collector.text === "" ? null : collector.text, tool_calls: calls }
        : { role: "assistant", content: collector.text };
    res.json({
      id: `chatcmpl-${randomUUID()}`,
      object: "chat.completion",
      created,
      model: model,
      choices: [{ index: 0, message, finish_reason: finish }],
      usage,
      payment: receipt(payment, settled),
    });
  } else {
    res.json({
      id: `cmpl-${randomUUID()}`,
      object: "text_completion",
      created,
      model: model,
      choices: [{ index: 0, text: collector.text, finish_reason: finish }],
      usage,
      payment: receipt(payment, settled),
    });
  }
}

/** A paid inference route as OpenAPI sees it: X-Cashu or a Bearer key, JSON or SSE, change back. */
const paidRoute = (path: string, summary: string, body: z.ZodType, answer: z.ZodType): RouteDoc => ({
  method: "post",
  path,
  summary,
  description:
    "OpenAI-compatible. Pay with `X-Cashu: <token>` (change in `X-Cashu-Change`, or the last SSE event when streaming) or with `Authorization: Bearer <rc_…|sk-…|cashu token>`. Set `stream: true` for Server-Sent Events.",
  security: ["cashu", "bearer", "l402"],
  headers: PaymentRequestHeaders,
  body,
  responses: {
    200: {
      description: "the answer, as JSON or (stream: true) as an SSE stream",
      schema: answer,
      alternatives: { "text/event-stream": CompletionStreamSchema },
      headers: PaymentResponseHeaders,
    },
    402: {
      description: "no payment, or the token is spent or too small, or the balance is short",
      schema: ErrorBodySchema,
      headers: PaymentRequiredHeaders,
    },
  },
  errors: {
    400: "malformed body or token, a mint that is not trusted, or a token below the minimum (NUT-24: a fresh `X-Cashu: creqA…` request comes back)",
    401: "unknown key",
    413: "request too large",
    429: "rate limited (see Retry-After)",
    502: "the provider failed before answering",
    503: "no provider online serves the model (the X-Cashu token comes back in X-Cashu-Change)",
  },
});

export const chatRoutes: RouteGroup = {
  name: "inference",
  description: "OpenAI-compatible inference, paid per request with ecash or from an account",
  errorSchema: ErrorBodySchema,
  routes: [
    paidRoute(
      "/v1/chat/completions",
      "Chat completion (OpenAI format, streaming or not)",
      ChatCompletionRequestSchema,
      ChatCompletionResponseSchema,
    ),
    paidRoute(
      "/v1/completions",
      "Text completion (OpenAI legacy format, streaming or not)",
      CompletionRequestSchema,
      CompletionResponseSchema,
    ),
  ],
};
