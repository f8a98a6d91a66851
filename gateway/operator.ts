/**
 * What the operator does from the shell on a gateway's data dir (or its database), while the
 * gateway runs or not: business keys and broadcasts. Each opens the store, acts, and closes it.
 */
import { type PgDatabase, privateDir } from "../src/shared/index.js";
import { type BroadcastStore, openBroadcastStore } from "./broadcasts/index.js";
import type { BusinessTier } from "./payments/accounts.js";
import { openAccountStore } from "./payments/accounts-pg.js";

/**
 * A business key (`bsvapi_sk_…` with a tier) made by the operator from the shell; the key is shown
 * once. With a credit limit (sats) it is metered: used with no payment header, billed monthly.
 */
export async function createBusinessKey(
  dataDir: string,
  tier: BusinessTier,
  name: string | null,
  database?: PgDatabase,
  creditLimitSat = 0,
): Promise<{ id: string; key: string }> {
  privateDir(dataDir);
  const store = await openAccountStore(dataDir, database);
  try {
    return await store.registerBusiness(name, tier, creditLimitSat);
  } finally {
    store.close();
  }
}

/**
 * Changes the credit limit of an existing business key (0: prepaid again; what it owes stays owed).
 * A running gateway reads the limit at every request, so it applies at once. False: no such key.
 */
export async function setBusinessCreditLimit(
  dataDir: string,
  accountId: string,
  creditLimitSat: number,
  database?: PgDatabase,
): Promise<boolean> {
  privateDir(dataDir);
  const store = await openAccountStore(dataDir, database);
  try {
    return await store.setCreditLimit(accountId, creditLimitSat);
  } finally {
    store.close();
  }
}

/** Runs `fn` on a data dir's broadcast store (the CLI publishes and expires while the gateway runs). */
export async function withBroadcasts<T>(
  dataDir: string,
  fn: (store: BroadcastStore) => Promise<T>,
  database?: PgDatabase,
): Promise<T> {
  const store = await openBroadcastStore(dataDir, database);
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}
