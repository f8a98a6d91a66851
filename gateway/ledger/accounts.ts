/**
 * Ledger account names. Liabilities (what the gateway owes) and equity are credit-normal; the
 * ecash the gateway holds at a mint is the one asset, debit-normal. Every entry moves msats from
 * one account to another, so the books always sum to zero.
 */
export const Accounts = {
  /** asset: ecash proofs the gateway holds at a mint */
  ecash: (mintUrl: string) => `asset:ecash:${mintUrl}`,
  /** a prepaid account (rc_ key, sk- session or raw-token session) */
  user: (accountId: string) => `user:${accountId}`,
  /** money reserved for one request until it settles */
  hold: (holdId: string) => `hold:${holdId}`,
  /** change owed to an X-Cashu client until its token is made */
  change: (holdId: string) => `change:${holdId}`,
  /** money on its way out over Lightning (a provider payout, a market collect) */
  payout: (payoutId: string) => `payout:${payoutId}`,
  /** what a provider node has earned and not been paid */
  provider: (nodeId: string) => `provider:${nodeId}`,
  /** a market task's price, locked from the buyer until it goes to the worker or back */
  escrow: (taskId: string) => `escrow:${taskId}`,
  /** the gateway's share of every job */
  fees: "equity:fees",
  /** free-tier jobs are paid to providers from here (goes negative: the gateway's cost) */
  promo: "equity:promo",
  /** the market's posting and quoting fees */
  marketFees: "equity:market_fees",
  /** Lightning routing fees the gateway paid out */
  lightningFees: "equity:lightning_fees",
} as const;

export type AccountKind = "asset" | "user" | "hold" | "change" | "payout" | "provider" | "escrow" | "equity";

export function accountKind(account: string): AccountKind {
  return account.split(":", 1)[0] as AccountKind;
}
