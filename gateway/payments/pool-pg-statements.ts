/**
 * The multi-row statements of the PostgreSQL pool (PgGatewayPool): storing proofs and change,
 * counting denominations, planning and taking proofs for a reservation or an exact payment.
 */
import type { Denomination, OwedToken, StoredProof } from "../../src/shared/ecash/index.js";
import type { PgClient, Queryable } from "../../src/shared/index.js";

/** Another process took proofs this plan counted on: the transaction is rolled back and planned again. */
export class Shortfall extends Error {}

/** Inserts proofs (ignoring ones already stored) in one statement; answers the sats inserted. */
export async function insertProofs(
  q: Queryable,
  proofs: StoredProof[],
  state = "available",
): Promise<number> {
  if (proofs.length === 0) return 0;
  const res = await q.query<{ amount: number }>(
    `INSERT INTO pool_proofs (secret, mint, keyset_id, amount, c, dleq, state, op, created_at)
     SELECT s, m, k, a, c, d, $7, NULL, $8
       FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[]) AS p(s, m, k, a, c, d)
     ON CONFLICT (secret) DO NOTHING
     RETURNING amount`,
    [
      proofs.map((p) => p.secret),
      proofs.map((p) => p.mint),
      proofs.map((p) => p.keyset_id),
      proofs.map((p) => p.amount),
      proofs.map((p) => p.c),
      proofs.map((p) => p.dleq),
      state,
      Date.now(),
    ],
  );
  return res.rows.reduce((n, r) => n + Number(r.amount), 0);
}

export async function insertChange(q: Queryable, owed: OwedToken): Promise<boolean> {
  const res = await q.query(
    `INSERT INTO pool_change (id, mint, amount, token, created_at) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (id) DO NOTHING`,
    [owed.id, owed.mint, owed.amount, owed.token, Date.now()],
  );
  return res.rowCount === 1;
}

export async function denominationsOf(q: Queryable, mint: string): Promise<Denomination[]> {
  const res = await q.query<Denomination>(
    `SELECT amount, COUNT(*) AS n FROM pool_proofs WHERE mint = $1 AND state = 'available'
     GROUP BY amount ORDER BY amount DESC`,
    [mint],
  );
  return res.rows;
}

/**
 * The available denominations of a mint with each count capped at what paying `amount` could use
 * (ceil(amount / denomination)): `selectDenominations` never takes more of one denomination than
 * that, so it plans exactly as with full counts. The distinct amounts come from a loose index scan
 * (one probe per denomination) and each count stops at its cap, so the cost does not grow with
 * the pool.
 */
export async function planCounts(q: Queryable, mint: string, amount: number): Promise<Denomination[]> {
  const res = await q.query<Denomination>(
    `WITH RECURSIVE d AS (
       (SELECT amount FROM pool_proofs WHERE mint = $1 AND state = 'available' ORDER BY amount DESC LIMIT 1)
       UNION ALL
       SELECT (SELECT p.amount FROM pool_proofs p
                WHERE p.mint = $1 AND p.state = 'available' AND p.amount < d.amount
                ORDER BY p.amount DESC LIMIT 1)
         FROM d WHERE d.amount IS NOT NULL)
     SELECT d.amount,
            (SELECT COUNT(*) FROM (
               SELECT 1 FROM pool_proofs p WHERE p.mint = $1 AND p.state = 'available' AND p.amount = d.amount
                LIMIT CEIL($2::numeric / d.amount)) capped) AS n
       FROM d WHERE d.amount IS NOT NULL ORDER BY d.amount DESC`,
    [mint, amount],
  );
  return res.rows;
}

/**
 * Marks the planned proofs in one statement; rows another transaction holds are skipped, not
 * waited for. Fewer rows than planned (another process took them) throws Shortfall, which rolls
 * the whole transaction back.
 */
export async function take(
  c: PgClient,
  mint: string,
  plan: Denomination[],
  state: "reserved" | "spent",
  op: string | null,
  owner: string | null,
): Promise<StoredProof[]> {
  const res = await c.query<StoredProof>(
    `UPDATE pool_proofs p SET state = $2, op = $3, owner = $6
       FROM (SELECT q.secret FROM unnest($4::bigint[], $5::int[]) AS d(amount, n)
             CROSS JOIN LATERAL (
               SELECT secret FROM pool_proofs
                WHERE mint = $1 AND state = 'available' AND amount = d.amount
                LIMIT d.n FOR UPDATE SKIP LOCKED) q) picked
      WHERE p.secret = picked.secret
      RETURNING p.secret, p.mint, p.keyset_id, p.amount, p.c, p.dleq`,
    [mint, state, op, plan.map((d) => d.amount), plan.map((d) => d.n), owner],
  );
  if (res.rows.length !== plan.reduce((s, d) => s + d.n, 0)) throw new Shortfall();
  return res.rows;
}
