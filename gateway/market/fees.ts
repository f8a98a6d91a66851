/**
 * What the market charges and how: posting a task and quoting cost a USD fee converted at the
 * oracle's rate, paid from the account balance (held first, charged once the write succeeded) or
 * with an X-Cashu token (the rest comes back as change). A refused write is never charged.
 */
import { randomUUID } from "node:crypto";
import { Accounts, InsufficientBalanceError } from "../ledger/index.js";
import type { AccountRow } from "../payments/accounts.js";
import { PaymentError } from "../payments/errors.js";
import type { CashuPayer, FeePayer, FeeReceipt, L402Payer, MarketDeps } from "./deps.js";

/** A market party is the account whose balance pays: the key itself, or the root of a child key. */
export const payerIdOf = async (deps: Pick<MarketDeps, "accounts">, caller: AccountRow): Promise<string> =>
  (await deps.accounts.accounts.payer(caller.id)).id;

export class MarketFees {
  constructor(private readonly deps: MarketDeps) {}

  /** A USD fee in whole sats at the oracle's rate (at least 1 sat when the fee is not zero). */
  feeSat(usd: number): number {
    if (usd <= 0) return 0;
    const exact = (usd * 1e8) / this.deps.oracle.pricingRate();
    return Math.max(1, Math.ceil(Number(exact.toFixed(6))));
  }

  /** Refuses (402 spend_limit) a spend the key's caps do not leave room for. */
  async checkCaps(caller: AccountRow, sats: number): Promise<void> {
    const { room, reason } = await this.deps.accounts.accounts.spendRoom(caller.id);
    if (room < sats)
      throw new PaymentError(
        "spend_limit",
        `spend limit reached (${reason}): ${room} sats left, need ${sats}`,
        402,
      );
  }

  async insufficient(caller: AccountRow, needSat: number, what: string): Promise<PaymentError> {
    const have = await this.deps.accounts.balanceSat(caller);
    return new PaymentError(
      "insufficient_balance",
      `${what} needs ${needSat} sats; your balance is ${have} sats. Top up with POST /v1/balance/topup ` +
        "(a cashu token) or POST /v1/auth/topup (Lightning)",
      402,
      { balance_sats: have, required_sats: needSat },
    );
  }

  /**
   * Runs `act` (a store write) paid by a fee: from an X-Cashu token when one is given (the rest
   * comes back as change) or an L402 credential, else held on the balance first and charged once
   * `act` succeeded. When `act` refuses, nothing is charged.
   */
  async payFee<T>(
    caller: AccountRow,
    feeSat: number,
    what: string,
    payer: FeePayer | undefined,
    act: () => Promise<T>,
  ): Promise<{ value: T; receipt: FeeReceipt }> {
    if (feeSat === 0) return { value: await act(), receipt: { fee_sats: 0, paid_with: "free" } };
    if (payer && "l402" in payer) return this.payWithL402(feeSat, what, payer, act);
    if (payer) return this.payWithCashu(feeSat, what, payer, act);
    const { ledger } = this.deps;
    await this.checkCaps(caller, feeSat);
    const user = Accounts.user(await payerIdOf(this.deps, caller));
    const holdId = randomUUID();
    try {
      await ledger.hold(holdId, user, feeSat * 1000, "market_fee", `market: ${what}`);
    } catch (err) {
      if (err instanceof InsufficientBalanceError) throw await this.insufficient(caller, feeSat, what);
      throw err;
    }
    let value: T;
    try {
      value = await act();
    } catch (err) {
      await ledger.releaseHold(holdId, user, `market: ${what} refused`);
      throw err;
    }
    await ledger.chargeHold(holdId, Accounts.marketFees, feeSat * 1000, user, `market: ${what}`);
    await this.deps.accounts.accounts.recordSpend(caller.id, feeSat);
    return { value, receipt: { fee_sats: feeSat, paid_with: "balance" } };
  }

  /** The credential's whole payment is the fee (402ai: no change); a refused `act` leaves it presentable. */
  private async payWithL402<T>(
    feeSat: number,
    what: string,
    payer: L402Payer,
    act: () => Promise<T>,
  ): Promise<{ value: T; receipt: FeeReceipt }> {
    if (!this.deps.l402) throw new PaymentError("invalid_token", "L402 is not accepted here", 401);
    const payment = await this.deps.l402.open(payer.l402, payer.route, feeSat, `market: ${what}`);
    let value: T;
    try {
      value = await act();
    } catch (err) {
      await payment.refund(`market: ${what} refused`); // the credential may be presented again
      throw err;
    }
    const settled = await payment.chargeFee(feeSat, Accounts.marketFees, `market: ${what}`);
    return { value, receipt: { fee_sats: settled.chargedSat, paid_with: "l402" } };
  }

  private async payWithCashu<T>(
    feeSat: number,
    what: string,
    cashu: CashuPayer,
    act: () => Promise<T>,
  ): Promise<{ value: T; receipt: FeeReceipt }> {
    const info = this.deps.cashu.inspect(cashu.token);
    if (info.amountSat < feeSat) {
      throw new PaymentError(
        "insufficient_balance",
        `${what} costs ${feeSat} sats; the X-Cashu token carries ${info.amountSat}`,
        402,
        { required_sats: feeSat },
      );
    }
    const payment = await this.deps.cashu.open(info, `market: ${what}`);
    cashu.onOpen?.(payment.holdId);
    let value: T;
    try {
      value = await act();
    } catch (err) {
      const back = await payment.refund(`market: ${what} refused`);
      if (back.changeToken) cashu.onChange(back.changeToken);
      throw err;
    }
    const settled = await payment.chargeFee(feeSat, Accounts.marketFees, `market: ${what}`);
    if (settled.changeToken) cashu.onChange(settled.changeToken);
    return {
      value,
      receipt: { fee_sats: settled.chargedSat, paid_with: "x-cashu", change_sats: settled.changeSat },
    };
  }
}
