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
import { type Logger, timeline } from "../../src/shared/index.js";
import { splitCharge } from "../ledger/index.js";
import { embeddingBounds } from "../routing/index.js";
import type { Oracle } from "../oracle/index.js";
import type { PriceTable } from "../payments/pricing.js";
import type { AccountPayments, RequestPayment } from "../payments/account-payments.js";
import type { CashuPayments, SettledPayment } from "../payments/xcashu.js";
import {
  type Dispatcher,
  type JobHandle,
  type JobOutcome,
  NoProviderError,
  nodeRequestBody,
  promptBounds,
  type StreamChunk,
} from "../routing/index.js";
import { ApiError, ErrorBodySchema, errorBody, parseWith } from "./errors.js";
import {
  cashuPaymentRequest,
  clientAddress,
  type Paywall,
  paymentChallenge,
  readCredential,
} from "./paywall.js";
import type { ModelAliases } from "./aliases.js";
import type { JobLog } from "./joblog.js";
import { choiceCarries, ToolCallCollector } from "./tools.js";
import {
  type ChatCompletionRequest,
  ChatCompletionRequestSchema,
  ChatCompletionResponseSchema,
  type CompletionRequest,
  CompletionRequestSchema,
  type EmbeddingsRequest,
  CompletionResponseSchema,
  CompletionStreamSchema,
  PaymentRequestHeaders,
  PaymentRequiredHeaders,
  PaymentResponseHeaders,
  UUID,
} from "./schemas.js";

export const DEFAULT_MAX_TOKENS = 1024;

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
  paywall: Paywall;
  /** operator-mapped model names (`--model-alias`), and the default for `claude-…` names */
  aliases?: ModelAliases;
  log: Logger;
}

export type Kind = "chat" | "completions";
/** Every kind of paid job: embeddings bill input tokens only. */
export type PaidKind = Kind | "embeddings";
type PaidBody = ChatCompletionRequest | CompletionRequest | EmbeddingsRequest;

export function parseBody(kind: Kind, body: unknown): ChatCompletionRequest | CompletionRequest {
  return kind === "chat"
    ? parseWith(ChatCompletionRequestSchema, body)
    : parseWith(CompletionRequestSchema, body);
}

/** Accumulates a stream into one OpenAI response object for non-streaming clients. */
export class Collector {
  text = "";
  finishReason: string | null = null;
  id?: string;
  created?: number;
  readonly tools = new ToolCallCollector();
  add(chunk: StreamChunk) {
    this.id ??= chunk.id as string | undefined;
    this.created ??= chunk.created as number | undefined;
    for (const c of chunk.choices ?? []) {
      this.text += c.delta?.content ?? c.text ?? "";
      this.tools.add(c.delta?.tool_calls);
      if (c.finish_reason) this.finishReason = c.finish_reason;
    }
  }
  /** True when nothing at all was delivered (no text, no tool call). */
  get empty(): boolean {
    return this.text === "" && this.tools.calls.length === 0;
  }
}

function sse(res: Response, data: unknown) {
  res.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
}

/**
 * Owlrun's fields on a stream line (`message.content`, `done`), carried next to OpenAI's `choices`
 * so the seed's Owlrun clients and the `openai` SDK both read the answer with no opt-in.
 */
function owlrunLine(choices: StreamChunk["choices"], done: boolean) {
  const content = (choices ?? []).map((c) => c.delta?.content ?? c.text ?? "").join("");
  return { message: { role: "assistant", content }, done };
}

function costFields(settled: SettledPayment) {
  return { cost: { sats: settled.chargedSat, change_sats: settled.changeSat } };
}

/** The `payment` receipt of a paid response (BSVAPI style; extra field, OpenAI clients ignore it). */
export const PaymentReceiptSchema = z.looseObject({
  method: z.string(),
  amount_sats: z.number().int().nonnegative(),
  change_sats: z.number().int().nonnegative(),
  request_id: z.string(),
});

export function receipt(
  payment: RequestPayment,
  settled: SettledPayment,
): z.infer<typeof PaymentReceiptSchema> {
  return {
    method: payment.method,
    amount_sats: settled.chargedSat,
    change_sats: settled.changeSat,
    request_id: payment.holdId,
    ...payment.receiptFields,
  };
}

