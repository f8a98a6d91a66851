/** Read-only routes: what wallets, agents and dashboards read before paying. */
import { type Request, type Response, Router } from "express";
import * as z from "zod";
import type { RouteGroup } from "../../src/shared/discovery/index.js";
import { VERSION } from "../../src/shared/index.js";
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
});
export const ModelSchema = z
  .looseObject({
    id: z.string().meta({ description: "an Ollama tag such as qwen2.5:0.5b" }),
    object: z.literal("model"),
    created: z.number().int(),
    owned_by: z.string(),
    providers: z.number().int().meta({ description: "nodes online serving it" }),
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
  status: z.enum(["live", "stale", "offline"]),
  source: z.string(),
  updated_at: z.string().nullable(),
  samples_24h: z.number().int(),
  pricing_rate: z.number(),
  formula: z.string(),
  provider_share_pct: z.number(),
});
export const StatsResponseSchema = z.object({
  nodes_online: z.number().int(),
  jobs_24h: z.number().int(),
  tokens_24h: z.number().int(),
  btc_usd: z.number(),
  version: z.string(),
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
export const BroadcastsResponseSchema = z.object({ broadcasts: z.array(z.unknown()) });
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
    get("/v1/broadcasts", "Operator broadcasts", BroadcastsResponseSchema),
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
      stream_formats: { default: "openai", owlrun: "X-Stream-Format: owlrun (or ?format=owlrun)" },
      fee_split: { provider_pct: deps.providerSharePct, gateway_pct: 100 - deps.providerSharePct },
      min_charge_sats: MIN_CHARGE_SAT,
      default_provider_share_pct: DEFAULT_PROVIDER_SHARE_PCT,
      unit: "sat",
    });
  });

  r.get("/v1/models", (_req, res) => {
    const btcUsd = deps.oracle.pricingRate();
    res.json({
      object: "list",
      data: deps.dispatcher.models().map((m) => {
        const rate = deps.prices.rate(m.model);
        const sats = deps.prices.satsPerMillion(m.model, btcUsd);
        return {
          id: m.model,
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
    res.json({
      ...rate,
      pricing_rate: deps.oracle.pricingRate(),
      formula: "sats = max(2, ceil((in*usd_in + out*usd_out) / 1e6 / btc_daily_avg * 1e8))",
      provider_share_pct: deps.providerSharePct,
    });
  });

  r.get("/v1/stats", (_req, res) => {
    res.json({
      nodes_online: deps.dispatcher.nodesOnline(),
      ...deps.jobs.last24h(),
      btc_usd: deps.oracle.rate().btc_usd,
      version: VERSION,
    });
  });

  r.get("/v1/audit", (req, res) => {
    const query = AuditQuerySchema.safeParse(req.query);
    if (!query.success) throw new ApiError(400, "invalid_request", "page must be a whole number from 1");
    res.json(deps.jobs.page(query.data.page ?? 1));
  });

  r.get("/v1/broadcasts", (_req, res) => {
    res.json({ broadcasts: [] });
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
