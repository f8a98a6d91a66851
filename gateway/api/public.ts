/** Read-only routes: what wallets, agents and dashboards read before paying. */
import { type Request, type Response, Router } from "express";
import * as z from "zod";
import type { ModelAliases } from "./aliases.js";
import type { RouteGroup } from "../../src/shared/discovery/index.js";
import { COMMIT, VERSION } from "../../src/shared/index.js";
import { DEFAULT_PROVIDER_SHARE_PCT, MIN_CHARGE_SAT } from "../ledger/index.js";
import type { Oracle } from "../oracle/index.js";
import type { PriceTable } from "../payments/pricing.js";
import type { GatewayWallet } from "../payments/wallet.js";
import type { Dispatcher } from "../routing/types.js";
import { ApiError, ErrorBodySchema } from "./errors.js";
import type { JobLog } from "./joblog.js";
import type { Ledger } from "../ledger/index.js";
import { collectChange } from "../payments/recovery.js";
import { UUID } from "./schemas.js";

export interface PublicDeps {
  dispatcher: Dispatcher;
  ledger: Ledger;
  prices: PriceTable;
  oracle: Oracle;
  wallet: GatewayWallet;
  providerSharePct: number;
  jobs: JobLog;
  /** how paid routes can be paid (see api/paywall.ts) */
  paymentMethods: string[];
  /** model aliases, listed next to the models they map to */
  aliases?: ModelAliases;
  /** the operator's choice of default model */
  defaultModel?: string;
}

/**
 * The model a client should use when it names none: the operator's choice while online, else the
 * one most nodes serve, then the dearest (the market's own quality signal), never just the first
 * by name.
 */
export function defaultModel(
  deps: Pick<PublicDeps, "dispatcher" | "prices" | "defaultModel">,
): string | null {
  const online = deps.dispatcher.models();
  if (deps.defaultModel && online.some((m) => m.model === deps.defaultModel)) return deps.defaultModel;
  const price = (model: string) => deps.prices.rate(model).per_m_output_usd;
  const best = [...online].sort(
    (a, b) => b.nodes - a.nodes || price(b.model) - price(a.model) || a.model.localeCompare(b.model),
  )[0];
  return best?.model ?? null;
}

export const HealthResponseSchema = z.object({ status: z.literal("ok") });
export const InfoResponseSchema = z.looseObject({
  name: z.string(),
  version: z.string(),
  mints: z.array(z.string()).meta({ description: "trusted mints; the first is where to mint tokens" }),
  payment_methods: z.array(z.string()),
  fee_split: z.object({ provider_pct: z.number(), gateway_pct: z.number() }),
  min_charge_sats: z.number().int(),
  unit: z.literal("sat"),
  default_model: z
    .string()
    .nullable()
    .meta({ description: "the model to use when a request names none (null: no model online)" }),
});
export const ModelSchema = z
  .looseObject({
    id: z.string().meta({ description: "an Ollama tag such as qwen2.5:0.5b" }),
    object: z.literal("model"),
    created: z.number().int(),
    owned_by: z.string(),
    providers: z.number().int().meta({ description: "nodes online serving it" }),
    alias_of: z
      .string()
      .optional()
      .meta({ description: "an operator alias (--model-alias): the served model this name maps to" }),
    capabilities: z
      .array(z.enum(["completion", "embedding"]))
      .meta({ description: "what nodes serve it for: chat/completions, /v1/embeddings, or both" }),
    pricing: z.object({ per_m_input_usd: z.number(), per_m_output_usd: z.number() }),
    routecat_pricing: z.object({
      input_per_1m_tokens_usd: z.number(),
      output_per_1m_tokens_usd: z.number(),
      input_per_1m_tokens_sats: z.number(),
      output_per_1m_tokens_sats: z.number(),
    }),
  })
  .meta({ id: "Model" });
