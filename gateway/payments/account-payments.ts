/**
 * Paying from an account: `rc_` keys, `sk-` session keys and raw cashu tokens as the Bearer key
 * (prepaid), and business keys (`bsvapi_sk_…`, or `rc_…` with a tier), metered when the operator
 * gave them a credit limit: used with no payment header, owing up to the limit (the ledger's hold
 * on credit), billed on the monthly statement; paying in reduces what they owe first. Each request takes an atomic hold on the account's ledger balance before dispatch and
 * settles it exactly once. Free-tier requests move no sats: they are capped (max_tokens, a daily
 * gateway-wide budget of list price) and earn the serving node karma.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "../../src/shared/index.js";
import { Accounts, type Ledger } from "../ledger/index.js";
import {
  type AccountRow,
  type AccountStore,
  type BusinessTier,
  DEFAULT_TIER_DISCOUNT_PCT,
  utcDay,
} from "./accounts.js";
import { PaymentError } from "./errors.js";
import type { PriceTable } from "./pricing.js";
import { RateLimiter } from "./ratelimit.js";
import { EcashError, inspectToken } from "../../src/shared/ecash/index.js";
import { claimOp } from "./claims.js";
import type { GatewayWallet } from "./wallet.js";
import { EndsOnce } from "./once.js";
import type { SettledPayment } from "./xcashu.js";

/** What the chat route needs from any way of paying. */
export interface RequestPayment {
  readonly holdId: string;
  /** how it was paid, for the receipt: xcashu, account, l402, bsv */
  readonly method: string;
  /** method-specific receipt fields (payment_hash, txid, …) */
  readonly receiptFields?: Record<string, unknown>;
  /** a business key's discount on the charge (percent) */
  readonly discountPct?: number;
  /** the most this request may be charged (its hold, or its quote); settle never goes above it */
  readonly maxChargeSat?: number;
  /** a free-tier request: routed only to nodes that take free work, earns them karma, not sats */
  readonly free?: boolean;
  settle(
    chargedSat: number,
    nodeId: string,
    providerSharePct: number,
    memo?: string,
  ): Promise<SettledPayment>;
  refund(memo?: string): Promise<SettledPayment>;
}

export class AccountPayment extends EndsOnce implements RequestPayment {
  readonly method = "account";

  constructor(
    readonly holdId: string,
    /** the key that made the request (caps and spending are recorded on it and its ancestors) */
    readonly account: AccountRow,
    /** the account whose balance pays: the key itself, or its root for child keys */
    readonly payer: AccountRow,
    readonly holdSat: number,
    readonly free: boolean,
    private readonly ledger: Ledger,
    private readonly accounts: AccountStore,
    readonly discountPct = 0,
    /** free requests: the list price of the job at its caps, taken from today's promo budget */
    private readonly promo?: { sats: number; day: string },
  ) {
    super();
  }

  get maxChargeSat(): number {
    return this.free ? (this.promo?.sats ?? 0) : this.holdSat;
  }

  get receiptFields() {
    return { account_id: this.account.id, ...(this.discountPct ? { discount_pct: this.discountPct } : {}) };
  }

  async settle(
    chargedSat: number,
    nodeId: string,
    providerSharePct: number,
    memo?: string,
  ): Promise<SettledPayment> {
    this.end();
    const user = Accounts.user(this.payer.id);
    if (this.free) {
      // Free jobs move no sats (the node earns karma); the budget keeps what the job was worth.
      await this.ledger.releaseHold(this.holdId, user, memo);
      const used = Math.min(Math.max(0, chargedSat), this.promo?.sats ?? 0);
      if (this.promo) await this.accounts.returnPromo(this.promo.sats - used, this.promo.day);
      if (chargedSat <= 0) await this.accounts.returnFree(this.payer.id);
      return { chargedSat: 0, changeSat: 0 };
    }
    if (chargedSat <= 0) {
      await this.ledger.releaseHold(this.holdId, user, memo);
      return { chargedSat: 0, changeSat: 0 };
    }
    const charged = Math.min(chargedSat, this.holdSat);
    await this.ledger.settleJob(
      this.holdId,
      { chargedMsat: charged * 1000, providerId: nodeId, providerSharePct },
      user,
      memo,
    );
    await this.accounts.recordSpend(this.account.id, charged);
    return { chargedSat: charged, changeSat: 0 };
  }

  async refund(memo?: string): Promise<SettledPayment> {
    return this.settle(0, "", 100, memo);
  }
}

/** What free-tier requests may cost the gateway (ARCHITECTURE.md §4). */
export interface FreeTierLimits {
  /** the largest completion a free request gets (default 256 tokens) */
  maxTokens: number;
  /** the list price of free work given away per UTC day, gateway-wide (default 1,000 sats) */
  dailyBudgetSat: number;
}

export const DEFAULT_FREE_TIER: FreeTierLimits = { maxTokens: 256, dailyBudgetSat: 1_000 };

