/**
 * POST /v1/chat/completions and /v1/completions, paid per request with `X-Cashu` (account keys
 * come in a later slice). OpenAI wire format by default, so the official `openai` client works;
 * `X-Stream-Format: owlrun` (or `?format=owlrun`) switches the stream to Owlrun's shape.
 *
 * Money order: check → claim → hold → dispatch → stream → settle → change. Anything failing
 * before the first byte refunds in full in `X-Cashu-Change`.
 */
import { randomUUID } from "node:crypto";
import type { Request, Response } from "express";
import type { Logger } from "../../src/shared/index.js";
import { splitCharge } from "../ledger/index.js";
import type { Oracle } from "../oracle/index.js";
import { PaymentError } from "../payments/errors.js";
import { estimatePromptTokens, type PriceTable } from "../payments/pricing.js";
import type { AccountPayments, RequestPayment } from "../payments/account-payments.js";
import type { CashuPayments, SettledPayment } from "../payments/xcashu.js";
import {
  type Dispatcher,
  type JobHandle,
  type JobOutcome,
  NoProviderError,
  type StreamChunk,
} from "../routing/types.js";
import { ApiError, errorBody } from "./errors.js";
import type { JobLog } from "./joblog.js";
import {
  type ChatCompletionRequest,
  ChatCompletionRequestSchema,
  type CompletionRequest,
  CompletionRequestSchema,
  parseRequest,
} from "./schemas.js";

export const DEFAULT_MAX_TOKENS = 1024;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface ChatDeps {
  jobs: JobLog;
  /** holds this process is serving right now: the stale-hold sweeper never touches them */
  live: Set<string>;
  /** after a job is billed: tell the node what it earned (job_complete) */
  onSettled?: (jobId: string, tokens: number, providerMsat: number) => void;
  dispatcher: Dispatcher;
  payments: CashuPayments;
  accounts: AccountPayments;
  prices: PriceTable;
  oracle: Oracle;
  providerSharePct: number;
  log: Logger;
}

export type Kind = "chat" | "completions";

export function parseBody(kind: Kind, body: unknown): ChatCompletionRequest | CompletionRequest {
  return kind === "chat"
    ? parseRequest(ChatCompletionRequestSchema, body)
    : parseRequest(CompletionRequestSchema, body);
}

/** Accumulates a stream into one OpenAI response object for non-streaming clients. */
export class Collector {
  text = "";
  finishReason: string | null = null;
  id?: string;
  created?: number;
  add(chunk: StreamChunk) {
    this.id ??= chunk.id as string | undefined;
    this.created ??= chunk.created as number | undefined;
    for (const c of chunk.choices ?? []) {
      this.text += c.delta?.content ?? c.text ?? "";
      if (c.finish_reason) this.finishReason = c.finish_reason;
    }
  }
}

function sse(res: Response, data: unknown) {
  res.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
}

function costFields(settled: SettledPayment) {
  return { cost: { sats: settled.chargedSat, change_sats: settled.changeSat } };
}

/** A request that is paid for and dispatched: what a response writer needs. */
export interface PaidJob {
  payment: RequestPayment;
  job: JobHandle;
  model: string;
  startedAt: number;
}

export function chatHandler(kind: Kind, deps: ChatDeps) {
  return async (req: Request, res: Response) => {
    const body = parseBody(kind, req.body);
    const owlrunFormat = req.get("x-stream-format") === "owlrun" || req.query.format === "owlrun";
    await runPaidJob(req, res, deps, kind, body, (paid) =>
      body.stream
        ? streamResponse(res, paid, deps, { kind, owlrunFormat })
        : jsonResponse(res, paid, deps, { kind }),
    );
  };
}

/**
 * The payment pipeline every paid inference route shares (OpenAI and Ollama shapes alike):
 * credentials → model choice → price checks → claim/hold → dispatch, then `respond` writes the
 * answer and settles through `settleOutcome`. Anything failing before dispatch succeeds refunds in
 * full (`X-Cashu-Change`); the hold is marked live for the sweeper while `respond` runs.
 */
