/**
 * What the `Ledger` facade needs from where the books are kept: each method is one atomic,
 * balanced step, whether the books live in one SQLite file (`SqliteLedgerStorage` over
 * `LedgerStore`, the embedded default) or in PostgreSQL shared by several gateway processes
 * (`PgLedgerStore`). Both run the same contract test (test/postgres/ledger.contract.test.ts).
 */
import { accountKind } from "./accounts.js";

export interface Posting {
  from: string;
  to: string;
  msat: number;
}

export interface StatementEntry {
  kind: string;
  ref: string | null;
  at: number;
  memo: string | null;
  /** signed: + when the account grew */
  msat: number;
}

export type HoldState = "active" | "settled" | "released";

export interface HoldRow {
  id: string;
  account: string;
  msat: number;
  state: HoldState;
  kind: string;
  created_at: number;
  updated_at: number;
  /** free text: job id, model, why it ended */
  memo: string | null;
}

export type FundOutcome = "funded" | "change" | "already";

export interface LedgerStorage {
  balance(account: string): Promise<number>;
  /** Moves value; refuses to overdraw user and hold accounts. Idempotent by (kind, ref). */
  transfer(kind: string, ref: string | null, postings: Posting[]): Promise<boolean>;
  /** Everything `from` holds goes to `to`, read and written at once; false when (kind, ref) was done. */
  moveAll(kind: string, ref: string, from: string, to: string): Promise<boolean>;
  /** Takes a hold id before its money arrives (HoldExistsError when taken). */
  reserveHold(holdId: string, owner: string, kind: string, memo?: string): Promise<void>;
  holdFunded(holdId: string): Promise<boolean>;
  fundReservedHold(holdId: string, msat: number, from: string): Promise<FundOutcome>;
  dropReservation(holdId: string): Promise<void>;
  /**
   * Reserves `msat` of `account`: balance + creditMsat >= msat or nothing happens
   * (InsufficientBalanceError). `creditMsat` > 0 only for a metered business key: its user account
   * may then go down to −creditMsat (see `Ledger.hold`).
   */
  hold(
    holdId: string,
    account: string,
    msat: number,
    kind: string,
    memo?: string,
    creditMsat?: number,
  ): Promise<void>;
  openFundedHold(
    holdId: string,
    owner: string,
    msat: number,
    kind: string,
    postings: Posting[],
    memo?: string,
  ): Promise<void>;
  withdrawAsChange(ref: string, account: string, owner: string, msat: number, payer: string): Promise<void>;
  getHold(holdId: string): Promise<HoldRow | undefined>;
  /** Ends a hold exactly once (false for every caller after the first). */
  settleHold(holdId: string, postings: Posting[], remainderTo: string, memo?: string): Promise<boolean>;
  activeHolds(): Promise<HoldRow[]>;
  holdsOwnedLike(pattern: string): Promise<HoldRow[]>;
  /** A provider's earnings from the running totals (lifetime, or since a time). */
  earned(account: string, sinceMs?: number): Promise<number>;
  /** The same, recomputed from every entry (what the running totals must equal). */
  credited(account: string, sinceMs?: number): Promise<number>;
  entriesOf(account: string, fromMs: number, toMs: number): Promise<StatementEntry[]>;
  compact(): Promise<number>;
  /** Every non-zero balance, read at one instant. */
  balances(): Promise<Map<string, number>>;
  close(): Promise<void>;
}

/** Ledger kinds whose credits to a provider are earnings (what `heartbeat_ack` reports). */
export const EARNING_KINDS: readonly string[] = ["settle", "free_job"];
export const EARNING_KINDS_SQL = EARNING_KINDS.map((k) => `'${k}'`).join(", ");
export const DAY_MS = 86_400_000;

/** debit-normal accounts: their balance grows with debits */
export const isDebitNormal = (account: string) => accountKind(account) === "asset";

/** Only equity (the gateway's own books) and the asset may go negative; what is owed to others may not. */
export const mayGoNegative = (account: string) => {
  const k = accountKind(account);
  return k === "equity" || k === "asset";
};

/** Assets minus claims over a set of balances: 0 when the books balance. */
export function imbalanceOf(balances: Map<string, number>): number {
  let assets = 0;
  let claims = 0;
  for (const [account, msat] of balances) {
    if (isDebitNormal(account)) assets += msat;
    else claims += msat;
  }
  return assets - claims;
}
