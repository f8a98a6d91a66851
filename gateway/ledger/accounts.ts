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
  /**
   * the operator's takings from jobs an upstream provider served (`--upstream`): the whole charge,
   * since the operator pays that provider's own bill outside the ledger
   */
  upstream: (name: string) => `equity:upstream:${name}`,
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

/**
 * Jobs served by an upstream provider name it `upstream:<name>` where a node id would be (node ids
 * may not start so: gateway/routing/protocol.ts); such a job earns no provider anything.
 */
export const UPSTREAM_TARGET_PREFIX = "upstream:";

/** The upstream's name when `providerId` is an upstream provider, else undefined. */
export function upstreamName(providerId: string): string | undefined {
  return providerId.startsWith(UPSTREAM_TARGET_PREFIX)
    ? providerId.slice(UPSTREAM_TARGET_PREFIX.length)
    : undefined;
}
