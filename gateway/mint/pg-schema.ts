/**
 * The mint's PostgreSQL tables (`mint_*`, component `mint` in `migrate`). Spent and pending proofs
 * share one table keyed by Y, so the primary key is the double-spend check across processes.
 */
export const MINT_MIGRATIONS = [
  {
    version: 1,
    sql: `
CREATE TABLE mint_master (
  id SMALLINT PRIMARY KEY CHECK (id = 1), fingerprint TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE mint_keysets (
  id TEXT PRIMARY KEY, unit TEXT NOT NULL, derivation_index INTEGER NOT NULL, active INTEGER NOT NULL,
  input_fee_ppk INTEGER NOT NULL, final_expiry BIGINT, created_at BIGINT NOT NULL,
  UNIQUE (unit, derivation_index));
CREATE TABLE mint_proofs (
  y TEXT PRIMARY KEY, state TEXT NOT NULL CHECK (state IN ('SPENT', 'PENDING')),
  amount BIGINT NOT NULL, keyset_id TEXT NOT NULL, secret TEXT NOT NULL, c TEXT NOT NULL, witness TEXT,
  melt_quote TEXT, created_at BIGINT NOT NULL,
  CHECK (state = 'SPENT' OR melt_quote IS NOT NULL));
CREATE INDEX mint_proofs_melt_quote ON mint_proofs (melt_quote) WHERE melt_quote IS NOT NULL;
CREATE TABLE mint_promises (
  b_ TEXT PRIMARY KEY, amount BIGINT NOT NULL, keyset_id TEXT NOT NULL, c_ TEXT NOT NULL,
  dleq_e TEXT NOT NULL, dleq_s TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE mint_mint_quotes (
  quote TEXT PRIMARY KEY, method TEXT NOT NULL, request TEXT NOT NULL, payment_hash TEXT NOT NULL UNIQUE,
  unit TEXT NOT NULL, amount BIGINT NOT NULL, state TEXT NOT NULL, description TEXT, pubkey TEXT,
  created_at BIGINT NOT NULL, expiry BIGINT NOT NULL, paid_at BIGINT, issued_at BIGINT);
CREATE INDEX mint_mint_quotes_unpaid ON mint_mint_quotes (expiry) WHERE state = 'UNPAID';
CREATE TABLE mint_melt_quotes (
  quote TEXT PRIMARY KEY, method TEXT NOT NULL, request TEXT NOT NULL, payment_hash TEXT NOT NULL,
  unit TEXT NOT NULL, amount BIGINT NOT NULL, fee_reserve BIGINT NOT NULL, state TEXT NOT NULL,
  created_at BIGINT NOT NULL, expiry BIGINT NOT NULL, paid_at BIGINT, fee_paid BIGINT, preimage TEXT,
  internal_mint_quote TEXT, inputs_total BIGINT, input_fee BIGINT, blank_outputs TEXT, change TEXT);
CREATE INDEX mint_melt_quotes_pending ON mint_melt_quotes (quote) WHERE state = 'PENDING';
CREATE TABLE mint_cached_responses (key TEXT PRIMARY KEY, body TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE INDEX mint_cached_responses_created ON mint_cached_responses (created_at);
`,
  },
] as const;
