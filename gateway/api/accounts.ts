/**
 * Accounts as in RouteCat (`rc_` keys, free tier, Lightning top-up) and Routstr (`sk-` sessions
 * from deposited ecash, balance back as a token). Balances move only through the ledger.
 */
import { randomUUID } from "node:crypto";
import { type Request, Router } from "express";
import * as z from "zod";
import { Accounts, type Ledger } from "../ledger/index.js";
import type { AccountPayments } from "../payments/account-payments.js";
import { type AccountRow, freeRemaining } from "../payments/accounts.js";
import { PaymentError } from "../payments/errors.js";
import { createdJson, okJson, type RouteGroup } from "../../src/shared/discovery/index.js";
import { inspectToken } from "../../src/shared/ecash/index.js";
import { claimOp } from "../payments/claims.js";
import { collectChange } from "../payments/recovery.js";
import { UUID } from "./schemas.js";
import type { GatewayWallet } from "../payments/wallet.js";
import { ApiError, ErrorBodySchema, parseWith } from "./errors.js";
import type { SignupLimiter } from "../routing/index.js";

export const RegisterRequestSchema = z.object({ name: z.string().max(200).optional() }).optional();
export const TokenDepositSchema = z.object({ token: z.string().min(1).max(65_536) });
export const WithdrawRequestSchema = z.object({
  amount_sats: z.number().int().positive().max(2_100_000_000_000_000).optional(),
});
const Sats = z.number().int().nonnegative().max(2_100_000_000_000_000).nullable().optional();
export const CapsSchema = z.object({ per_request_sats: Sats, per_day_sats: Sats, lifetime_sats: Sats });
export const ChildKeyRequestSchema = z.object({
  name: z.string().max(200).optional(),
  caps: CapsSchema.optional(),
});
const toCaps = (c?: z.infer<typeof CapsSchema>) => ({
  perRequestSat: c?.per_request_sats ?? null,
  perDaySat: c?.per_day_sats ?? null,
  lifetimeSat: c?.lifetime_sats ?? null,
});
const capsOf = (a: AccountRow) => ({
  per_request_sats: a.cap_per_request_sat,
  per_day_sats: a.cap_per_day_sat,
  lifetime_sats: a.cap_lifetime_sat,
});

export const LightningTopupSchema = z.object({ amount_sats: z.number().int().positive().max(10_000_000) });

// ---- responses ----
const SatCount = z.number().int().nonnegative();
const CapsOut = z.object({
  per_request_sats: z.number().int().nullable(),
  per_day_sats: z.number().int().nullable(),
  lifetime_sats: z.number().int().nullable(),
});
export const RegisterResponseSchema = z.object({
  api_key: z.string().meta({ description: "rc_… account key" }),
  quota_daily: z.number().int().meta({ description: "free requests a day" }),
});
export const BalanceResponseSchema = z.object({
  balance_sats: SatCount,
  free_remaining: SatCount,
  credit_limit_sats: SatCount.optional().meta({
    description: "a metered business key: how much it may owe (billed on its monthly statement)",
  }),
  owed_msat: SatCount.optional().meta({
    description: "a metered business key: what it owes now; paying in reduces this first",
  }),
});
export const DepositResponseSchema = BalanceResponseSchema.extend({ deposited_sats: SatCount });
export const SessionResponseSchema = z.object({
  api_key: z.string().meta({ description: "sk-… session key" }),
  balance_sats: SatCount,
});
export const WithdrawResponseSchema = BalanceResponseSchema.extend({
  token: z.string().meta({
    description:
      "token of the withdrawn sats, in the format the key was first funded with (cashuA or cashuB)",
  }),
  amount_sats: SatCount,
  withdrawal_id: z.string().meta({ description: "send it as X-Owlrun-Request-Id to fetch this token again" }),
});
/** A withdrawal's id, chosen by the client so a lost answer can be fetched again (same token). */
export const WithdrawalIdHeader = z.object({
  "X-Owlrun-Request-Id": z.string().optional().meta({
    description:
      "a UUID naming this withdrawal: sending it again answers the same token, never a second withdrawal",
  }),
});
export const ChildKeyResponseSchema = z.object({
  api_key: z.string(),
  id: z.string(),
  parent_id: z.string(),
  caps: CapsOut,
});
export const KeysResponseSchema = z.object({
  id: z.string(),
  caps: CapsOut,
  spent_today_sats: SatCount,
  spent_lifetime_sats: SatCount,
  children: z.array(
    z.object({ id: z.string(), name: z.string().nullable(), caps: CapsOut, spent_lifetime_sats: SatCount }),
  ),
});
export const CapsResponseSchema = z.object({ id: z.string(), caps: CapsOut });
export const LightningTopupResponseSchema = z.object({
  invoice: z.string().meta({ description: "bolt11 invoice to pay" }),
  amount_sats: SatCount,
  expires_at: z.string().nullable(),
  quote: z.string(),
});
const TokenHeader = z.object({
  "X-Cashu": z.string().optional().meta({ description: "the token, instead of the JSON body" }),
});

