/** What the market is given (its collaborators and options) and the shapes its parts share. */
import type { Logger, PgDatabase } from "../../src/shared/index.js";
import type { Ledger } from "../ledger/index.js";
import type { Oracle } from "../oracle/index.js";
import type { AccountPayments } from "../payments/account-payments.js";
import type { L402Payments } from "../payments/l402.js";
import type { GatewayWallet } from "../payments/wallet.js";
import type { CashuPayments } from "../payments/xcashu.js";

export const HOUR = 3_600_000;

export interface MarketOptions {
  /** fee for posting a task, in USD (default 0.05) */
  taskFeeUsd?: number;
  /** fee for submitting a quote, in USD (default 0.01) */
  quoteFeeUsd?: number;
  /** after a delivery the buyer has this long to confirm or dispute, then the escrow goes to the
   *  worker (default 72 h; 0: never released without the buyer) */
  reviewWindowMs?: number;
  /** deadline of a task that names none (default 7 days) */
  defaultDeadlineMs?: number;
  /** largest delivery, decoded (default 5 MiB) */
  maxDeliveryBytes?: number;
  /** how often the sweeper runs (default 60 s; 0 disables the timer — call sweep() yourself) */
  sweepIntervalMs?: number;
  /** authenticated market requests per key and minute (default 120) */
  rateLimitPerMinute?: number;
}

export const DEFAULTS: Required<MarketOptions> = {
  taskFeeUsd: 0.05,
  quoteFeeUsd: 0.01,
  reviewWindowMs: 72 * HOUR,
  defaultDeadlineMs: 7 * 24 * HOUR,
  maxDeliveryBytes: 5 * 1024 * 1024,
  sweepIntervalMs: 60_000,
  rateLimitPerMinute: 120,
};

export interface MarketDeps {
  ledger: Ledger;
  accounts: AccountPayments;
  cashu: CashuPayments;
  wallet: GatewayWallet;
  oracle: Oracle;
  log: Logger;
  /** PostgreSQL shared by several gateway processes; without it, market.sqlite in the data dir */
  database?: PgDatabase;
  /** L402 one-shot credentials (absent: fees are not payable with L402) */
  l402?: Pick<L402Payments, "open">;
}

/** Paying a fee with an X-Cashu token: `onChange` receives the change (or refund) token. */
export interface CashuPayer {
  token: string;
  onChange(token: string): void;
  /** the payment's request id: its change stays claimable at GET /v1/cashu/change/<id> */
  onOpen?(requestId: string): void;
}

/** Paying a fee with an L402 credential (`Authorization: L402 <macaroon>:<preimage>`) issued for `route`. */
export interface L402Payer {
  l402: { macaroon: string; preimage: string };
  route: string;
}

/** How a fee is paid when not from the balance. */
export type FeePayer = CashuPayer | L402Payer;

export interface FeeReceipt {
  fee_sats: number;
  paid_with: "balance" | "x-cashu" | "l402" | "free";
  change_sats?: number;
}

export interface SweepReport {
  expired: number;
  released: number;
  settled: number;
  collections: number;
}