export const ModelsResponseSchema = z.object({ object: z.literal("list"), data: z.array(ModelSchema) });
export const OracleRateResponseSchema = z.looseObject({
  btc_usd: z.number(),
  btc_daily_avg: z.number(),
  status: z.enum(["live", "stale", "offline", "unavailable"]).meta({
    description: "unavailable: no sane sample yet and no fixed rate; paid requests answer 503",
  }),
  source: z.string(),
  updated_at: z.string().nullable(),
  samples_24h: z.number().int(),
  rolling_24h_avg: z.number().nullable().meta({ description: "average of the last 24 h of samples now" }),
  published: z
    .object({
      btc_usd_avg: z.number(),
      day: z.string().meta({ description: "the UTC day averaged" }),
      published_at: z.string().meta({ description: "midnight UTC at its end" }),
      samples: z.number().int(),
    })
    .nullable()
    .meta({ description: "the 24 h average published at the last midnight UTC" }),
  pricing_basis: z.enum(["published_daily_average", "rolling_24h_average", "fixed"]),
  live: z.object({ btc_usd: z.number(), at: z.string().nullable() }).meta({ description: "the live sample" }),
  pricing_rate: z
    .number()
    .nullable()
    .meta({ description: "BTC/USD every price uses now (= btc_daily_avg = /v1/stats btc_usd)" }),
  formula: z.string(),
  provider_share_pct: z.number(),
  margin: z.object({
    provider_pct: z.number(),
    gateway_pct: z.number().meta({ description: "the gateway's share of each job: inference_pct + fx_pct" }),
    inference_pct: z.number().meta({ description: "the gateway's fee on inference" }),
    fx_pct: z.number().meta({
      description: "what pricing on the average adds (or, negative, saves) against the live sample",
    }),
    floor: z.object({
      sats: z.number().int(),
      provider_sats: z.number().int(),
      gateway_sats: z.number().int(),
    }),
  }),
});
export const StatsResponseSchema = z.object({
  nodes_online: z.number().int(),
  jobs_24h: z.number().int(),
  tokens_24h: z.number().int(),
  btc_usd: z.number().meta({ description: "the BTC/USD rate used for pricing now" }),
  version: z.string(),
  commit: z.string().meta({ description: 'git commit of the running build ("unknown" if not known)' }),
});
export const AuditQuerySchema = z.object({
  page: z.coerce.number().int().min(1).max(1_000_000).optional().meta({ description: "1-based page" }),
});
export const AuditResponseSchema = z.object({
  jobs: z.array(
    z.object({
      id: z.string(),
      model: z.string(),
      tokens_in: z.number().int(),
      tokens_out: z.number().int(),
      duration_ms: z.number().int(),
      cost_sats: z.number().int(),
      status: z.string(),
      timestamp: z.string(),
    }),
  ),
  total: z.number().int(),
  page: z.number().int(),
  page_size: z.number().int(),
});
export const ChangeResponseSchema = z.object({
  type: z.literal("cashu_change"),
  token: z.string(),
  change_sats: z.number().int(),
});

const get = (path: string, summary: string, schema: z.ZodType) => ({
  method: "get" as const,
  path,
  summary,
  responses: { 200: { description: summary, schema } },
});

export const publicRoutes: RouteGroup = {
  name: "public",
  description: "Read-only: what wallets, agents and dashboards read before paying",
  errorSchema: ErrorBodySchema,
  routes: [
    get("/healthz", "Liveness", HealthResponseSchema),
    get("/v1/info", "Gateway info: trusted mints, payment methods, fee split", InfoResponseSchema),
    get("/v1/models", "Models online with prices (Owlrun and RouteCat shapes)", ModelsResponseSchema),
    get("/v1/oracle/rate", "BTC/USD rate used for pricing, and the price formula", OracleRateResponseSchema),
    get("/v1/stats", "Nodes online, jobs and tokens in the last 24 h", StatsResponseSchema),
    {
      ...get("/v1/audit", "Anonymised record of served jobs, newest first, 50 a page", AuditResponseSchema),
      query: AuditQuerySchema,
      errors: { 400: "page is not a whole number from 1" },
    },
    {
      ...get(
        "/v1/cashu/change/:id",
        "Change of an X-Cashu request, for a client that went away mid-stream (id from X-Owlrun-Request-Id)",
        ChangeResponseSchema,
      ),
      description:
        "The id is a bearer capability: whoever holds it can take the change, so keep it as secret as the token you paid with. Once the change was redeemed at the mint (NUT-07 state SPENT) the gateway answers 410 and never shows the token again.",
      errors: {
        400: "not a UUID",
        404: "no change stored under that id",
        410: "the change was already redeemed at the mint",
      },
    },
  ],
};

