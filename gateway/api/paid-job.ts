/**
 * The payment pipeline every paid inference route shares (OpenAI, Ollama, Anthropic, Responses,
 * embeddings): credentials → model → price checks → claim/hold → dispatch (`runPaidJob`), and the
 * bill for what was delivered (`settleOutcome`). Anything failing before the first byte refunds in
 * full in `X-Cashu-Change`.
 */
import type { Request, Response } from "express";
import * as z from "zod";
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
} from "../routing/index.js";
import { ApiError, parseWith } from "./errors.js";
import {
  cashuPaymentRequest,
  clientAddress,
  type Paywall,
  paymentChallenge,
  readCredential,
} from "./paywall.js";
import type { ModelAliases } from "./aliases.js";
import type { JobLog } from "./joblog.js";
import {
  type ChatCompletionRequest,
  ChatCompletionRequestSchema,
  type CompletionRequest,
  CompletionRequestSchema,
  type EmbeddingsRequest,
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

/** A request that is paid for and dispatched: what a response writer needs. */
export interface PaidJob {
  payment: RequestPayment;
  job: JobHandle;
  model: string;
  startedAt: number;
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
