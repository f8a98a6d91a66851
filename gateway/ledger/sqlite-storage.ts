/**
 * The embedded default: `LedgerStore` (one SQLite file, synchronous BEGIN IMMEDIATE transactions,
 * unchanged) behind the async `LedgerStorage` interface. Each call runs the store's method as it
 * always did; only the result is wrapped in a promise.
 */
import {
  type FundOutcome,
  type HoldRow,
  type LedgerStorage,
  type Posting,
  type StatementEntry,
} from "./storage.js";
import { LedgerStore } from "./store.js";

export class SqliteLedgerStorage implements LedgerStorage {
  constructor(readonly store: LedgerStore) {}

  async balance(account: string): Promise<number> {
    return this.store.balance(account);
  }
  async transfer(kind: string, ref: string | null, postings: Posting[]): Promise<boolean> {
    return this.store.transfer(kind, ref, postings);
  }
  async moveAll(kind: string, ref: string, from: string, to: string): Promise<boolean> {
    return this.store.moveAll(kind, ref, from, to);
  }
  async reserveHold(holdId: string, owner: string, kind: string, memo?: string): Promise<void> {
    this.store.reserveHold(holdId, owner, kind, memo);
  }
  async holdFunded(holdId: string): Promise<boolean> {
    return this.store.holdFunded(holdId);
  }
  async fundReservedHold(holdId: string, msat: number, from: string): Promise<FundOutcome> {
    return this.store.fundReservedHold(holdId, msat, from);
  }
  async dropReservation(holdId: string): Promise<void> {
    this.store.dropReservation(holdId);
  }
  async hold(
    holdId: string,
    account: string,
    msat: number,
    kind: string,
    memo?: string,
    creditMsat = 0,
  ): Promise<void> {
    this.store.hold(holdId, account, msat, kind, memo, creditMsat);
  }
  async openFundedHold(
    holdId: string,
    owner: string,
    msat: number,
    kind: string,
    postings: Posting[],
    memo?: string,
  ): Promise<void> {
    this.store.openFundedHold(holdId, owner, msat, kind, postings, memo);
  }
  async withdrawAsChange(
    ref: string,
    account: string,
    owner: string,
    msat: number,
    payer: string,
  ): Promise<void> {
    this.store.withdrawAsChange(ref, account, owner, msat, payer);
  }
  async getHold(holdId: string): Promise<HoldRow | undefined> {
    return this.store.getHold(holdId);
  }
  async settleHold(
    holdId: string,
    postings: Posting[],
    remainderTo: string,
    memo?: string,
  ): Promise<boolean> {
    return this.store.settleHold(holdId, postings, remainderTo, memo);
  }
  async activeHolds(): Promise<HoldRow[]> {
    return this.store.activeHolds();
  }
  async holdsOwnedLike(pattern: string): Promise<HoldRow[]> {
    return this.store.holdsOwnedLike(pattern);
  }
  async earned(account: string, sinceMs = 0): Promise<number> {
    return this.store.earned(account, sinceMs);
  }
  async credited(account: string, sinceMs = 0): Promise<number> {
    return this.store.credited(account, sinceMs);
  }
  async entriesOf(account: string, fromMs: number, toMs: number): Promise<StatementEntry[]> {
    return this.store.entriesOf(account, fromMs, toMs);
  }
  async compact(): Promise<number> {
    return this.store.compact();
  }
  async balances(): Promise<Map<string, number>> {
    return this.store.balances();
  }
  async close(): Promise<void> {
    this.store.close();
  }
}
