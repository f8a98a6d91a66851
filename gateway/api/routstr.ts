/**
 * Routstr's Lightning invoices for keys: `POST /lightning/invoice` {amount_sats, purpose, api_key}
 * → a bolt11 invoice, and `GET /lightning/invoice/:id/status` (also under `/v1`).
 * - purpose "topup": paid invoices are minted and credited once to the key, the same way as
 *   `/v1/auth/topup` (creditPaidTopups).
 * - purpose "create": the invoice id is a fresh secret (not the payment hash, which anyone holding
 *   the bolt11 can compute); the first status call after payment makes the sk- key, credits it and
 *   shows it that once. Keys are stored hashed, so it cannot be shown again.
 */
import { type Request, Router } from "express";
import * as z from "zod";
import { okJson, type RouteDoc, type RouteGroup } from "../../src/shared/discovery/index.js";
import { paymentHashOf } from "../payments/l402.js";
import type { OneShotRegistry } from "../payments/oneshot.js";
import { type AccountDeps, authenticateRequest, creditPaidTopups } from "./accounts.js";
import { claimHash, claimTopup, newClaimSecret } from "./pay.js";
import { PaymentError } from "../payments/errors.js";
import { ApiError, ErrorBodySchema, parseWith } from "./errors.js";

export const LightningInvoiceRequestSchema = z.object({
  amount_sats: z.number().int().positive().max(1_000_000),
  purpose: z.enum(["create", "topup"]),
  api_key: z.string().max(200).optional().meta({ description: "the key to top up (or send it as Bearer)" }),
});
export const LightningInvoiceResponseSchema = z.object({
  invoice_id: z.string(),
  bolt11: z.string(),
  amount_sats: z.number().int(),
  expires_at: z.number().int().meta({ description: "unix seconds" }),
  payment_hash: z.string(),
});
export const LightningInvoiceStatusSchema = z.object({
  status: z.enum(["pending", "paid", "expired"]),
  api_key: z.string().nullable().meta({
    description:
      'purpose "create": the new key, in the first status answer after payment only (store it); otherwise null',
  }),
  amount_sats: z.number().int(),
  paid_at: z.number().int().nullable(),
  created_at: z.number().int(),
  expires_at: z.number().int().nullable(),
});

const DEFAULT_EXPIRY_S = 3600;