/** The key of `Authorization: Bearer <key>` (or 402ai's `X-Token: <key>`), if any. */
export const bearerKey = (req: Request) =>
  /^Bearer\s+(.+)$/i.exec(req.get("authorization") ?? "")?.[1]?.trim() ||
  req.get("x-token")?.trim() ||
  undefined;

/** The account behind the request's Bearer key; 401 when missing or unknown. */
export async function authenticateRequest(accounts: AccountPayments, req: Request): Promise<AccountRow> {
  const key = bearerKey(req);
  if (!key) throw new PaymentError("invalid_key", "missing Authorization: Bearer <key>", 401);
  return accounts.authenticate(key);
}

/**
 * Pays `account`'s money out as a cashu token, crash-safe and retryable: the debit and the debt
 * of a token are one ledger write under the withdrawal id (`X-Owlrun-Request-Id`, else a new
 * UUID); the token is then made and stored under that id. Sending the same id again answers the
 * same token (made now if a crash or a dead mint stopped it), never a second withdrawal.
 */
export async function withdrawAsEcash(
  deps: { ledger: Ledger; wallet: GatewayWallet },
  req: Request,
  account: string,
  amountSat: () => Promise<number>,
  format: "A" | "B" = "B",
): Promise<{ token: string; amount_sats: number; withdrawal_id: string }> {
  const given = req.get("x-owlrun-request-id")?.toLowerCase();
  if (given !== undefined && !UUID.test(given))
    throw new ApiError(400, "invalid_request", "X-Owlrun-Request-Id must be a UUID");
  const id = given ?? randomUUID();
  const earlier = await deps.ledger.getHold(id);
  if (earlier && (earlier.kind !== "withdraw" || earlier.memo !== account))
    throw new ApiError(409, "conflict", "that X-Owlrun-Request-Id is already used by another request");
  if (!earlier) {
    const mint = deps.wallet.trustedMints[0]!;
    await deps.ledger.withdrawAsChange(id, account, (await amountSat()) * 1000, mint, format);
  }
  const made = await collectChange(deps.ledger, deps.wallet, id).catch(() => undefined);
  if (!made)
    throw new ApiError(
      503,
      "mint_unavailable",
      `the token could not be made now; your withdrawal is kept: retry with X-Owlrun-Request-Id: ${id}`,
      { "Retry-After": "5", "X-Owlrun-Request-Id": id },
    );
  return { token: made.token, amount_sats: made.amount, withdrawal_id: id };
}

export interface AccountDeps {
  accounts: AccountPayments;
  ledger: Ledger;
  wallet: GatewayWallet;
  /** new rc_ keys per client address (each carries a free quota) */
  signups?: SignupLimiter;
}