export async function runPaidJob(
  req: Request,
  res: Response,
  deps: ChatDeps,
  kind: Kind,
  body: ChatCompletionRequest | CompletionRequest,
  respond: (paid: PaidJob) => Promise<void>,
): Promise<void> {
  const startedAt = Date.now();
  const cashuHeader = req.get("x-cashu");
  const bearer = /^Bearer\s+(.+)$/i.exec(req.get("authorization") ?? "")?.[1];
  if (!cashuHeader && !bearer) {
    throw new ApiError(
      402,
      "payment_required",
      "pay with an X-Cashu token, or use an API key (rc_…, sk-…) or a cashu token as the Bearer key",
    );
  }
  // X-Cashu alone is a complete credential: a Bearer key next to it is not used for payment.
  const account = cashuHeader ? undefined : await deps.accounts.authenticate(bearer!);
  if (account) deps.accounts.rateLimit(account);

  // Which models may serve this: the requested one, then the fallbacks the client listed.
  const candidates = [body.model, ...(body.models ?? [])];
  const served = new Set(deps.dispatcher.models().map((m) => m.model));
  // OpenRouter's max_price (USD per 1M tokens): models priced above it are not candidates.
  const maxPrice = body.provider?.max_price;
  const affordable = (m: string) => {
    const r = deps.prices.rate(m);
    return (
      (maxPrice?.prompt === undefined || r.per_m_input_usd <= maxPrice.prompt) &&
      (maxPrice?.completion === undefined || r.per_m_output_usd <= maxPrice.completion)
    );
  };
  const model = candidates.find((m) => served.has(m) && affordable(m));
  if (!model) {
    // Nothing was claimed: the client's own token comes back as the "refund" (Owlrun clients read
    // X-Cashu-Change and may have dropped the proofs they sent).
    throw new ApiError(
      503,
      "no_providers",
      `no provider online serves ${candidates.join(", ")}; see GET /v1/models`,
      {
        "Retry-After": "5",
        ...(cashuHeader ? { "X-Cashu-Change": cashuHeader.trim() } : {}),
      },
    );
  }

  const btcUsd = deps.oracle.pricingRate();
  const promptTokens = estimatePromptTokens(body as { messages?: unknown; prompt?: unknown });
  const requested: number =
    (kind === "chat" ? (body as ChatCompletionRequest).max_completion_tokens : undefined) ??
    body.max_tokens ??
    DEFAULT_MAX_TOKENS;
  let payment: RequestPayment;
  let maxTokens: number;
  if (account) {
    ({ payment, maxTokens } = await deps.accounts.open(account, {
      model,
      promptTokens,
      requestedMaxTokens: requested,
      prices: deps.prices,
      btcUsd,
      memo: `${kind} ${model}`,
    }));
  } else {
    // Cheap checks before the swap: format, trusted mint, enough value for the minimum charge.
    const info = deps.payments.inspect(cashuHeader!);
    const minimum = deps.prices.chargeSat(model, promptTokens, 1, btcUsd);
    if (info.amountSat < minimum) {
      throw new PaymentError(
        "insufficient_balance",
        `token carries ${info.amountSat} sats; this request needs at least ${minimum}`,
        402,
        { required_sats: minimum },
      );
    }
    maxTokens = Math.min(
      requested,
      deps.prices.affordableCompletionTokens(model, promptTokens, info.amountSat, btcUsd),
    );
    const requestId = req.get("x-owlrun-request-id");
    if (requestId !== undefined && !UUID.test(requestId)) {
      throw new ApiError(400, "invalid_request", "X-Owlrun-Request-Id must be a UUID");
    }
    payment = await deps.payments.open(info, `${kind} ${model}`, requestId?.toLowerCase());
  }
  deps.live.add(payment.holdId);
  try {
    const abort = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) abort.abort();
    });

    let job;
    try {
      job = await deps.dispatcher.dispatch({
        jobId: payment.holdId,
        model,
        kind,
        body: { ...body, model, max_tokens: maxTokens },
        maxTokens,
        preferences: body.provider
          ? {
              order: body.provider.order,
              only: body.provider.only,
              ignore: body.provider.ignore,
              allowFallbacks: body.provider.allow_fallbacks,
              sort: body.provider.sort,
            }
          : undefined,
        signal: abort.signal,
      });
    } catch (err) {
      const refund = await payment.refund(`not served: ${(err as Error).message}`);
      if (refund.changeToken) res.setHeader("X-Cashu-Change", refund.changeToken);
      if (err instanceof NoProviderError) {
        throw new ApiError(503, "no_providers", `no provider could take the job: ${err.message}`, {
          "Retry-After": "5",
        });
      }
      throw err;
    }

    res.setHeader("X-Owlrun-Request-Id", payment.holdId);
    res.setHeader("X-Owlrun-Node", job.nodeId);
    await respond({ payment, job, model, startedAt });
  } finally {
    deps.live.delete(payment.holdId);
  }
}

