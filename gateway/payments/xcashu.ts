/**
 * Pay-per-request with an `X-Cashu` token (zero custody): claim the token by swap, hold all of it
 * for the request, settle the charge to the provider and the gateway, and return the rest as a
 * fresh token in the client's format. Every step is a ledger entry; the change token is stored
 * before it is sent so a client that disconnected can claim it later.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "../../src/shared/index.js";
import { Accounts, HoldExistsError, type Ledger } from "../ledger/index.js";
import { PaymentError } from "./errors.js";
import { EcashError, inspectToken, type TokenFormat, type TokenInfo } from "../../src/shared/ecash/index.js";
import { claimOp } from "./claims.js";
import type { GatewayWallet } from "./wallet.js";
import { EndsOnce } from "./once.js";

export interface SettledPayment {
  chargedSat: number;
  changeSat: number;
  /** absent when no change is due */
  changeToken?: string;
}

export class CashuPayment extends EndsOnce {
  readonly method = "xcashu";
  /** the quote for this request (prompt bound + max_tokens): a job is never charged above it */
  maxChargeSat?: number;

  constructor(
    readonly holdId: string,
    readonly info: TokenInfo,
    readonly amountSat: number,
    private readonly ledger: Ledger,
    private readonly wallet: GatewayWallet,
    private readonly log: Logger,
  ) {
    super();
  }

  /** Charges `chargedSat` (capped at what was paid) for `nodeId`'s work and returns the change. */
  async settle(
    chargedSat: number,
    nodeId: string,
    providerSharePct: number,
    memo?: string,
  ): Promise<SettledPayment> {
    this.end();
    const charged = Math.min(chargedSat, this.amountSat, this.maxChargeSat ?? this.amountSat);
    const ended =
      charged > 0
        ? await this.ledger.settleJob(
            this.holdId,
            { chargedMsat: charged * 1000, providerId: nodeId, providerSharePct },
            Accounts.change(this.holdId),
            memo,
          )
        : await this.ledger.releaseHold(this.holdId, Accounts.change(this.holdId), memo);
    if (!ended) return this.changeOfEndedHold();
    return { chargedSat: charged, ...(await this.returnChange(this.amountSat - charged)) };
  }

  /** A fixed fee (market posting and quoting): `feeSat` to the `to` account, the rest back as change. */
  async chargeFee(feeSat: number, to: string, memo?: string): Promise<SettledPayment> {
    this.end();
    const charged = Math.min(feeSat, this.amountSat);
    if (!(await this.ledger.chargeHold(this.holdId, to, charged * 1000, Accounts.change(this.holdId), memo)))
      return this.changeOfEndedHold();
    return { chargedSat: charged, ...(await this.returnChange(this.amountSat - charged)) };
  }

  /**
   * The hold was ended by someone else while this request ran: a stale-hold sweep or a restart's
   * recovery (with several processes, possibly another one) refunded all of it as change. That
   * refund stands: nothing is charged here, and the change is what the ledger owes under the id,
   * made by whichever side gets there first with the same amount, never this request's own figure
   * (a token of another amount than the one posted would part the ledger from the wallet).
   */
  private async changeOfEndedHold(): Promise<SettledPayment> {
    const owedSat = Math.floor((await this.ledger.balance(Accounts.change(this.holdId))) / 1000);
    if (owedSat > 0) return { chargedSat: 0, ...(await this.returnChange(owedSat)) };
    // Already paid out: the token is stored before the ledger entry that zeroes what is owed.
    const token = await this.wallet.storedChange(this.holdId);
    if (!token) return { chargedSat: 0, changeSat: 0 };
    this.log.warn("hold was refunded elsewhere while being served; the refund stands", { id: this.holdId });
    return { chargedSat: 0, changeSat: inspectToken(token).amountSat, changeToken: token };
  }

  /** Nothing was served: everything comes back. */
  async refund(memo?: string): Promise<SettledPayment> {
    this.end();
    await this.ledger.releaseHold(this.holdId, Accounts.change(this.holdId), memo);
    return { chargedSat: 0, ...(await this.returnChange(this.amountSat)) };
  }