export function accountRouter(deps: AccountDeps): Router {
  const r = Router();
  const store = deps.accounts.accounts;

  const auth = (req: Request) => authenticateRequest(deps.accounts, req);

  /** Credits a cashu token to an account (claimed by swap first, so it cannot be spent twice). */
  const depositToken = async (accountId: string, token: string) => {
    const op = claimOp.user(accountId);
    const info = inspectToken(token);
    const claimed = await deps.wallet.claim(info, op);
    await deps.ledger.deposit(Accounts.user(accountId), claimed.amountSat * 1000, claimed.mint, op);
    await deps.wallet.claimFunded(op);
    // The first funding names the format withdrawals answer in (cashuA in → cashuA out).
    await store.noteTokenFormat(accountId, info.format);
    return claimed.amountSat;
  };

  const balanceBody = async (a: AccountRow) => {
    const credit = await deps.accounts.credit(a);
    return {
      balance_sats: await deps.accounts.balanceSat(a),
      free_remaining: freeRemaining(a),
      ...(credit ? { credit_limit_sats: credit.limitSat, owed_msat: credit.owedMsat } : {}),
    };
  };

  r.post("/v1/auth/register", async (req, res) => {
    const body = parseWith(RegisterRequestSchema, req.body);
    // Every key carries a free quota: keys per address are limited, or one client takes them all.
    const wait = deps.signups?.take(req.ip ?? req.socket.remoteAddress ?? "unknown");
    if (wait !== undefined)
      throw new PaymentError("rate_limited", "too many new keys from this address; retry later", 429, {
        retry_after: wait,
      });
    const { key } = await store.register(body?.name ?? null);
    res.status(201).json({ api_key: key, quota_daily: 10 });
  });

  r.get("/v1/balance", async (req, res) => {
    const account = await auth(req);
    await creditPaidTopups(deps, account.id);
    res.json(await balanceBody(account));
  });

  r.post("/v1/balance/topup", async (req, res) => {
    const account = await auth(req);
    const token = req.get("x-cashu") ?? parseWith(TokenDepositSchema, req.body).token;
    const amount = await depositToken((await store.payer(account.id)).id, token);
    res.json({ deposited_sats: amount, ...(await balanceBody(account)) });
  });

  /** Routstr: a new sk- session key funded by a cashu token. */
  r.post("/v1/balance/create", async (req, res) => {
    const token = req.get("x-cashu") ?? parseWith(TokenDepositSchema, req.body).token;
    const info = inspectToken(token);
    if (!deps.wallet.isTrusted(info.mint))
      throw new PaymentError("foreign_mint", `mint ${info.mint} is not trusted here`, 400);
    const { id, key } = await store.createSession();
    const amount = await depositToken(id, token);
    res.status(201).json({ api_key: key, balance_sats: amount });
  });

  r.post("/v1/balance/withdraw", async (req, res) => {
    const account = await auth(req);
    if (account.parent_id)
      throw new ApiError(
        403,
        "forbidden",
        "child keys spend within their caps; only the parent key withdraws",
      );
    const body = parseWith(WithdrawRequestSchema, req.body ?? {});
    const out = await withdrawAsEcash(
      deps,
      req,
      Accounts.user(account.id),
      async () => {
        const balance = await deps.accounts.balanceSat(account);
        const amount = body.amount_sats ?? balance;
        if (amount <= 0 || amount > balance)
          throw new PaymentError(
            "insufficient_balance",
            `cannot withdraw ${amount} sats: balance is ${balance}`,
            402,
          );
        return amount;
      },
      await store.tokenFormat(account.id),
    );
    res.json({ ...out, ...(await balanceBody(account)) });
  });

  /** Child keys for agents: they spend this key's balance, never past their own caps. */
  r.post("/v1/keys", async (req, res) => {
    const parent = await auth(req);
    if (parent.kind !== "rc")
      throw new ApiError(403, "forbidden", "only rc_ account keys can make child keys");
    const body = parseWith(ChildKeyRequestSchema, req.body ?? {});
    const { id, key } = await store.createChild(parent.id, body.name ?? null, toCaps(body.caps));
    res.status(201).json({ api_key: key, id, parent_id: parent.id, caps: capsOf((await store.byId(id))!) });
  });

  r.get("/v1/keys", async (req, res) => {
    const parent = await auth(req);
    res.json({
      id: parent.id,
      caps: capsOf(parent),
      spent_today_sats: parent.spent_day === new Date().toISOString().slice(0, 10) ? parent.spent_day_sat : 0,
      spent_lifetime_sats: parent.spent_lifetime_sat,
      children: (await store.children(parent.id)).map((c) => ({
        id: c.id,
        name: c.name,
        caps: capsOf(c),
        spent_lifetime_sats: c.spent_lifetime_sat,
      })),
    });
  });

  /** Caps of a child (by its parent) or of the key itself when it is a root key. */
  r.post("/v1/keys/:id/caps", async (req, res) => {
    const caller = await auth(req);
    const target = await store.byId(String(req.params.id));
    const allowed =
      target && (target.parent_id === caller.id || (target.id === caller.id && !caller.parent_id));
    if (!target || !allowed)
      throw new ApiError(403, "forbidden", "caps can be set by the parent key (or a root key on itself)");
    await store.setCaps(target.id, toCaps(parseWith(CapsSchema, req.body ?? {})));
    res.json({ id: target.id, caps: capsOf((await store.byId(target.id))!) });
  });

  r.post("/v1/auth/topup", async (req, res) => {
    const account = await auth(req);
    const { amount_sats } = parseWith(LightningTopupSchema, req.body);
    const mint = deps.wallet.trustedMints[0]!;
    const quote = await deps.wallet.createMintQuote(mint, amount_sats, "owlrun top-up");
    await store.addTopup({
      quote: quote.quote,
      accountId: (await store.payer(account.id)).id,
      mint,
      amount: amount_sats,
      request: quote.request,
      expiry: quote.expiry,
    });
    res.status(201).json({
      invoice: quote.request,
      amount_sats,
      expires_at: quote.expiry ? new Date(quote.expiry * 1000).toISOString() : null,
      quote: quote.quote,
    });
  });

  return r;
}

