/**
 * Workers collect their earnings over Lightning through the mint's melt. A collect is journaled and
 * its amount plus the routing-fee reserve set aside in the ledger before anything is paid; an answer
 * that never came is settled later by asking the mint (the sweeper). The collect holds its lease
 * (leases.ts) from before its journal row exists until its outcome is recorded, and the sweeper
 * resolves a collect only under the same lease: a melt in flight in any process is never reverted
 * from under it, so a collect is paid once.
 */
import { randomUUID } from "node:crypto";
import { EcashError } from "../../src/shared/ecash/index.js";
import { Accounts, InsufficientBalanceError } from "../ledger/index.js";
import type { AccountRow } from "../payments/accounts.js";
import { PaymentError } from "../payments/errors.js";
import { type MeltOutcome, payReservedMelt, resolveReservedMelt } from "../payments/melt-payout.js";
import type { MarketDeps } from "./deps.js";
import { CollectFailedError, MarketForbiddenError } from "./errors.js";
import { type MarketFees, payerIdOf } from "./fees.js";
import { collectLease, type Leases } from "./leases.js";
import type { CollectRequest } from "./schemas.js";
import type { CollectionRow, MarketStore } from "./store.js";
import { collectionView } from "./views.js";

export class MarketCollections {
  constructor(
    private readonly store: MarketStore,
    private readonly deps: MarketDeps,
    private readonly leases: Leases,
    private readonly fees: MarketFees,
  ) {}

  /** Pays the caller's balance to a bolt11 invoice (200 paid, 202 still in flight, 502 failed). */
  async collect(caller: AccountRow, body: CollectRequest) {
    if (caller.parent_id) throw new MarketForbiddenError("child keys cannot collect; use the parent key");
    const owner = await payerIdOf(this.deps, caller);
    const mint = this.deps.wallet.trustedMints[0];
    if (!mint) throw new EcashError("mint_unavailable", "the gateway has no mint to pay through", 503);
    const invoice = body.invoice.replace(/^lightning:/i, "");
    const quote = await this.deps.wallet.meltQuote(mint, invoice);
    if (body.amount_sats !== undefined && body.amount_sats !== quote.amountSat)
      throw new PaymentError(
        "invalid_request",
        `the invoice is for ${quote.amountSat} sats, not ${body.amount_sats}`,
        400,
      );
    const need = quote.amountSat + quote.feeReserveSat;
    const id = randomUUID();
    const row = await this.leases.run(collectLease(id), async () => {
      await this.store.addCollection({
        id,
        account_id: owner,
        mint,
        invoice,
        quote: quote.quote,
        amount: quote.amountSat,
        fee_reserve: quote.feeReserveSat,
        created_at: Date.now(),
      });
      try {
        await this.deps.ledger.reservePayout(Accounts.user(owner), id, need * 1000);
      } catch (err) {
        await this.store.dropCollection(id); // nothing was set aside, nothing will be paid
        if (err instanceof InsufficientBalanceError)
          throw await this.fees.insufficient(
            caller,
            need,
            `collecting ${quote.amountSat} sats (plus up to ${quote.feeReserveSat} routing fee)`,
          );
        throw err;
      }
      await this.pay((await this.store.collection(id))!);
      return (await this.store.collection(id))!;
    });
    // A fresh id: nobody else can hold its lease.
    if (!row) throw new Error(`collect ${id}: its lease was taken`);
    if (row.state === "failed") throw new CollectFailedError(row.error ?? "refused");
    return { ...collectionView(row), balance_sats: await this.deps.accounts.balanceSat(caller) };
  }

  /** The sweeper: collects left paying (by a crash or a lost answer) that nobody is paying now. */
  async resolvePaying(): Promise<number> {
    let n = 0;
    for (const c of await this.store.payingCollections()) {
      const done = await this.leases.run(collectLease(c.id), async () => {
        const fresh = await this.store.collection(c.id);
        return fresh?.state === "paying" && this.resolve(fresh);
      });
      if (done) n++;
    }
    return n;
  }

  private async pay(c: CollectionRow): Promise<void> {
    const outcome = await payReservedMelt(this.deps.wallet, this.deps.ledger, Accounts.user(c.account_id), c);
    if (outcome.state === "open")
      this.deps.log.warn("collect outcome unknown; will ask the mint", { id: c.id });
    await this.record(c.id, outcome);
  }

  /** A collect left paying: the mint says whether it was paid (see melt-payout.ts). */
  private async resolve(c: CollectionRow): Promise<boolean> {
    const outcome = await resolveReservedMelt(
      this.deps.wallet,
      this.deps.ledger,
      Accounts.user(c.account_id),
      c,
    );
    return this.record(c.id, outcome);
  }

  private async record(id: string, outcome: MeltOutcome): Promise<boolean> {
    if (outcome.state === "paid")
      return this.store.finishCollection(id, "paid", { fee: outcome.feeSat, preimage: outcome.preimage });
    if (outcome.state === "failed")
      return this.store.finishCollection(id, "failed", { error: outcome.error });
    return false;
  }
}
