/**
 * How the PostgreSQL ledger writes one balanced transaction inside a caller's transaction: take
 * (kind, ref) on the unique index (a repeat writes nothing), then the entries, the provider
 * earnings' running totals and the balances in one statement. Balance rows are upserted in byte
 * order, so transactions touching the same accounts lock them in the same order (no deadlock).
 */
import type { PgClient } from "../../src/shared/postgres.js";
import { accountKind } from "./accounts.js";
import { LedgerError } from "./errors.js";
import { DAY_MS, EARNING_KINDS, isDebitNormal, type Posting } from "./storage.js";

/** Adds `msat` to what `m` has under `key`. */
function add(m: Map<string, number>, key: string, msat: number): void {
  m.set(key, (m.get(key) ?? 0) + msat);
}

/** Byte order, the same as `COLLATE "C"`: the order every transaction locks balance rows in. */
const byteOrder = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** Takes (kind, ref) for a new transaction; null when it was already written (idempotency). */
export async function claimTx(
  c: PgClient,
  kind: string,
  ref: string | null,
  at: number,
): Promise<number | null> {
  const r =
    ref === null
      ? await c.query<{ id: number }>(
          "INSERT INTO ledger_tx (kind, ref, created_at) VALUES ($1, NULL, $2) RETURNING id",
          [kind, at],
        )
      : await c.query<{ id: number }>(
          `INSERT INTO ledger_tx (kind, ref, created_at) VALUES ($1, $2, $3)
           ON CONFLICT (kind, ref) WHERE ref IS NOT NULL DO NOTHING RETURNING id`,
          [kind, ref, at],
        );
  return r.rows[0]?.id ?? null;
}

/** Writes the entries of a claimed transaction and moves balances; returns the new balances. */
export async function writeEntries(
  c: PgClient,
  txId: number,
  kind: string,
  at: number,
  postings: Posting[],
): Promise<Map<string, number>> {
  // Checked once (kind, ref) is known to be new, as SQLite does: a repeat is a no-op, not an error.
  for (const p of postings)
    if (!Number.isSafeInteger(p.msat) || p.msat < 0) throw new LedgerError(`invalid amount ${p.msat}`);
  const live = postings.filter((p) => p.msat > 0);
  const after = new Map<string, number>();
  if (live.length === 0) return after;
  const delta = new Map<string, number>();
  const earnings = new Map<string, number>();
  for (const p of live) {
    add(delta, p.from, isDebitNormal(p.from) ? p.msat : -p.msat);
    add(delta, p.to, isDebitNormal(p.to) ? -p.msat : p.msat);
    if (EARNING_KINDS.includes(kind) && accountKind(p.to) === "provider") add(earnings, p.to, p.msat);
  }
  const accounts = [...delta.keys()].sort(byteOrder);
  const providers = [...earnings.keys()].sort(byteOrder);
  // One round trip: the entries, the provider earnings' running totals (empty arrays when none)
  // and the balances, whose rows are locked in byte order and returned as they now stand.
  const bumped = await c.query<{ account: string; msat: number }>(
    `WITH entries AS (
       INSERT INTO ledger_entries (tx_id, debit, credit, msat)
       SELECT $1, d, c, m FROM unnest($2::text[], $3::text[], $4::bigint[]) WITH ORDINALITY AS u(d, c, m, n) ORDER BY n
     ), daily AS (
       INSERT INTO ledger_earnings_daily (account, day, msat)
       SELECT a, $9, m FROM unnest($7::text[], $8::bigint[]) AS u(a, m) ORDER BY a COLLATE "C"
       ON CONFLICT (account, day) DO UPDATE SET msat = ledger_earnings_daily.msat + excluded.msat
     ), total AS (
       INSERT INTO ledger_earnings_total (account, msat)
       SELECT a, m FROM unnest($7::text[], $8::bigint[]) AS u(a, m) ORDER BY a COLLATE "C"
       ON CONFLICT (account) DO UPDATE SET msat = ledger_earnings_total.msat + excluded.msat
     )
     INSERT INTO ledger_balances (account, msat)
     SELECT a, d FROM unnest($5::text[], $6::bigint[]) AS u(a, d) ORDER BY a COLLATE "C"
     ON CONFLICT (account) DO UPDATE SET msat = ledger_balances.msat + excluded.msat
     RETURNING account, msat`,
    [
      txId,
      live.map((p) => p.from),
      live.map((p) => p.to),
      live.map((p) => p.msat),
      accounts,
      accounts.map((a) => delta.get(a)!),
      providers,
      providers.map((a) => earnings.get(a)!),
      Math.floor(at / DAY_MS),
    ],
  );
  for (const r of bumped.rows) after.set(r.account, r.msat);
  return after;
}

/** One balanced transaction; null (nothing written) when (kind, ref) was posted before. */
export async function post(
  c: PgClient,
  kind: string,
  ref: string | null,
  postings: Posting[],
): Promise<Map<string, number> | null> {
  const at = Date.now();
  const txId = await claimTx(c, kind, ref, at);
  if (txId === null) return null;
  return writeEntries(c, txId, kind, at, postings);
}
