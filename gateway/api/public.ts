/** Read-only routes: what wallets, agents and dashboards read before paying. */
import { type Request, type Response, Router } from "express";
import { VERSION } from "../../src/shared/index.js";
import { DEFAULT_PROVIDER_SHARE_PCT, MIN_CHARGE_SAT } from "../ledger/index.js";
import type { Oracle } from "../oracle/index.js";
import type { PriceTable } from "../payments/pricing.js";
import type { GatewayWallet } from "../payments/wallet.js";
import type { Dispatcher } from "../routing/types.js";
import { ApiError } from "./errors.js";
import type { JobLog } from "./joblog.js";

export interface PublicDeps {
  dispatcher: Dispatcher;
  prices: PriceTable;
  oracle: Oracle;
  wallet: GatewayWallet;
  providerSharePct: number;
  jobs: JobLog;
  /** how paid routes can be paid (see api/paywall.ts) */
  paymentMethods: string[];
}

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
    const page = Number(req.query.page ?? 1);
    if (!Number.isSafeInteger(page) || page < 1 || page > 1_000_000) {
      throw new ApiError(400, "invalid_request", "page must be a whole number from 1");
    }
    res.json(deps.jobs.page(page));
  });

  r.get("/v1/broadcasts", (_req, res) => {
    res.json({ broadcasts: [] });
  });

  /** Change of an X-Cashu request, for a client that went away mid-stream. */
  r.get("/v1/cashu/change/:id", (req: Request, res: Response) => {
    const id = String(req.params.id ?? "");
    if (!/^[0-9a-f-]{36}$/.test(id)) throw new ApiError(400, "invalid_request", "change ids are UUIDs");
    const change = deps.wallet.change(id);
    if (!change) throw new ApiError(404, "not_found", "no change is stored under that id");
    res.json({ type: "cashu_change", token: change.token, change_sats: change.amount });
  });

  return r;
}
