/**
 * `POST /v1/responses`: the OpenAI Responses API (what Codex-style clients and the newest SDKs
 * call), served by translating to the chat-completions job every provider already runs and the
 * provider's chunks back into response items and `response.*` events. Paid exactly like
 * /v1/chat/completions through `runPaidJob` (X-Cashu with change, rc_/sk- keys, a raw cashu token as
 * the Bearer key, L402); change leaves in `X-Cashu-Change` (JSON) and as `cashu_change` in the final response object
 * (streams: the one in `response.completed`).
 */
import type { Request, Response } from "express";
import type { RouteGroup } from "../../../src/shared/discovery/index.js";
import {
  type ChatDeps,
  type PaidJob,
  parseBody,
  receipt,
  runPaidJob,
  settleOutcome,
  turnCork,
} from "../chat.js";
import { ErrorBodySchema, errorBody, parseWith } from "../errors.js";
import { PaymentRequestHeaders, PaymentRequiredHeaders, PaymentResponseHeaders } from "../schemas.js";
import { type FinalState, ResponseBuilder, type ResponseEvent } from "./output.js";
import {
  type ResponsesRequest,
  ResponseObjectSchema,
  ResponsesRequestSchema,
  ResponseStreamSchema,
} from "./schemas.js";
import { toChatRequest } from "./translate.js";

export { ResponsesRequestSchema } from "./schemas.js";

function usageOf(
  billable: { promptTokens: number; completionTokens: number },
  cost: { sats: number; change_sats: number },
) {
  return {
    input_tokens: billable.promptTokens,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: billable.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: billable.promptTokens + billable.completionTokens,
    cost,
  };
}

async function respond(
  req: ResponsesRequest,
  res: Response,
  paid: PaidJob,
  deps: ChatDeps,
  streaming: boolean,
): Promise<void> {
  const { job, payment, model, startedAt } = paid;
  const write = (e: ResponseEvent) => {
    if (!res.destroyed) res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
  };
  const out = new ResponseBuilder(req, model, streaming ? write : undefined);
  const cork = turnCork(res);
  if (streaming) {
    res.status(200);
    res.setHeader("Content-Type", "text/event-stream");
    res.setHeader("Cache-Control", "no-cache");
    res.setHeader("Connection", "keep-alive");
    res.flushHeaders();
    out.start();
  }
  for await (const chunk of job.chunks) {
    if (res.destroyed) continue; // keep draining so the outcome settles
    if (streaming) cork.hold();
    out.add(chunk);
  }
  cork.release();
  const outcome = await job.outcome;
  const settled = await settleOutcome(payment, outcome, deps, model, startedAt);
  if (res.destroyed) return; // change is stored server-side under X-Owlrun-Request-Id
  const cost = { sats: settled.chargedSat, change_sats: settled.changeSat };
  const state: FinalState = {
    status:
      outcome.status === "failed" ? "failed" : out.finishReason === "length" ? "incomplete" : "completed",
    usage: usageOf(outcome.billableUsage, cost),
    ...(outcome.status === "failed"
      ? {
          error: {
            code: "server_error",
            message: `the provider failed: ${outcome.error ?? "unknown"}; you were not charged`,
          },
        }
      : {}),
    // The change rides in the final response object: the SDK's stream helper throws on event
    // types it does not know, so a separate `cashu_change` event would break `responses.stream()`.
    extra: {
      payment: receipt(payment, settled),
      ...(settled.changeToken
        ? { cashu_change: { token: settled.changeToken, change_sats: settled.changeSat } }
        : {}),
    },
  };
  if (!streaming) {
    if (settled.changeToken) res.setHeader("X-Cashu-Change", settled.changeToken);
    res.setHeader("X-Cost-Sats", String(settled.chargedSat));
    if (outcome.status === "failed" && out.empty) {
      res.status(502).json(errorBody(502, "provider_failed", state.error!.message));
      return;
    }
    res.json(out.finish(state));
    return;
  }
  out.finish(state);
  res.end();
}

export function responsesHandler(deps: ChatDeps) {
  return async (req: Request, res: Response) => {
    const r = parseWith(ResponsesRequestSchema, req.body);
    const body = parseBody("chat", toChatRequest(r));
    await runPaidJob(req, res, deps, "chat", body, (paid) => respond(r, res, paid, deps, r.stream === true));
  };
}

export const responsesRoutes: RouteGroup = {
  name: "responses",
  description: "The OpenAI Responses API on the same paid pipeline as chat completions",
  errorSchema: ErrorBodySchema,
  routes: [
    {
      method: "post",
      path: "/v1/responses",
      summary: "Create a response (OpenAI Responses API: input items, function tools, streaming events)",
      description:
        "OpenAI Responses API, served by the chat-completions providers: `input` as a string or items (messages, `function_call`, `function_call_output`), `instructions`, function `tools` and `tool_choice`, `max_output_tokens`, `temperature`, `top_p`. Responses are not stored (`previous_response_id` is refused). Paid like /v1/chat/completions: `X-Cashu` (change in `X-Cashu-Change` and in the response's `cashu_change` {token, change_sats}, also in the streamed `response.completed`) or `Authorization: Bearer <rc_…|sk-…|cashu token>`.",
      security: ["cashu", "bearer", "l402"],
      headers: PaymentRequestHeaders,
      body: ResponsesRequestSchema,
      responses: {
        200: {
          description: "the response object, or (stream: true) its events",
          schema: ResponseObjectSchema,
          alternatives: { "text/event-stream": ResponseStreamSchema },
          headers: PaymentResponseHeaders,
        },
        402: {
          description: "no payment, or the token is spent or too small, or the balance is short",
          schema: ErrorBodySchema,
          headers: PaymentRequiredHeaders,
        },
      },
      errors: {
        400: "malformed body or token, a tool other than a function, previous_response_id",
        401: "unknown key",
        413: "request too large",
        429: "rate limited (see Retry-After)",
        502: "the provider failed before answering",
        503: "no provider online serves the model (the X-Cashu token comes back in X-Cashu-Change)",
      },
    },
  ],
};
