/**
 * Provider payouts: earnings that pass the threshold (default 1,000 sats) are paid to the node's
 * Lightning address (LNURL-pay) through the mint's melt. Each payout is journaled (with its melt
 * quote) and its amount set aside in the ledger before any payment leaves, so a restart finishes
 * or reverts it instead of paying twice. The provider pays the routing fee, as in the seeds.
 */
import { randomUUID } from "node:crypto";
import { type PayoutRow, type PayoutStore, SqlitePayoutStore } from "./payout-store.js";
import type { EcashWallet } from "../../src/shared/ecash/index.js";
import type { Logger } from "../../src/shared/index.js";
import { invoiceForLightningAddress, type ResolveOptions } from "../../src/shared/lnurl.js";
import { Accounts, type Ledger } from "../ledger/index.js";
import { type MeltOutcome, payReservedMelt, resolveReservedMelt } from "./melt-payout.js";

export const DEFAULT_PAYOUT_THRESHOLD_SAT = 1000;

export type { PayoutRow } from "./payout-store.js";

export interface PayoutOptions {
  thresholdSat?: number;
  lnurl?: ResolveOptions;
  /** the node's Lightning address from its registration */
  addressOf: (nodeId: string) => Promise<string | undefined>;
  /** the mint the gateway melts at */
  mint: () => string;
  log: Logger;
}

export class ProviderPayouts {
  private readonly store: PayoutStore;
  private running = false;
  /** payouts this process is paying right now (the open-payout check leaves them alone) */
  private readonly inflight = new Set<string>();

  /** `store`: a SQLite file path (payouts.sqlite) or an opened store (PostgreSQL). */
  constructor(
    store: string | PayoutStore,
    private readonly ledger: Ledger,
    private readonly wallet: EcashWallet,
    private readonly opts: PayoutOptions,
  ) {
    this.store = typeof store === "string" ? new SqlitePayoutStore(store) : store;
  }

  close(): void {
    this.store.close();
  }

  get thresholdSat(): number {
    return this.opts.thresholdSat ?? DEFAULT_PAYOUT_THRESHOLD_SAT;
  }

  history(nodeId: string, limit = 20): Promise<PayoutRow[]> {
    return this.store.history(nodeId, limit);
  }

  /**
   * Pays every provider at or above the threshold that has a Lightning address. One run at a time,
   * in this process and (PostgreSQL) across processes: another process's run returns [] at once.
   */
  async runOnce(): Promise<PayoutRow[]> {
    if (this.running) return [];
    this.running = true;
    try {
      return (await this.store.exclusively(() => this.runNow())) ?? [];
    } finally {
      this.running = false;
    }
  }

  private async runNow(): Promise<PayoutRow[]> {
    const done: PayoutRow[] = [];
    await this.resolveOpen();
    const { balances } = await this.ledger.audit();
    for (const [account, msat] of balances) {
      if (!account.startsWith("provider:") || msat < this.thresholdSat * 1000) continue;
      const nodeId = account.slice("provider:".length);
      const row = await this.payoutNow(nodeId).catch((err) => {
        this.opts.log.warn("payout failed", { nodeId, err: String(err) });
        return undefined;
      });
      if (row) done.push(row);
    }
    return done;
  }

  /**
   * Pays one provider's whole balance (minus the routing fee reserve) to its Lightning address;
   * undefined when there is nothing to pay or another process is paying out right now.
   */
  payout(nodeId: string): Promise<PayoutRow | undefined> {
    return this.store.exclusively(() => this.payoutNow(nodeId));
  }

  private async payoutNow(nodeId: string): Promise<PayoutRow | undefined> {
    const address = await this.opts.addressOf(nodeId);
    if (!address) return undefined;
    const mint = this.opts.mint();
    const balanceSat = Math.floor((await this.ledger.balance(Accounts.provider(nodeId))) / 1000);
    if (balanceSat < this.thresholdSat) return undefined;
    // Ask for an invoice that leaves room for the mint's fee reserve; retry once with the exact reserve.
    let amount = balanceSat - Math.max(2, Math.ceil(balanceSat * 0.01));
    let invoice = await invoiceForLightningAddress(address, amount, this.opts.lnurl);
    let quote = await this.wallet.meltQuote(mint, invoice);
    if (quote.amountSat + quote.feeReserveSat > balanceSat) {
      amount = balanceSat - quote.feeReserveSat;
      if (amount <= 0) return undefined;
      invoice = await invoiceForLightningAddress(address, amount, this.opts.lnurl);
      quote = await this.wallet.meltQuote(mint, invoice);
    }
    const id = randomUUID();
    await this.store.add({
      id,
      node_id: nodeId,
      address,
      mint,
      amount: quote.amountSat,
      fee_reserve: quote.feeReserveSat,
      invoice,
      quote: quote.quote,
    });
    await this.ledger.reservePayout(
      Accounts.provider(nodeId),
      id,
      (quote.amountSat + quote.feeReserveSat) * 1000,
    );
    return this.pay(id);
  }

  private async pay(id: string): Promise<PayoutRow> {
    const row = (await this.get(id))!;
    this.inflight.add(id);
    try {
      await this.record(
        id,
        await payReservedMelt(this.wallet, this.ledger, Accounts.provider(row.node_id), row),
      );
    } finally {
      this.inflight.delete(id);
    }
    return (await this.get(id))!;
  }

  /** Writes how a payment ended; an open one stays "paying" until the mint is asked again. */
  private async record(id: string, outcome: MeltOutcome): Promise<void> {
    if (outcome.state === "paid")
      await this.store.update(id, { state: "paid", fee: outcome.feeSat, preimage: outcome.preimage });
    else if (outcome.state === "failed")
      await this.store.update(id, { state: "failed", error: outcome.error });
  }

  /** Payouts left "paying" (a lost answer, a PENDING melt, a restart) are settled by asking the mint. */
  private async resolveOpen(): Promise<void> {
    const open = await this.store.open();
    for (const row of open) {
      if (this.inflight.has(row.id)) continue;
      const outcome = await resolveReservedMelt(
        this.wallet,
        this.ledger,
        Accounts.provider(row.node_id),
        row,
      );
      if (outcome.state === "open")
        this.opts.log.warn("payout still open; will ask the mint again", { id: row.id });
      await this.record(row.id, outcome);
    }
  }

  get(id: string): Promise<PayoutRow | undefined> {
    return this.store.get(id);
  }

  /**
   * After a restart: payouts still "paying" are settled by asking the mint (see resolveOpen). Not
   * while another process runs payouts: those may be its payments in flight (its next run resolves).
   */
  async recover(): Promise<void> {
    await this.store.exclusively(() => this.resolveOpen());
  }
}