/**
 * What a request would be held or charged at: its prompt estimate plus the requested (or default)
 * completion, at the oracle's rate. The 402 challenge and POST /v1/price both use it.
 */
export function estimateRequest(
  kind: PaidKind,
  body: PaidBody,
  model: string,
  deps: Pick<ChatDeps, "prices" | "oracle">,
) {
  const btcUsd = deps.oracle.pricingRate();
  // The bound a node's prompt report is billed up to (bytes / 2 + template): never charged above.
  // Embeddings: the most input tokens a node may bill for this input, so no charge exceeds the hold.
  const promptTokens =
    kind === "embeddings"
      ? embeddingBounds((body as EmbeddingsRequest).input).cap
      : promptBounds(nodeRequestBody({ body, model, kind, maxTokens: 1 })).cap;
  const chat = kind === "chat" ? (body as ChatCompletionRequest) : undefined;
  const requested: number =
    kind === "embeddings"
      ? 0
      : (chat?.max_completion_tokens ??
        (body as CompletionRequest).max_tokens ??
        chat?.max_output_tokens ??
        DEFAULT_MAX_TOKENS);
  return {
    promptTokens,
    requested,
    btcUsd,
    sats: deps.prices.chargeSat(model, promptTokens, requested, btcUsd),
  };
}

/**
 * The chunks of one provider frame arrive in one event-loop turn: they leave in one socket write
 * (one write per token was the relay's top cost). `hold()` before each write, `release()` at the end.
 * The chunks reach the writer through promise jobs of that same turn, so the cork is lifted on the
 * next tick (after those jobs), not by a timer: a token alone in its turn costs no extra callback.
 */
export function turnCork(res: Response): { hold(): void; release(): void } {
  let corked = false;
  const uncork = () => {
    if (!corked) return;
    corked = false;
    res.uncork();
  };
  return {
    hold() {
      if (corked) return;
      corked = true;
      res.cork();
      process.nextTick(uncork);
    },
    release: uncork,
  };
}

/** The constant start of every relayed event of one response (see `relayedEvent`). */
export function relayedEventHead(id: string, object: string, created: number, model: string): string {
  return `data: {"id":${JSON.stringify(id)},"object":${JSON.stringify(object)},"created":${created},"model":${JSON.stringify(model)},"choices":`;
}

/**
 * One OpenAI stream event of relayed choices, byte for byte what `JSON.stringify` makes of
 * `{id, object, created, model, choices, message, done: false}`, with the constant head built once
 * per response: only the choices and the text are serialised per chunk.
 */
export function relayedEvent(head: string, choices: NonNullable<StreamChunk["choices"]>): string {
  const content = choices.map((c) => c.delta?.content ?? c.text ?? "").join("");
  return `${head}${JSON.stringify(choices)},"message":{"role":"assistant","content":${JSON.stringify(content)}},"done":false}\n\n`;
}