/** Bills what was delivered (nothing when nothing was) and returns the change. */
export async function settleOutcome(
  payment: RequestPayment,
  outcome: JobOutcome,
  deps: ChatDeps,
  model: string,
  startedAt: number,
) {
  const usage = outcome.billableUsage;
  const delivered = usage.completionTokens > 0 || outcome.status === "completed";
  const chargeSat = delivered
    ? deps.prices.chargeSat(model, usage.promptTokens, usage.completionTokens, deps.oracle.pricingRate())
    : 0;
  const settled = await payment.settle(
    chargeSat,
    outcome.nodeId,
    deps.providerSharePct,
    `${outcome.status} ${model}`,
  );
  if (settled.chargedSat > 0) {
    deps.onSettled?.(
      payment.holdId,
      usage.completionTokens,
      splitCharge(settled.chargedSat * 1000, deps.providerSharePct).providerMsat,
    );
  }
  deps.jobs.record({
    model,
    tokensIn: usage.promptTokens,
    tokensOut: usage.completionTokens,
    durationMs: Date.now() - startedAt,
    costSats: settled.chargedSat,
    status: outcome.status,
  });
  return settled;
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
  for await (const chunk of job.chunks) {
    if (res.destroyed) continue; // keep draining so the outcome settles
    const choices = (chunk.choices ?? []).filter(
      (c) => (c.delta?.content ?? c.text ?? "") !== "" || c.finish_reason || c.delta?.role,
    );
    if (choices.length === 0) continue; // the node's own usage chunk: we send ours at the end
    if (ctx.owlrunFormat) {
      const content = choices.map((c) => c.delta?.content ?? c.text ?? "").join("");
      sse(res, { model: model, message: { role: "assistant", content }, done: false });
    } else {
      sse(res, { id, object, created, model: model, choices });
    }
  }
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
        `the provider failed mid-stream: ${outcome.error ?? "unknown"}; charged only for what was delivered`,
      ),
    );
  }
  if (ctx.owlrunFormat) {
    sse(res, { model: model, message: { role: "assistant", content: "" }, done: true, usage });
  } else {
    sse(res, { id, object, created, model: model, choices: [], usage });
  }
  if (settled.changeSat > 0 || settled.changeToken) {
    // Also a valid (empty) chunk, so OpenAI SDK loops over `chunk.choices[0]?.…` do not trip on it.
    const change = { type: "cashu_change", token: settled.changeToken ?? "", change_sats: settled.changeSat };
    sse(res, ctx.owlrunFormat ? change : { id, object, created, model: model, choices: [], ...change });
  }
  sse(res, "[DONE]");
  res.end();
}

async function jsonResponse(
  res: Response,
  { job, payment, model, startedAt }: PaidJob,
  deps: ChatDeps,
  ctx: { kind: Kind },
) {
  const collector = new Collector();
  for await (const chunk of job.chunks) collector.add(chunk);
  const outcome = await job.outcome;
  const settled = await settleOutcome(payment, outcome, deps, model, startedAt);
  if (settled.changeToken) res.setHeader("X-Cashu-Change", settled.changeToken);
  res.setHeader("X-Cost-Sats", String(settled.chargedSat));
  if (outcome.status === "failed" && collector.text === "") {
    res
      .status(502)
      .json(errorBody(502, "provider_failed", `the provider failed: ${outcome.error ?? "unknown"}`));
    return;
  }
  const created = collector.created ?? Math.floor(Date.now() / 1000);
  const usage = usageBody(outcome, settled);
  const finish = collector.finishReason ?? (outcome.status === "completed" ? "stop" : "length");
  if (ctx.kind === "chat") {
    res.json({
      id: `chatcmpl-${randomUUID()}`,
      object: "chat.completion",
      created,
      model: model,
      choices: [{ index: 0, message: { role: "assistant", content: collector.text }, finish_reason: finish }],
      usage,
    });
  } else {
    res.json({
      id: `cmpl-${randomUUID()}`,
      object: "text_completion",
      created,
      model: model,
      choices: [{ index: 0, text: collector.text, finish_reason: finish }],
      usage,
    });
  }
}