/** How long an unpaid Lightning top-up is watched for its payment. */
const TOPUP_WATCH_MS = 24 * 3600_000;

export class AccountPayments {
  readonly limiter = new RateLimiter(60, 60_000);

  constructor(
    readonly accounts: AccountStore,
    private readonly ledger: Ledger,
    private readonly wallet: GatewayWallet,
    private readonly log: Logger,
    private readonly tierDiscounts: Record<BusinessTier, number> = DEFAULT_TIER_DISCOUNT_PCT,
    readonly freeTier: FreeTierLimits = DEFAULT_FREE_TIER,
  ) {}

  /** The discount a key pays at: its payer's business tier, else none. */
  async discountPct(account: AccountRow): Promise<number> {
    const tier = (await this.accounts.payer(account.id)).tier;
    return tier ? (this.tierDiscounts[tier] ?? 0) : 0;
  }

  /**
   * rc_ / sk- / abl_ (402ai top-up) / bsvapi_sk_ (business) keys, or a raw cashu token that becomes (or already is) a session. Lightning top-ups
   * of the key's account that the mint reports paid are credited first, so whatever the key calls
   * next sees its money.
   */
  async authenticate(bearer: string): Promise<AccountRow> {
    const key = bearer.trim();
    if (/^(cashu:)?cashu[AB]/.test(key)) return this.tokenSession(key);
    const account = /^(rc_|sk-|abl_|bsvapi_sk_)/.test(key) ? await this.accounts.byKey(key) : undefined;
    if (!account) throw new PaymentError("invalid_key", "invalid API key", 401);
    await this.creditPaidTopups((await this.accounts.payer(account.id)).id);
    return account;
  }

  private readonly topupChecks = new Map<string, Promise<number>>();

  /**
   * Mints the ecash of Lightning top-ups the mint reports paid and credits their accounts, once per
   * quote (ledger ref `topup:<quote>`): one account's, or every account's (the background poll).
   * Top-ups older than a day are no longer watched. Never throws: a mint that does not answer is
   * asked again next time. One check per account at a time; returns how many were credited.
   */
  creditPaidTopups(accountId?: string): Promise<number> {
    const key = accountId ?? "*";
    let running = this.topupChecks.get(key);
    if (!running) {
      running = this.creditTopupsNow(accountId).finally(() => this.topupChecks.delete(key));
      this.topupChecks.set(key, running);
    }
    return running;
  }

  private async creditTopupsNow(accountId?: string): Promise<number> {
    let n = 0;
    for (const t of await this.accounts.pendingTopups(accountId, Date.now() - TOPUP_WATCH_MS)) {
      try {
        if (!(await this.wallet.mintPaid(t.mint, t.quote, t.amount))) continue;
        await this.ledger.deposit(Accounts.user(t.account_id), t.amount * 1000, t.mint, `topup:${t.quote}`);
        if (await this.accounts.markTopupCredited(t.quote)) n++;
      } catch (err) {
        this.log.warn("could not check a Lightning top-up; will ask again", {
          quote: t.quote,
          err: String(err),
        });
      }
    }
    return n;
  }

  private async tokenSession(token: string): Promise<AccountRow> {
    const { id, created } = await this.accounts.sessionForToken(token);
    if (created) {
      try {
        const op = claimOp.user(id);
        const info = inspectToken(token);
        const claimed = await this.wallet.claim(info, op);
        await this.ledger.deposit(Accounts.user(id), claimed.amountSat * 1000, claimed.mint, op);
        await this.wallet.claimFunded(op);
        await this.accounts.noteTokenFormat(id, info.format);
      } catch (err) {
        // Refused: the token can be tried again. Unanswered: the mint may have swapped, and the
        // next start credits this session, which the same token must still open.
        if (!(err instanceof EcashError && err.type === "mint_unavailable"))
          await this.accounts.forgetTokenSession(id);
        throw err;
      }
    }
    return (await this.accounts.byId(id))!;
  }

  /** Counts the request against the key's 60/min limit. */
  rateLimit(account: AccountRow): void {
    this.limiter.enforce(account.id, "60 requests per minute");
  }

  /** The balance a key can spend (its root's, for child keys); 0 while a metered key owes. */
  async balanceSat(account: AccountRow): Promise<number> {
    return Math.max(
      0,
      Math.floor(
        (await this.ledger.balance(Accounts.user((await this.accounts.payer(account.id)).id))) / 1000,
      ),
    );
  }

  /**
   * A metered business key's credit: its limit and what it owes now (its root's, for child keys);
   * undefined for prepaid keys. What is owed is the negative part of the balance, in msats.
   */
  async credit(account: AccountRow): Promise<{ limitSat: number; owedMsat: number } | undefined> {
    const payer = await this.accounts.payer(account.id);
    if (!payer.tier || payer.credit_limit_sat <= 0) return undefined;
    const balance = await this.ledger.balance(Accounts.user(payer.id));
    return { limitSat: payer.credit_limit_sat, owedMsat: Math.max(0, -balance) };
  }

