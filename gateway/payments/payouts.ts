/**
 * Provider payouts: earnings that pass the threshold (default 1,000 sats) are paid to the node's
 * Lightning address (LNURL-pay) through the mint's melt. Each payout is journaled (with its melt
 * quote) and its amount set aside in the ledger before any payment leaves, so a restart finishes
 * or reverts it instead of paying twice. The provider pays the routing fee, as in the seeds.
 */
import { randomUUID } from "node:crypto";
import { type Db, openDatabase } from "../../src/shared/sqlite.js";
import type { EcashWallet } from "../../src/shared/ecash/index.js";
import type { Logger } from "../../src/shared/index.js";
import { invoiceForLightningAddress, type ResolveOptions } from "../../src/shared/lnurl.js";
import { Accounts, type Ledger } from "../ledger/index.js";
import { type MeltOutcome, payReservedMelt, resolveReservedMelt } from "./melt-payout.js";

export const DEFAULT_PAYOUT_THRESHOLD_SAT = 1000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS payouts (
  id TEXT PRIMARY KEY, node_id TEXT NOT NULL, address TEXT NOT NULL, mint TEXT NOT NULL, amount INTEGER NOT NULL,
  fee_reserve INTEGER NOT NULL, invoice TEXT NOT NULL, quote TEXT NOT NULL, state TEXT NOT NULL, fee INTEGER,
  preimage TEXT, error TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS payouts_node ON payouts (node_id, created_at);
`;

export interface PayoutRow {
  id: string;
  node_id: string;
  address: string;
  mint: string;
  amount: number;
  fee_reserve: number;
  invoice: string;
  quote: string;
  state: "paying" | "paid" | "failed";
  fee: number | null;
  preimage: string | null;
  error: string | null;
  created_at: number;
  updated_at: number;
}

export interface PayoutOptions {
  thresholdSat?: number;
  lnurl?: ResolveOptions;
  /** the node's Lightning address from its registration */
  addressOf: (nodeId: string) => string | undefined;
  /** the mint the gateway melts at */
  mint: () => string;
  log: Logger;
}

export class ProviderPayouts {
  private readonly db: Db;
  private running = false;
  /** payouts this process is paying right now (the open-payout check leaves them alone) */
  private readonly inflight = new Set<string>();

  constructor(
    path: string,
    private readonly ledger: Ledger,
    private readonly wallet: EcashWallet,
    private readonly opts: PayoutOptions,
  ) {
    this.db = openDatabase(path, SCHEMA);
  }

  close(): void {
    this.db.close();
  }

  get thresholdSat(): number {
    return this.opts.thresholdSat ?? DEFAULT_PAYOUT_THRESHOLD_SAT;
  }

  history(nodeId: string, limit = 20): PayoutRow[] {
    return this.db
      .prepare("SELECT * FROM payouts WHERE node_id = ? ORDER BY created_at DESC LIMIT ?")
      .all(nodeId, limit) as PayoutRow[];
  }

  private update(id: string, fields: Partial<PayoutRow>): void {
    const sets = Object.keys(fields).map((k) => `${k} = @${k}`);
    this.db
      .prepare(`UPDATE payouts SET ${sets.join(", ")}, updated_at = @now WHERE id = @id`)
      .run({ ...fields, id, now: Date.now() });
  }

  /** Pays every provider at or above the threshold that has a Lightning address. One run at a time. */
  async runOnce(): Promise<PayoutRow[]> {
    if (this.running) return [];
    this.running = true;
    try {
      const done: PayoutRow[] = [];
      await this.resolveOpen();
      const { balances } = await this.ledger.audit();
      for (const [account, msat] of balances) {
        if (!account.startsWith("provider:") || msat < this.thresholdSat * 1000) continue;
        const nodeId = account.slice("provider:".length);
        const row = await this.payout(nodeId).catch((err) => {
          this.opts.log.warn("payout failed", { nodeId, err: String(err) });
          return undefined;
        });
        if (row) done.push(row);
      }
      return done;
    } finally {
      this.running = false;
    }
  }

  /** Pays one provider's whole balance (minus the routing fee reserve) to its Lightning address. */
  async payout(nodeId: string): Promise<PayoutRow | undefined> {
    const address = this.opts.addressOf(nodeId);
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
    this.db
      .prepare(
        `INSERT INTO payouts (id, node_id, address, mint, amount, fee_reserve, invoice, quote, state, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'paying', ?, ?)`,
      )
      .run(
        id,
        nodeId,
        address,
        mint,
        quote.amountSat,
        quote.feeReserveSat,
        invoice,
        quote.quote,
        Date.now(),
        Date.now(),
      );
    await this.ledger.reservePayout(
      Accounts.provider(nodeId),
      id,
      (quote.amountSat + quote.feeReserveSat) * 1000,
    );
    return this.pay(id);
  }

  private async pay(id: string): Promise<PayoutRow> {
    const row = this.get(id)!;
    this.inflight.add(id);
    try {
      this.record(id, await payReservedMelt(this.wallet, this.ledger, Accounts.provider(row.node_id), row));
    } finally {
      this.inflight.delete(id);
    }
    return this.get(id)!;
  }

  /** Writes how a payment ended; an open one stays "paying" until the mint is asked again. */
  private record(id: string, outcome: MeltOutcome): void {
    if (outcome.state === "paid")
      this.update(id, { state: "paid", fee: outcome.feeSat, preimage: outcome.preimage });
    else if (outcome.state === "failed") this.update(id, { state: "failed", error: outcome.error });
  }

  /** Payouts left "paying" (a lost answer, a PENDING melt, a restart) are settled by asking the mint. */
  private async resolveOpen(): Promise<void> {
    const open = this.db.prepare("SELECT * FROM payouts WHERE state = 'paying'").all() as PayoutRow[];
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
      this.record(row.id, outcome);
    }
  }

  get(id: string): PayoutRow | undefined {
    return this.db.prepare("SELECT * FROM payouts WHERE id = ?").get(id) as PayoutRow | undefined;
  }

  /** After a restart: payouts still "paying" are settled by asking the mint (see resolveOpen). */
  async recover(): Promise<void> {
    await this.resolveOpen();
  }
}
