/**
 * The writes every PostgreSQL mint transaction is built from: taking inputs (the double-spend
 * check), signing outputs once, and keeping the NUT-19 answer. Each runs on the caller's
 * transaction client and throws the mint's own error, which rolls the whole transaction back.
 */
import type { PgClient } from "../../src/shared/index.js";
import { MintError, MintErrorCode } from "./errors.js";
import type { CachedAnswer } from "./storage.js";
import type { PromiseRow, SpentProofRow } from "./store.js";

export const now = () => Math.floor(Date.now() / 1000);

const spent = () => new MintError(MintErrorCode.ProofsAlreadySpent, "Token already spent.");
const pending = () => new MintError(MintErrorCode.ProofsPending, "Token is pending.");
const signedTwice = () =>
  new MintError(MintErrorCode.OutputsAlreadySigned, "Blinded message already signed.");

/**
 * Inserts the inputs as `state`; throws (rolling the caller's transaction back) when any Y was
 * taken: "already spent" if one is spent, else "pending", as the SQLite store answers.
 */
export async function takeInputs(
  c: PgClient,
  inputs: SpentProofRow[],
  state: "SPENT" | "PENDING",
  meltQuote: string | null,
): Promise<void> {
  if (inputs.length === 0) return;
  // Sorted by Y so two transactions over overlapping inputs lock rows in one order (no deadlock).
  const rows = [...inputs].sort((a, b) => (a.y < b.y ? -1 : a.y > b.y ? 1 : 0));
  const res = await c.query<{ y: string }>(
    `INSERT INTO mint_proofs (y, state, amount, keyset_id, secret, c, witness, melt_quote, created_at)
     SELECT y, $2, amount, keyset_id, secret, c, witness, $3, $4
       FROM jsonb_to_recordset($1::jsonb)
         AS t(y TEXT, amount BIGINT, keyset_id TEXT, secret TEXT, c TEXT, witness TEXT)
     ON CONFLICT (y) DO NOTHING
     RETURNING y`,
    [JSON.stringify(rows), state, meltQuote, now()],
  );
  if (res.rows.length === rows.length) return;
  const ours = new Set(res.rows.map((r) => r.y));
  const taken = rows.filter((r) => !ours.has(r.y)).map((r) => r.y);
  const states = await c.query("SELECT 1 FROM mint_proofs WHERE y = ANY($1) AND state = 'SPENT' LIMIT 1", [
    taken,
  ]);
  throw states.rowCount !== 0 ? spent() : pending();
}

export async function assertOutputsUnsigned(c: PgClient, bs: string[]): Promise<void> {
  if (bs.length === 0) return;
  const res = await c.query("SELECT 1 FROM mint_promises WHERE b_ = ANY($1) LIMIT 1", [bs]);
  if (res.rowCount !== 0) throw signedTwice();
}

export async function insertPromises(c: PgClient, promises: PromiseRow[]): Promise<void> {
  if (promises.length === 0) return;
  const res = await c.query(
    `INSERT INTO mint_promises (b_, amount, keyset_id, c_, dleq_e, dleq_s, created_at)
     SELECT b_, amount, keyset_id, c_, dleq_e, dleq_s, $2
       FROM jsonb_to_recordset($1::jsonb)
         AS t(b_ TEXT, amount BIGINT, keyset_id TEXT, c_ TEXT, dleq_e TEXT, dleq_s TEXT)
     ON CONFLICT (b_) DO NOTHING`,
    [JSON.stringify(promises), now()],
  );
  if (res.rowCount !== promises.length) throw signedTwice();
}

/** Stores the NUT-19 answer in the same transaction as the work it answers. */
export async function keepAnswer(c: PgClient, cached?: CachedAnswer): Promise<void> {
  if (!cached) return;
  await c.query(
    `INSERT INTO mint_cached_responses (key, body, created_at) VALUES ($1, $2, $3)
     ON CONFLICT (key) DO UPDATE SET body = EXCLUDED.body, created_at = EXCLUDED.created_at`,
    [cached.key, JSON.stringify(cached.body), now()],
  );
}