  /**
   * Holds the most the request can cost (prompt + its whole max_tokens) so the answer always
   * completes and the balance never goes below zero: never a silently shortened max_tokens.
   * A balance or spend cap that cannot cover that answers 402 with the amount needed. The free
   * tier serves a key whose balance cannot pay while today's quota lasts (paid balance first:
   * docs/architecture.md, "RouteCat balance rule").
   */
  async open(
    account: AccountRow,
    q: {
      model: string;
      promptTokens: number;
      requestedMaxTokens: number;
      prices: PriceTable;
      btcUsd: number;
      memo?: string;
    },
  ): Promise<{ payment: AccountPayment; maxTokens: number }> {
    const payer = await this.accounts.payer(account.id);
    const balanceMsat = await this.ledger.balance(Accounts.user(payer.id));
    const { room, reason } = await this.accounts.spendRoom(account.id);
    const discount = await this.discountPct(account);
    const needed = q.prices.chargeSat(q.model, q.promptTokens, q.requestedMaxTokens, q.btcUsd, discount);
    const holdId = randomUUID();
    // A metered business key holds on credit: balance + limit must cover the request (the ledger
    // checks it again, exactly, in the step that takes the hold).
    const creditMsat = payer.tier ? payer.credit_limit_sat * 1000 : 0;
    if (creditMsat > 0 && Math.floor((balanceMsat + creditMsat) / 1000) < needed) {
      const shortMsat = needed * 1000 - (balanceMsat + creditMsat);
      const owedMsat = Math.max(0, -balanceMsat);
      throw new PaymentError(
        "insufficient_balance",
        `Credit limit reached. Owed: ${owedMsat} msat, limit: ${creditMsat} msat, Required: ${needed * 1000} msat`,
        402,
        {
          balance_msat: balanceMsat,
          owed_msat: owedMsat,
          credit_limit_msat: creditMsat,
          required_msat: needed * 1000,
          required_sats: needed,
          amount_needed_sats: Math.ceil(shortMsat / 1000),
          hint:
            "pay at least amount_needed_sats of what this key owes: POST /v1/balance/topup with a cashu token " +
            '(or X-Cashu), or POST /v1/auth/topup {"amount_sats": N} for a Lightning invoice; ' +
            "the statement (GET /v1/account/statement?month=YYYY-MM) shows the amount due",
        },
      );
    }
    if (creditMsat === 0 && Math.floor(balanceMsat / 1000) < needed) {
      if (await this.accounts.takeFree(payer.id)) {
        // A small completion, and the job's list price out of today's gateway-wide budget.
        const maxTokens = Math.max(1, Math.min(q.requestedMaxTokens, this.freeTier.maxTokens));
        const promo = {
          sats: q.prices.chargeSat(q.model, q.promptTokens, maxTokens, q.btcUsd),
          day: utcDay(),
        };
        if (!(await this.accounts.takePromo(promo.sats, this.freeTier.dailyBudgetSat))) {
          await this.accounts.returnFree(payer.id);
          throw new PaymentError(
            "quota_exceeded",
            "the free tier of this gateway is used up for today; top up your balance to continue",
            402,
            { balance_msat: balanceMsat, required_msat: needed * 1000, required_sats: needed },
          );
        }
        try {
          await this.ledger.hold(holdId, Accounts.user(payer.id), 0, "free", q.memo);
        } catch (err) {
          await this.accounts.returnPromo(promo.sats, promo.day);
          await this.accounts.returnFree(payer.id);
          throw err;
        }
        return {
          payment: new AccountPayment(
            holdId,
            account,
            payer,
            0,
            true,
            this.ledger,
            this.accounts,
            discount,
            promo,
          ),
          maxTokens,
        };
      }
      throw new PaymentError(
        "insufficient_balance",
        // Routstr's words exactly (clients match them); the why is in `hint`.
        `Insufficient balance. Current: ${balanceMsat} msat, Required: ${needed * 1000} msat`,
        402,
        {
          balance_msat: balanceMsat,
          required_msat: needed * 1000,
          required_sats: needed,
          hint: `the prompt and all ${q.requestedMaxTokens} max_tokens are held before the answer starts; lower max_tokens or top up`,
        },
      );
    }
    if (room < needed) {
      throw new PaymentError(
        "spend_limit",
        `spend limit reached (${reason}): ${room} sats left, need ${needed}`,
        402,
        { required_sats: needed },
      );
    }
    const maxTokens = q.requestedMaxTokens;
    const holdSat = needed;
    await this.ledger.hold(holdId, Accounts.user(payer.id), holdSat * 1000, "chat", q.memo, creditMsat);
    return {
      payment: new AccountPayment(
        holdId,
        account,
        payer,
        holdSat,
        false,
        this.ledger,
        this.accounts,
        discount,
      ),
      maxTokens,
    };
  }
}