  private async returnChange(changeSat: number): Promise<{ changeSat: number; changeToken?: string }> {
    if (changeSat <= 0) return { changeSat: 0 };
    try {
      const token = await payOutChange(
        this.ledger,
        this.wallet,
        this.holdId,
        this.info.mint,
        changeSat,
        this.info.format,
      );
      return { changeSat, changeToken: token };
    } catch (err) {
      // The change stays owed in the ledger (change:<id>); the client can claim it later.
      this.log.error("could not make the change token; it stays claimable", {
        id: this.holdId,
        err: String(err),
      });
      return { changeSat };
    }
  }
}

/** Turns change owed in the ledger (change:<holdId>) into a stored token, exactly once. */
export async function payOutChange(
  ledger: Ledger,
  wallet: GatewayWallet,
  holdId: string,
  mint: string,
  changeSat: number,
  format: TokenFormat,
): Promise<string> {
  const token = await wallet.payChange(holdId, mint, changeSat, format);
  await ledger.transfer("change_paid", holdId, [
    { from: Accounts.change(holdId), to: Accounts.ecash(mint), msat: changeSat * 1000 },
  ]);
  return token;
}

export class CashuPayments {
  constructor(
    private readonly wallet: GatewayWallet,
    private readonly ledger: Ledger,
    private readonly log: Logger,
  ) {}

  /** Reads the token without claiming it (format, mint, amount): cheap checks before any swap. */
  inspect(header: string): TokenInfo {
    const info = inspectToken(header);
    if (!this.wallet.isTrusted(info.mint)) {
      throw new PaymentError(
        "foreign_mint",
        `mint ${info.mint} is not trusted here; use ${this.wallet.trustedMints[0]}`,
        400,
        {
          trusted_mints: this.wallet.trustedMints,
        },
      );
    }
    return info;
  }

  /**
   * Claims the token and holds all of it for one request. A client may choose the request id (a
   * UUID it journals first) so that after its own crash it can still fetch the change.
   */
  async open(info: TokenInfo, memo?: string, requestId?: string): Promise<CashuPayment> {
    const holdId = requestId ?? randomUUID();
    // The id is taken before the token is claimed: a second request naming it (however many run at
    // once) is refused while its token is still unspent, instead of spending it into nobody's hold.
    try {
      await this.ledger.reserveCashuHold(holdId, info.mint, info.format, memo);
    } catch (err) {
      if (err instanceof HoldExistsError)
        throw new PaymentError(
          "conflict",
          "X-Owlrun-Request-Id is already used by another request; your token was not spent",
          409,
        );
      throw err;
    }
    let claimed: { mint: string; amountSat: number };
    const op = claimOp.xcashu(info.format, holdId);
    try {
      claimed = await this.wallet.claim(info, op);
    } catch (err) {
      // Refused: nothing was swapped, the id is free again. Unanswered: the swap may have happened;
      // the reservation stays, so the value restored at the next start lands under this id.
      if (!(err instanceof EcashError && err.type === "mint_unavailable"))
        await this.ledger.dropReservation(holdId);
      throw err;
    }
    const funded = await this.ledger.fundCashuHold(holdId, claimed.mint, claimed.amountSat * 1000);
    // Credited (or owed as change): the pool's record of the claim is no longer needed by recovery.
    await this.wallet.claimFunded(op);
    if (funded === "change") {
      // The reservation was swept while the mint was slow: the value is owed as change already.
      const token = await payOutChange(
        this.ledger,
        this.wallet,
        holdId,
        claimed.mint,
        claimed.amountSat,
        info.format,
      ).catch(() => undefined);
      throw new PaymentError("mint_unavailable", "the mint answered too late; your token comes back", 503, {
        ...(token ? { change_token: token } : {}),
        request_id: holdId,
      });
    }
    return new CashuPayment(holdId, info, claimed.amountSat, this.ledger, this.wallet, this.log);
  }
}