export function routstrRouter(deps: AccountDeps & { claims: OneShotRegistry }): Router {
  const r = Router();
  const store = deps.accounts.accounts;

  /** purpose "create": a top-up claim (as /v1/topup) whose claim secret is the invoice id. */
  const createKeyInvoice = async (amountSats: number) => {
    const mint = deps.wallet.trustedMints[0];
    if (!mint) throw new ApiError(503, "mint_unavailable", "the gateway has no mint");
    const quote = await deps.wallet.createMintQuote(mint, amountSats, "routstr new key");
    const paymentHash = paymentHashOf(quote.request);
    const claim = newClaimSecret();
    await deps.claims.addTopupClaim({
      payment_hash: paymentHash,
      quote: quote.quote,
      mint,
      amount_sat: amountSats,
      account_id: null,
      claim_hash: claim.hash,
    });
    return {
      invoice_id: claim.secret,
      bolt11: quote.request,
      amount_sats: amountSats,
      expires_at: quote.expiry ?? Math.floor(Date.now() / 1000) + DEFAULT_EXPIRY_S,
      payment_hash: paymentHash,
    } satisfies z.infer<typeof LightningInvoiceResponseSchema>;
  };

  /** The status of a "create" invoice; undefined when `id` is not one. */
  const createStatus = async (id: string) => {
    const row = await deps.claims.topupClaimBySecretHash(claimHash(id));
    if (!row) return undefined;
    let apiKey: string | null = null;
    if (row.state === "pending") {
      try {
        apiKey = (await claimTopup({ ...deps, store: deps.claims }, row, "sk-")).token ?? null;
      } catch (err) {
        // Not paid yet (402), or another status call claimed it a moment ago (401): report the state.
        if (!(err instanceof PaymentError)) throw err;
      }
    }
    const now = (await deps.claims.topupClaimBySecretHash(claimHash(id)))!;
    const paid = now.state === "claimed";
    return {
      status: paid ? "paid" : "pending",
      api_key: apiKey,
      amount_sats: now.amount_sat,
      paid_at: null,
      created_at: Math.floor(now.created_at / 1000),
      expires_at: null,
    } satisfies z.infer<typeof LightningInvoiceStatusSchema>;
  };

  const create = async (req: Request) => {
    const body = parseWith(LightningInvoiceRequestSchema, req.body);
    if (body.purpose === "create") return createKeyInvoice(body.amount_sats);
    if (body.api_key) req.headers.authorization = `Bearer ${body.api_key}`;
    const account = await authenticateRequest(deps.accounts, req);
    const mint = deps.wallet.trustedMints[0];
    if (!mint) throw new ApiError(503, "mint_unavailable", "the gateway has no mint");
    const quote = await deps.wallet.createMintQuote(mint, body.amount_sats, "routstr top-up");
    const expiresAt = quote.expiry ?? Math.floor(Date.now() / 1000) + DEFAULT_EXPIRY_S;
    await store.addTopup({
      quote: quote.quote,
      accountId: (await store.payer(account.id)).id,
      mint,
      amount: body.amount_sats,
      request: quote.request,
      expiry: expiresAt,
    });
    return {
      invoice_id: quote.quote,
      bolt11: quote.request,
      amount_sats: body.amount_sats,
      expires_at: expiresAt,
      payment_hash: paymentHashOf(quote.request),
    } satisfies z.infer<typeof LightningInvoiceResponseSchema>;
  };

  const status = async (id: string) => {
    const created = await createStatus(id);
    if (created) return created;
    let row = await store.topup(id);
    if (!row) throw new ApiError(404, "not_found", "Invoice not found");
    if (row.state === "pending") {
      await creditPaidTopups(deps, row.account_id);
      row = (await store.topup(id))!;
    }
    const paid = row.state === "credited";
    const expired = !paid && row.expiry !== null && row.expiry * 1000 < Date.now();
    return {
      status: paid ? "paid" : expired ? "expired" : "pending",
      api_key: null,
      amount_sats: row.amount,
      paid_at: null,
      created_at: Math.floor(row.created_at / 1000),
      expires_at: row.expiry,
    } satisfies z.infer<typeof LightningInvoiceStatusSchema>;
  };

  for (const base of ["", "/v1"]) {
    r.post(`${base}/lightning/invoice`, async (req, res) => {
      res.json(await create(req));
    });
    r.get(`${base}/lightning/invoice/:id/status`, async (req, res) => {
      res.json(await status(String(req.params.id)));
    });
  }
  return r;
}

const docs = (base: string): RouteDoc[] => [
  {
    method: "post",
    path: `${base}/lightning/invoice`,
    summary:
      'Routstr: a Lightning invoice that tops up a key (purpose "topup", Bearer key) or makes a new one (purpose "create", no key)',
    security: ["bearer"],
    body: LightningInvoiceRequestSchema,
    responses: okJson("the invoice", LightningInvoiceResponseSchema),
    errors: { 400: "malformed body", 401: "missing or unknown key (topup)", 503: "no mint" },
  },
  {
    method: "get",
    path: `${base}/lightning/invoice/:id/status`,
    summary:
      'Routstr: the state of an invoice; a paid one is credited now, and a paid "create" shows its new key once',
    responses: okJson("the state", LightningInvoiceStatusSchema),
    errors: { 404: "no such invoice" },
  },
];

export const routstrRoutes: RouteGroup = {
  name: "routstr",
  description: "Routstr's Lightning top-up of a key, at /lightning/… and /v1/lightning/…",
  errorSchema: ErrorBodySchema,
  routes: [...docs(""), ...docs("/v1")],
};
