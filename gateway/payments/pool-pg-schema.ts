/** The schema of the gateway's PostgreSQL ecash pool (component `pool`), one migration per version. */
import type { Migration } from "../../src/shared/index.js";

/**
 * No counts table as in SQLite: a counts row kept by triggers would make every reservation of one
 * denomination wait on that row's lock in every process. Plans read capped counts instead
 * (`planCounts`): a few index probes whatever the pool's size.
 */
export const POOL_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
CREATE TABLE pool_proofs (
  secret TEXT PRIMARY KEY, mint TEXT NOT NULL, keyset_id TEXT NOT NULL, amount BIGINT NOT NULL, c TEXT NOT NULL,
  dleq TEXT, state TEXT NOT NULL CHECK (state IN ('available', 'reserved', 'spent')), op TEXT, owner TEXT,
  created_at BIGINT NOT NULL);
CREATE INDEX pool_proofs_available ON pool_proofs (mint, amount) WHERE state = 'available';
CREATE INDEX pool_proofs_unspent ON pool_proofs (mint, amount) WHERE state <> 'spent';
CREATE INDEX pool_proofs_op ON pool_proofs (op) WHERE op IS NOT NULL;
CREATE INDEX pool_proofs_forgettable ON pool_proofs (created_at) WHERE state = 'spent' AND op IS NULL;
CREATE TABLE pool_counters (keyset_id TEXT PRIMARY KEY, next BIGINT NOT NULL);
CREATE TABLE pool_reservations (
  id BIGSERIAL PRIMARY KEY, mint TEXT NOT NULL, keyset_id TEXT NOT NULL, start BIGINT NOT NULL,
  count INTEGER NOT NULL, op TEXT, owner TEXT, created_at BIGINT NOT NULL);
CREATE INDEX pool_reservations_op ON pool_reservations (op);
CREATE TABLE pool_change (
  id TEXT PRIMARY KEY, mint TEXT NOT NULL, amount BIGINT NOT NULL, token TEXT NOT NULL, created_at BIGINT NOT NULL,
  fetched_at BIGINT);
CREATE INDEX pool_change_fetched ON pool_change (fetched_at) WHERE fetched_at IS NOT NULL;
CREATE TABLE pool_seed (id INTEGER PRIMARY KEY CHECK (id = 1), seed TEXT NOT NULL);
`,
  },
  {
    // Retention of change nobody fetched: when the mint was last asked about it.
    version: 2,
    sql: `
ALTER TABLE pool_change ADD COLUMN checked_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX pool_change_unfetched ON pool_change (checked_at, created_at) WHERE fetched_at IS NULL;
`,
  },
  {
    // Claims stored in the pool whose owner (X-Cashu hold, account) the ledger has not credited yet:
    // the claim's counter ranges are resolved with its proofs, so a crash before the credit left no
    // other trace of whose the value is. Dropped by primary key once credited.
    version: 3,
    sql: `
CREATE TABLE pool_claims_unfunded (
  op TEXT PRIMARY KEY, mint TEXT NOT NULL, sat BIGINT NOT NULL, owner TEXT, created_at BIGINT NOT NULL);
`,
  },
];