const authErrors = { 400: "malformed body", 401: "missing or unknown key" };

export const accountRoutes: RouteGroup = {
  name: "accounts",
  description:
    "RouteCat-style accounts (rc_ keys, free tier, Lightning top-up) and Routstr-style sk- sessions",
  errorSchema: ErrorBodySchema,
  routes: [
    {
      method: "post",
      path: "/v1/auth/register",
      summary: "Create an account; answers an rc_ key with a daily free quota",
      body: RegisterRequestSchema,
      responses: createdJson("the new key", RegisterResponseSchema),
      errors: { 400: "malformed body", 429: "too many new keys from this address (see Retry-After)" },
    },
    {
      method: "get",
      path: "/v1/balance",
      summary: "Balance of the key's account (credits paid Lightning top-ups first)",
      security: ["bearer"],
      responses: okJson("balance", BalanceResponseSchema),
      errors: { 401: "missing or unknown key" },
    },
    {
      method: "post",
      path: "/v1/balance/topup",
      summary: "Deposit a cashu token into the account (instant)",
      security: ["bearer"],
      headers: TokenHeader,
      body: TokenDepositSchema,
      responses: okJson("deposited", DepositResponseSchema),
      errors: { ...authErrors, 402: "token already spent" },
    },
    {
      method: "post",
      path: "/v1/balance/create",
      summary: "Routstr: a new sk- session key funded by a cashu token",
      headers: TokenHeader,
      body: TokenDepositSchema,
      responses: createdJson("the session key", SessionResponseSchema),
      errors: { 400: "malformed token or untrusted mint", 402: "token already spent" },
    },
    {
      method: "post",
      path: "/v1/balance/withdraw",
      summary: "Withdraw the balance (or amount_sats of it) as a cashu token",
      security: ["bearer"],
      headers: WithdrawalIdHeader,
      body: WithdrawRequestSchema,
      responses: okJson("the token", WithdrawResponseSchema),
      errors: {
        ...authErrors,
        402: "insufficient balance",
        403: "child keys cannot withdraw",
        409: "the id names another request",
        503: "the mint is down: the withdrawal is kept, retry with the same id",
      },
    },
    {
      method: "post",
      path: "/v1/keys",
      summary: "Make a child key that spends this account within its own caps",
      security: ["bearer"],
      body: ChildKeyRequestSchema,
      responses: createdJson("the child key", ChildKeyResponseSchema),
      errors: { ...authErrors, 403: "only rc_ keys make child keys" },
    },
    {
      method: "get",
      path: "/v1/keys",
      summary: "This key's caps, spending and child keys",
      security: ["bearer"],
      responses: okJson("keys", KeysResponseSchema),
      errors: { 401: "missing or unknown key" },
    },
    {
      method: "post",
      path: "/v1/keys/:id/caps",
      summary: "Set the spending caps of a child key (or of a root key itself)",
      security: ["bearer"],
      body: CapsSchema,
      responses: okJson("the caps now", CapsResponseSchema),
      errors: { ...authErrors, 403: "not your key" },
    },
    {
      method: "post",
      path: "/v1/auth/topup",
      summary: "Top up over Lightning: answers a bolt11 invoice; the balance grows once it is paid",
      security: ["bearer"],
      body: LightningTopupSchema,
      responses: createdJson("the invoice", LightningTopupResponseSchema),
      errors: authErrors,
    },
  ],
};

/** Mints the ecash of paid Lightning top-ups and credits the accounts, once per quote. */
export async function creditPaidTopups(deps: AccountDeps, accountId?: string): Promise<void> {
  await deps.accounts.creditPaidTopups(accountId);
}
