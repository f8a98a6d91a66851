/**
 * Paying without an account, and the bookkeeping of accounts that have one:
 * - `POST /v1/price` (no auth, BSVAPI): the sats a chat or completion request would be held or
 *   charged at right now — exactly what its 402 challenge asks.
 * - `POST /v1/topup` → Lightning invoice, `POST /v1/topup/claim` with the preimage → a bearer key
 *   (402ai prepaid tokens); with `Authorization: Bearer <key>` the top-up refills that key.
 * - `GET /v1/account/statement?month=YYYY-MM&format=json|csv`: a key's monthly statement, read
 *   from the ledger (business keys: usage at their tier's discount).
 */
import { createHash, randomBytes } from "node:crypto";
import { type Request, Router } from "express";
import * as z from "zod";
import { Accounts, type Ledger } from "../ledger/index.js";
import { PaymentError } from "../payments/errors.js";
import { mintWhenPaid, paymentHashOf } from "../payments/l402.js";
import type { OneShotRegistry, TopupClaimRow } from "../payments/oneshot.js";
import type { PriceTable } from "../payments/pricing.js";
import {
  buildStatement,
  StatementQuerySchema,
  StatementSchema,
  statementCsv,
} from "../payments/statement.js";
import { createdJson, okJson, type RouteGroup } from "../../src/shared/discovery/index.js";
import type { Oracle } from "../oracle/index.js";
import { type AccountDeps, authenticateRequest, bearerKey } from "./accounts.js";
import { estimateRequest, type Kind, parseBody } from "./chat.js";
import { ChatCompletionRequestSchema, CompletionRequestSchema } from "./schemas.js";
import { ErrorBodySchema, parseWith } from "./errors.js";
import type { Paywall } from "./paywall.js";

export const PriceResponseSchema = z.object({
  model: z.string(),
  sats: z.number().int().positive(),
  msat: z.number().int().positive(),
  prompt_tokens_estimate: z.number().int().nonnegative(),
  max_tokens: z.number().int().positive(),
  minimum_sats: z.number().int().positive(),
  btc_usd: z.number().positive(),
  bsv_satoshis: z.number().int().positive().optional(),
});

export const TopupRequestSchema = z
  .object({
    amount_sats: z.number().int().positive().max(10_000_000).optional(),
    amount_usd: z
      .number()
      .positive()
      .max(10_000)
      .optional()
      .meta({ description: "402ai: dollars, converted at the pricing rate (GET /v1/oracle/rate)" }),
  })
  .refine((b) => (b.amount_sats === undefined) !== (b.amount_usd === undefined), {
    message: "give amount_sats or amount_usd (one of them)",
  });
export const TopupResponseSchema = z.object({
  invoice: z.string(),
  payment_hash: z.string(),
  amount_sats: z.number().int().positive(),
  expires_at: z.string().nullable(),
  refill: z.boolean(),
  amount_usd: z.number().optional().meta({ description: "what was asked, when asked in dollars" }),
  claim_secret: z.string().meta({
    description:
      "claims the top-up once paid, like the preimage (for wallets that never show one); keep it private",
  }),
});
export const TopupClaimRequestSchema = z
  .object({
    preimage: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, "preimage must be 32 bytes of hex")
      .optional(),
    claim_secret: z.string().min(16).max(100).optional(),
    token: z.string().max(200).optional(),
  })
  .refine((b) => (b.preimage === undefined) !== (b.claim_secret === undefined), {
    message: "give the preimage or the claim_secret (one of them)",
  });
export const TopupClaimResponseSchema = z.object({
  token: z.string().optional(),
  amount_sats: z.number().int().positive(),
  balance_sats: z.number().int().nonnegative(),
});

/** A claim secret and the hash the store keeps of it (the secret itself is never stored). */
export function newClaimSecret(): { secret: string; hash: string } {
  const secret = randomBytes(24).toString("base64url");
  return { secret, hash: claimHash(secret) };
}
export const claimHash = (secret: string) => createHash("sha256").update(secret).digest("hex");

