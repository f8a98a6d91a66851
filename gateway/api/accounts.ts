/**
 * Accounts as in RouteCat (`rc_` keys, free tier, Lightning top-up) and Routstr (`sk-` sessions
 * from deposited ecash, balance back as a token). Balances move only through the ledger.
 */
import { randomUUID } from "node:crypto";
import { type Request, Router } from "express";
import * as z from "zod";
import { Accounts, type Ledger } from "../ledger/index.js";
import type { AccountPayments } from "../payments/account-payments.js";
import type { AccountRow } from "../payments/accounts.js";
import { PaymentError } from "../payments/errors.js";
import { inspectToken } from "../../src/shared/ecash/index.js";
import type { GatewayWallet } from "../payments/wallet.js";
import { ApiError } from "./errors.js";

export const RegisterRequestSchema = z.object({ name: z.string().max(200).optional() }).optional();
export const TokenDepositSchema = z.object({ token: z.string().min(1).max(65_536) });
export const WithdrawRequestSchema = z.object({
  amount_sats: z.number().int().positive().max(2_100_000_000_000_000).optional(),
});
export const LightningTopupSchema = z.object({ amount_sats: z.number().int().positive().max(10_000_000) });

function parse<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  const r = schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ApiError(
      400,
      "invalid_request",
      `invalid request: ${issue?.path.join(".") ?? ""} ${issue?.message ?? ""}`.trim(),
    );
  }
  return r.data;
}

export interface AccountDeps {
  accounts: AccountPayments;
  ledger: Ledger;
  wallet: GatewayWallet;
}

export function accountRouter(deps: AccountDeps): Router {
  const r = Router();
  const store = deps.accounts.accounts;

  const auth = async (req: Request): Promise<AccountRow> => {
    const bearer = /^Bearer\s+(.+)$/i.exec(req.get("authorization") ?? "")?.[1];
    if (!bearer) throw new PaymentError("invalid_key", "missing Authorization: Bearer <key>", 401);
    return deps.accounts.authenticate(bearer);
  };

  /** Credits a cashu token to an account (claimed by swap first, so it cannot be spent twice). */
  const depositToken = async (accountId: string, token: string) => {
    const claimed = await deps.wallet.claim(inspectToken(token));
    await deps.ledger.deposit(
      Accounts.user(accountId),
      claimed.amountSat * 1000,
      claimed.mint,
      `deposit:${randomUUID()}`,
    );
    return claimed.amountSat;
  };

  const balanceBody = async (a: AccountRow) => ({
    balance_sats: await deps.accounts.balanceSat(a),
    free_remaining: store.freeRemaining(a),
  });

  r.post("/v1/auth/register", (req, res) => {
    const body = parse(RegisterRequestSchema, req.body);
    const { key } = store.register(body?.name ?? null);
    res.status(201).json({ api_key: key, quota_daily: 10 });
  });

  r.get("/v1/balance", async (req, res) => {
    const account = await auth(req);
    await creditPaidTopups(deps, account.id);
    res.json(await balanceBody(account));
  });

  r.post("/v1/balance/topup", async (req, res) => {
    const account = await auth(req);
    const token = req.get("x-cashu") ?? parse(TokenDepositSchema, req.body).token;
    const amount = await depositToken(account.id, token);
    res.json({ deposited_sats: amount, ...(await balanceBody(account)) });
  });

  /** Routstr: a new sk- session key funded by a cashu token. */
  r.post("/v1/balance/create", async (req, res) => {
    const token = req.get("x-cashu") ?? parse(TokenDepositSchema, req.body).token;
    const info = inspectToken(token);
    if (!deps.wallet.isTrusted(info.mint))
      throw new PaymentError("foreign_mint", `mint ${info.mint} is not trusted here`, 400);
    const { id, key } = store.createSession();
    const amount = await depositToken(id, token);
    res.status(201).json({ api_key: key, balance_sats: amount });
  });

  r.post("/v1/balance/withdraw", async (req, res) => {
    const account = await auth(req);
    const body = parse(WithdrawRequestSchema, req.body ?? {});
    const balance = await deps.accounts.balanceSat(account);
    const amount = body.amount_sats ?? balance;
    if (amount <= 0 || amount > balance) {
      throw new PaymentError(
        "insufficient_balance",
        `cannot withdraw ${amount} sats: balance is ${balance}`,
        402,
      );
    }
    const mint = deps.wallet.trustedMints[0]!;
    const ref = randomUUID();
    // Debit first (refuses overdraft atomically), then make the token; give it back if that fails.
    await deps.ledger.withdraw(Accounts.user(account.id), amount * 1000, mint, ref);
    try {
      const token = await deps.wallet.pay(mint, amount, "B");
      res.json({ token, amount_sats: amount, ...(await balanceBody(account)) });
    } catch (err) {
      await deps.ledger.deposit(Accounts.user(account.id), amount * 1000, mint, `withdraw-undo:${ref}`);
      throw err;
    }
  });

  r.post("/v1/auth/topup", async (req, res) => {
    const account = await auth(req);
    const { amount_sats } = parse(LightningTopupSchema, req.body);
    const mint = deps.wallet.trustedMints[0]!;
    const quote = await deps.wallet.createMintQuote(mint, amount_sats, "owlrun top-up");
    store.addTopup({
      quote: quote.quote,
      accountId: account.id,
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

/** Mints the ecash of paid Lightning top-ups and credits the accounts, once per quote. */
export async function creditPaidTopups(deps: AccountDeps, accountId?: string): Promise<void> {
  for (const t of deps.accounts.accounts.pendingTopups(accountId)) {
    const minted = await deps.wallet.mintPaid(t.mint, t.quote, t.amount);
    if (!minted) continue;
    await deps.ledger.deposit(Accounts.user(t.account_id), t.amount * 1000, t.mint, `topup:${t.quote}`);
    deps.accounts.accounts.markTopupCredited(t.quote);
  }
}
