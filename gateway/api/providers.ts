/**
 * Provider-facing routes, authenticated by the provider key: earnings and payout history, and the
 * balance as an ecash token (RouteCat's withdraw-ecash). Also computes what `heartbeat_ack` tells a
 * node about its money.
 */
import { type Request, Router } from "express";
import bolt11 from "bolt11";
import * as z from "zod";
import type { RouteGroup } from "../../src/shared/discovery/index.js";
import { Accounts, type Ledger } from "../ledger/index.js";
import type { Oracle } from "../oracle/index.js";
import type { ProviderPayouts } from "../payments/payouts.js";
import type { GatewayWallet } from "../payments/wallet.js";
import type { Routing } from "../routing/index.js";
import { WithdrawalIdHeader, withdrawAsEcash } from "./accounts.js";
import { ApiError, ErrorBodySchema } from "./errors.js";

export interface ProviderDeps {
  ledger: Ledger;
  wallet: GatewayWallet;
  routing: Routing;
  payouts: ProviderPayouts;
  oracle: Oracle;
}

const startOfUtcDay = () => {
  const d = new Date();
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
};

function paymentHashOf(invoice: string): string {
  try {
    return bolt11.decode(invoice).tagsObject.payment_hash ?? "";
  } catch {
    return "";
  }
}

/** A node's money as the Owlrun protocol reports it (withdraw_history amounts in msat, as Owlrun expects). */
export async function earningsOf(deps: ProviderDeps, nodeId: string) {
  const balance = await deps.ledger.balance(Accounts.provider(nodeId));
  const history = (await deps.payouts.history(nodeId)).filter((p) => p.state === "paid");
  return {
    balance_sats: Math.floor(balance / 1000),
    earned_total_sats: Math.floor((await deps.ledger.earned(nodeId)) / 1000),
    earned_today_sats: Math.floor((await deps.ledger.earned(nodeId, startOfUtcDay())) / 1000),
    withdraw_history: history.map((p) => ({
      amount_sats: p.amount * 1000,
      payment_hash: paymentHashOf(p.invoice),
      timestamp: new Date(p.updated_at).toISOString(),
    })),
  };
}

export const EarningsResponseSchema = z.looseObject({
  node_id: z.string(),
  balance_sats: z.number().int(),
  earned_total_sats: z.number().int(),
  earned_today_sats: z.number().int(),
  withdraw_history: z.array(
    z.object({
      amount_sats: z.number().int().meta({ description: "msat, as Owlrun nodes expect" }),
      payment_hash: z.string(),
      timestamp: z.string(),
    }),
  ),
  failed_jobs: z
    .number()
    .int()
    .meta({ description: "jobs the node failed mid-stream: unpaid for buyer and node" }),
  disputed_jobs: z
    .number()
    .int()
    .meta({ description: "usage reports that disagreed with the gateway's count" }),
  payout_threshold_sats: z.number().int(),
  lightning_address: z.string().nullable(),
  payouts: z.array(
    z.object({
      id: z.string(),
      amount_sats: z.number().int(),
      fee_sats: z.number().int().nullable(),
      state: z.string(),
      address: z.string().nullable(),
      at: z.string(),
    }),
  ),
});
export const WithdrawEcashResponseSchema = z.object({
  token: z.string(),
  amount_sats: z.number().int(),
  withdrawal_id: z.string().meta({ description: "send it as X-Owlrun-Request-Id to fetch this token again" }),
});

export const providerApiRoutes: RouteGroup = {
  name: "providers",
  description: "What a provider node earned, and its balance as ecash",
  errorSchema: ErrorBodySchema,
  routes: [
    {
      method: "get",
      path: "/v1/provider/earnings",
      summary: "Earnings, balance and payouts of the node that owns the provider key",
      security: ["provider"],
      responses: { 200: { description: "earnings", schema: EarningsResponseSchema } },
      errors: { 401: "missing or unknown provider key" },
    },
    {
      method: "post",
      path: "/v1/provider/withdraw-ecash",
      summary: "The node's whole balance as a cashu token (RouteCat's withdraw-ecash)",
      security: ["provider"],
      headers: WithdrawalIdHeader,
      responses: { 200: { description: "the token", schema: WithdrawEcashResponseSchema } },
      errors: { 401: "missing or unknown provider key", 402: "nothing to withdraw yet" },
    },
  ],
};

export function providerRouter(deps: ProviderDeps): Router {
  const r = Router();
  const node = async (req: Request): Promise<string> => {
    const key = /^Bearer\s+(.+)$/i.exec(req.get("authorization") ?? "")?.[1]?.trim();
    const nodeId =
      key && (await deps.routing.keys.verify(key)) ? await deps.routing.nodeForKey(key) : undefined;
    if (!nodeId)
      throw new ApiError(
        401,
        "invalid_key",
        "a registered provider key is required (Authorization: Bearer owlr_prov_…)",
      );
    return nodeId;
  };

  r.get("/v1/provider/earnings", async (req, res) => {
    const nodeId = await node(req);
    const info = await deps.routing.node(nodeId);
    res.json({
      node_id: nodeId,
      ...(await earningsOf(deps, nodeId)),
      failed_jobs: info?.failures ?? 0,
      disputed_jobs: info?.disputes ?? 0,
      payout_threshold_sats: deps.payouts.thresholdSat,
      lightning_address: info?.lightningAddress ?? null,
      payouts: (await deps.payouts.history(nodeId)).map((p) => ({
        id: p.id,
        amount_sats: p.amount,
        fee_sats: p.fee,
        state: p.state,
        address: p.address,
        at: new Date(p.created_at).toISOString(),
      })),
    });
  });

  r.post("/v1/provider/withdraw-ecash", async (req, res) => {
    const account = Accounts.provider(await node(req));
    const out = await withdrawAsEcash(deps, req, account, async () => {
      const sats = Math.floor((await deps.ledger.balance(account)) / 1000);
      if (sats < 1) throw new ApiError(402, "insufficient_balance", "nothing to withdraw yet");
      return sats;
    });
    res.json(out);
  });
  return r;
}