/**
 * Claims a paid top-up once: mints its ecash, makes a new key of `prefix` (or refills the row's key),
 * marks it claimed and credits the ledger. The key is returned here only: it is not stored.
 */
export async function claimTopup(
  deps: Pick<PayDeps, "accounts" | "store" | "wallet" | "ledger">,
  row: TopupClaimRow,
  prefix: "sk-" | "abl_",
): Promise<z.infer<typeof TopupClaimResponseSchema>> {
  const keys = deps.accounts.accounts;
  if (row.state !== "pending") throw new PaymentError("token_spent", "this top-up was already claimed", 401);
  if (!(await mintWhenPaid(deps.wallet, row.mint, row.quote, row.amount_sat)))
    throw new PaymentError("payment_required", "the top-up invoice is not paid yet", 402);
  const made = row.account_id ? undefined : await keys.createSession(prefix);
  const accountId = row.account_id ?? made!.id;
  if (!(await deps.store.markClaimed(row.payment_hash, accountId))) {
    if (made) await keys.forgetTokenSession(made.id);
    throw new PaymentError("token_spent", "this top-up was already claimed", 401);
  }
  await deps.ledger.deposit(
    Accounts.user(accountId),
    row.amount_sat * 1000,
    row.mint,
    `topup-claim:${row.payment_hash}`,
  );
  return {
    ...(made ? { token: made.key } : {}),
    amount_sats: row.amount_sat,
    balance_sats: await deps.accounts.balanceSat((await keys.byId(accountId))!),
  };
}

export interface PayDeps extends AccountDeps {
  store: OneShotRegistry;
  prices: PriceTable;
  oracle: Oracle;
  paywall: Paywall;
}

export function payRouter(deps: PayDeps): Router {
  const r = Router();
  const keys = deps.accounts.accounts;

  const auth = (req: Request) => authenticateRequest(deps.accounts, req);

  r.post("/v1/price", (req, res) => {
    const kind: Kind =
      req.body && typeof req.body === "object" && "prompt" in req.body ? "completions" : "chat";
    const body = parseBody(kind, req.body);
    const e = estimateRequest(kind, body, body.model, deps);
    const bsv = deps.paywall.bsv ? { bsv_satoshis: deps.paywall.bsv.required(e.sats) } : {};
    res.json({
      model: body.model,
      sats: e.sats,
      msat: e.sats * 1000,
      prompt_tokens_estimate: e.promptTokens,
      max_tokens: e.requested,
      minimum_sats: deps.prices.chargeSat(body.model, e.promptTokens, 1, e.btcUsd),
      btc_usd: e.btcUsd,
      ...bsv,
    } satisfies z.infer<typeof PriceResponseSchema>);
  });

  r.post("/v1/topup", async (req, res) => {
    const body = parseWith(TopupRequestSchema, req.body);
    const amount_sats = body.amount_sats ?? Math.ceil((body.amount_usd! / deps.oracle.pricingRate()) * 1e8);
    if (amount_sats > 10_000_000)
      throw new PaymentError("invalid_request", "a top-up is at most 10,000,000 sats", 400);
    // A refill names its key; a bad key is refused before any invoice exists.
    const account = bearerKey(req) ? await auth(req) : undefined;
    const mint = deps.wallet.trustedMints[0];
    if (!mint) throw new PaymentError("mint_unavailable", "the gateway has no mint", 503);
    const quote = await deps.wallet.createMintQuote(mint, amount_sats, "owlrun prepaid top-up");
    const paymentHash = paymentHashOf(quote.request);
    const claim = newClaimSecret();
    await deps.store.addTopupClaim({
      payment_hash: paymentHash,
      quote: quote.quote,
      mint,
      amount_sat: amount_sats,
      account_id: account ? (await keys.payer(account.id)).id : null,
      claim_hash: claim.hash,
    });
    res.status(201).json({
      invoice: quote.request,
      payment_hash: paymentHash,
      amount_sats,
      expires_at: quote.expiry ? new Date(quote.expiry * 1000).toISOString() : null,
      refill: account !== undefined,
      ...(body.amount_usd !== undefined ? { amount_usd: body.amount_usd } : {}),
      claim_secret: claim.secret,
    } satisfies z.infer<typeof TopupResponseSchema>);
  });

  r.post("/v1/topup/claim", async (req, res) => {
    const body = parseWith(TopupClaimRequestSchema, req.body);
    const row = body.preimage
      ? await deps.store.topupClaim(
          createHash("sha256").update(Buffer.from(body.preimage, "hex")).digest("hex"),
        )
      : await deps.store.topupClaimBySecretHash(claimHash(body.claim_secret!));
    if (!row)
      throw new PaymentError("invalid_token", "no top-up invoice has this preimage or claim secret", 401);
    if (row.state !== "pending")
      throw new PaymentError("token_spent", "this top-up was already claimed", 401);
    if (row.account_id && body.token) {
      const named = await keys.byKey(body.token);
      if (!named || (await keys.payer(named.id)).id !== row.account_id)
        throw new PaymentError("invalid_key", "this top-up refills another key", 401);
    }
    // 402ai names its prepaid tokens abl_…
    res.json(await claimTopup(deps, row, "abl_"));
  });

  r.get("/v1/account/statement", async (req, res) => {
    const account = await auth(req);
    const q = parseWith(StatementQuerySchema, req.query);
    // A child key's money is its root's: the statement is the root's account.
    const payer = await keys.payer(account.id);
    const statement = await buildStatement(
      deps.ledger,
      payer,
      q.month,
      await deps.accounts.discountPct(payer),
    );
    if (q.format === "csv") {
      res
        .type("text/csv")
        .setHeader("Content-Disposition", `attachment; filename="statement-${q.month}.csv"`);
      res.send(statementCsv(statement));
      return;
    }
    res.json(statement);
  });

  return r;
}