/** A request that is paid for and dispatched: what a response writer needs. */
export interface PaidJob {
  payment: RequestPayment;
  job: JobHandle;
  model: string;
  startedAt: number;
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
  kind: PaidKind,
  body: PaidBody,
  respond: (paid: PaidJob) => Promise<void>,
): Promise<void> {
  timeline?.("gw.arrive");
  const startedAt = Date.now();
  const route = req.path;
  const credential = readCredential(req, deps.paywall.methods);
  const cashuHeader = credential.kind === "xcashu" ? credential.token : undefined;
  // X-Cashu alone is a complete credential: a Bearer key next to it is not used for payment.
  const account = credential.kind === "bearer" ? await deps.accounts.authenticate(credential.key) : undefined;
  if (account) deps.accounts.rateLimit(account);

  // Which models may serve this: the requested one, then the fallbacks the client listed.
  const offers =
    kind === "embeddings" ? (deps.dispatcher.embeddingModels?.() ?? []) : deps.dispatcher.models();
  const named = [body.model, ...(body.models ?? [])];
  const candidates = deps.aliases ? named.map((m) => deps.aliases!.resolve(m, offers)) : named;
  const served = new Set(offers.map((m) => m.model));
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
      `no provider online serves ${named.join(", ")}; see GET /v1/models`,
      {
        "Retry-After": "5",
        ...(cashuHeader ? { "X-Cashu-Change": cashuHeader.trim() } : {}),
      },
    );
  }

  const { promptTokens, requested, sats: estimateSat, btcUsd } = estimateRequest(kind, body, model, deps);
  if (credential.kind === "none") {
    throw await paymentChallenge(deps.paywall, route, estimateSat, clientAddress(req));
  }
  const memo = `${kind} ${model}`;
  const minimum = deps.prices.chargeSat(model, promptTokens, 1, btcUsd);
  let payment: RequestPayment;
  let maxTokens: number;
  if (account) {
    ({ payment, maxTokens } = await deps.accounts.open(account, {
      model,
      promptTokens,
      requestedMaxTokens: requested,
      prices: deps.prices,
      btcUsd,
      memo,
    }));
  } else if (credential.kind === "l402" || credential.kind === "bsv") {
    const oneShot =
      credential.kind === "l402"
        ? await deps.paywall.l402.open(credential, route, minimum, memo)
        : await deps.paywall.bsv!.open(credential.txid, route, minimum, memo, estimateSat);
    payment = oneShot;
    maxTokens = Math.min(
      requested,
      deps.prices.affordableCompletionTokens(model, promptTokens, oneShot.row.amount_sat, btcUsd),
    );
  } else {
    // Cheap checks before the swap: format, trusted mint, enough value for the minimum charge.
    const info = deps.payments.inspect(cashuHeader!);
    if (info.amountSat < minimum) {
      // NUT-24: an underpaid token is a 400 with a fresh payment request (nothing was claimed).
      throw new ApiError(
        400,
        "insufficient_payment",
        `token carries ${info.amountSat} sats; this request needs at least ${minimum} (${estimateSat} for its whole max_tokens)`,
        { "X-Cashu": cashuPaymentRequest(deps.paywall, route, estimateSat) },
        { required_sats: minimum, amount_sats: estimateSat },
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
    const cashu = await deps.payments.open(info, memo, requestId?.toLowerCase());
    // What POST /v1/price quotes for this request as served: the charge never exceeds it.
    cashu.maxChargeSat = deps.prices.chargeSat(model, promptTokens, maxTokens, btcUsd);
    payment = cashu;
  }
  timeline?.("gw.paid");
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
        free: payment.free === true,
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
  // A provider failure is never charged (and so never paid), even after some text arrived; a buyer
  // who went away (cancelled) pays for what was delivered.
  const delivered =
    outcome.status !== "failed" && (usage.completionTokens > 0 || outcome.status === "completed");
  let chargeSat = delivered
    ? deps.prices.chargeSat(
        model,
        usage.promptTokens,
        usage.completionTokens,
        deps.oracle.pricingRate(),
        payment.discountPct ?? 0,
      )
    : 0;
  if (payment.maxChargeSat !== undefined) chargeSat = Math.min(chargeSat, payment.maxChargeSat);
  const settled = await payment.settle(
    chargeSat,
    outcome.nodeId,
    deps.providerSharePct,
    `${outcome.status} ${model}`,
  );
  // Every completed job is announced to its node, with 0 earned when nothing was (free, or floor 0).
  if (outcome.status === "completed" || settled.chargedSat > 0) {
    deps.onSettled?.(
      payment.holdId,
      usage.completionTokens,
      settled.chargedSat > 0 ? splitCharge(settled.chargedSat * 1000, deps.providerSharePct).providerMsat : 0,
    );
  }
  await deps.jobs.record({
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

/** Drains a job into one answer, settles it and sets the payment headers (the non-streaming answers). */
export async function collectAndSettle(
  res: Response,
  { job, payment, model, startedAt }: PaidJob,
  deps: ChatDeps,
) {
  const collector = new Collector();
  for await (const chunk of job.chunks) collector.add(chunk);
  const outcome = await job.outcome;
  const settled = await settleOutcome(payment, outcome, deps, model, startedAt);
  if (settled.changeToken) res.setHeader("X-Cashu-Change", settled.changeToken);
  res.setHeader("X-Cost-Sats", String(settled.chargedSat));
  return { collector, outcome, settled };
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