export function publicRouter(deps: PublicDeps): Router {
  const r = Router();

  r.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });

  r.get("/v1/info", (_req, res) => {
    res.json({
      name: "owlrun gateway",
      version: VERSION,
      mints: deps.wallet.trustedMints,
      payment_methods: deps.paymentMethods,
      stream_formats: {
        default: "openai chunks that also carry owlrun message/done fields",
        owlrun: "X-Stream-Format: owlrun (or ?format=owlrun): owlrun events alone",
      },
      fee_split: { provider_pct: deps.providerSharePct, gateway_pct: 100 - deps.providerSharePct },
      min_charge_sats: MIN_CHARGE_SAT,
      default_provider_share_pct: DEFAULT_PROVIDER_SHARE_PCT,
      unit: "sat",
      default_model: defaultModel(deps),
    });
  });

  r.get("/v1/models", (_req, res) => {
    // Listed without a rate too (sats 0): paying is what answers 503 then, not discovery.
    const btcUsd = deps.oracle.maybePricingRate();
    const offers = deps.dispatcher.models();
    const embedders = deps.dispatcher.embeddingModels?.() ?? [];
    const capabilities = (model: string) => [
      ...(offers.some((o) => o.model === model) ? (["completion"] as const) : []),
      ...(embedders.some((e) => e.model === model) ? (["embedding"] as const) : []),
    ];
    // Aliases are listed as models of their own (Anthropic clients check the name), priced as their target.
    const entries = [
      ...offers.map((m) => ({ id: m.model, model: m.model, nodes: m.nodes })),
      // Embedding-only models too, so an OpenAI client can discover what /v1/embeddings serves.
      ...embedders
        .filter((e) => !offers.some((o) => o.model === e.model))
        .map((m) => ({ id: m.model, model: m.model, nodes: m.nodes })),
      ...(deps.aliases?.listed(offers) ?? []).map((a) => ({
        id: a.alias,
        model: a.target,
        nodes: offers.find((o) => o.model === a.target)!.nodes,
        alias_of: a.target,
      })),
    ];
    res.json({
      object: "list",
      data: entries.map((m) => {
        const rate = deps.prices.rate(m.model);
        const sats = btcUsd ? deps.prices.satsPerMillion(m.model, btcUsd) : { input: 0, output: 0 };
        return {
          id: m.id,
          ...("alias_of" in m ? { alias_of: m.alias_of } : {}),
          capabilities: capabilities(m.model),
          object: "model",
          created: 0,
          owned_by: "owlrun",
          providers: m.nodes,
          pricing: { per_m_input_usd: rate.per_m_input_usd, per_m_output_usd: rate.per_m_output_usd },
          routecat_pricing: {
            input_per_1m_tokens_usd: rate.per_m_input_usd,
            output_per_1m_tokens_usd: rate.per_m_output_usd,
            input_per_1m_tokens_sats: sats.input,
            output_per_1m_tokens_sats: sats.output,
          },
        };
      }),
    });
  });

  r.get("/v1/oracle/rate", (_req, res) => {
    const rate = deps.oracle.rate();
    // Sats = USD / pricing rate: against the live sample a job costs (live/pricing − 1) more sats.
    const fxPct =
      rate.btc_daily_avg > 0 ? Math.round((rate.btc_usd / rate.btc_daily_avg - 1) * 10_000) / 100 : 0;
    const inferencePct = 100 - deps.providerSharePct;
    res.json({
      ...rate,
      live: { btc_usd: rate.btc_usd, at: rate.updated_at },
      pricing_rate: deps.oracle.maybePricingRate() ?? null,
      formula: "sats = max(2, ceil((in*usd_in + out*usd_out) / 1e6 / btc_daily_avg * 1e8))",
      provider_share_pct: deps.providerSharePct,
      margin: {
        provider_pct: deps.providerSharePct,
        gateway_pct: Math.round((inferencePct + fxPct) * 100) / 100,
        inference_pct: inferencePct,
        fx_pct: fxPct,
        floor: { sats: MIN_CHARGE_SAT, provider_sats: 1, gateway_sats: MIN_CHARGE_SAT - 1 },
      },
    });
  });

  r.get("/v1/stats", async (_req, res) => {
    res.json({
      nodes_online: deps.dispatcher.nodesOnline(),
      ...(await deps.jobs.last24h()),
      // The number prices use (RouteCat: "the BTC/USD exchange rate used for pricing").
      btc_usd: deps.oracle.pricingRate(),
      version: VERSION,
      commit: COMMIT,
    });
  });

  r.get("/v1/audit", async (req, res) => {
    const query = AuditQuerySchema.safeParse(req.query);
    if (!query.success) throw new ApiError(400, "invalid_request", "page must be a whole number from 1");
    res.json(await deps.jobs.page(query.data.page ?? 1));
  });

  /** Change of an X-Cashu request, for a client that went away mid-stream. */
  r.get("/v1/cashu/change/:id", async (req: Request, res: Response) => {
    const id = String(req.params.id ?? "").toLowerCase();
    if (!UUID.test(id)) throw new ApiError(400, "invalid_request", "change ids are UUIDs");
    // Change still owed (the mint was down when the request ended) is made now.
    const change = await collectChange(deps.ledger, deps.wallet, id);
    if (!change) throw new ApiError(404, "not_found", "no change is stored under that id");
    // The id is a bearer capability: once the client redeemed its change at the mint (NUT-07), a
    // leaked id is worth nothing and the token is not shown again.
    if (await deps.wallet.tokenRedeemed(change.token)) {
      throw new ApiError(
        410,
        "change_redeemed",
        "this change was already redeemed at the mint; it is not shown again",
      );
    }
    res.json({ type: "cashu_change", token: change.token, change_sats: change.amount });
  });

  return r;
}