/** After a crash between marking a top-up claimed and crediting it: credit it (idempotent by ref). */
export async function repairClaimedTopups(ledger: Ledger, store: OneShotRegistry): Promise<void> {
  for (const t of await store.claimedTopups()) {
    await ledger.deposit(
      Accounts.user(t.account_id!),
      t.amount_sat * 1000,
      t.mint,
      `topup-claim:${t.payment_hash}`,
    );
  }
}

export const payRoutes: RouteGroup = {
  name: "pay-per-request",
  description: "Prices before paying (BSVAPI), 402ai prepaid tokens over Lightning, monthly statements",
  errorSchema: ErrorBodySchema,
  routes: [
    {
      method: "post",
      path: "/v1/price",
      summary: "The sats a chat or completion request would be held at now (what its 402 asks); no auth",
      body: z.union([ChatCompletionRequestSchema, CompletionRequestSchema]),
      responses: okJson("the price", PriceResponseSchema),
      errors: { 400: "malformed body", 404: "unknown model" },
    },
    {
      method: "post",
      path: "/v1/topup",
      summary: "A Lightning invoice for a prepaid key; with a Bearer key it refills that key instead (402ai)",
      security: ["bearer"],
      body: TopupRequestSchema,
      responses: createdJson("the invoice to pay", TopupResponseSchema),
      errors: { 400: "malformed body", 401: "unknown key", 503: "no mint" },
    },
    {
      method: "post",
      path: "/v1/topup/claim",
      summary:
        "Claim a paid top-up with its preimage or claim_secret: a new abl_ key (token, shown once) or the refilled balance",
      body: TopupClaimRequestSchema,
      responses: okJson("the key and its balance", TopupClaimResponseSchema),
      errors: {
        400: "malformed body",
        401: "unknown preimage, already claimed, or another key's refill",
        402: "invoice not paid yet",
      },
    },
    {
      method: "get",
      path: "/v1/account/statement",
      summary: "The key's monthly statement from the ledger (JSON, or CSV with format=csv)",
      security: ["bearer"],
      query: StatementQuerySchema,
      responses: {
        200: {
          description: "the statement",
          schema: StatementSchema,
          alternatives: { "text/csv": z.string() },
        },
      },
      errors: { 400: "malformed month", 401: "missing or unknown key" },
    },
  ],
};
