/**
 * How a wallet pool chooses proofs by denomination: which to take to pay an amount (exactly when it
 * can, so no swap is needed) and which output amounts to ask for when receiving, so the pool stays
 * able to pay change. Pure functions over counts per denomination, shared by the SQLite store and
 * the gateway's PostgreSQL pool.
 */
export interface Denomination {
  amount: number;
  n: number;
}

/**
 * Picks how many proofs of each denomination cover `amount`: an exact subset from the largest
 * denominations down when there is one (no swap needed), else the smallest single proof that covers
 * it, else proofs from the top until covered. `pool` is sorted by amount desc.
 */
export function selectDenominations(pool: Denomination[], amount: number): Denomination[] | undefined {
  const exact: Denomination[] = [];
  let left = amount;
  for (const d of pool) {
    const n = Math.min(d.n, Math.floor(left / d.amount));
    if (n > 0) {
      exact.push({ amount: d.amount, n });
      left -= n * d.amount;
      if (left === 0) return exact;
    }
  }
  const single = [...pool].reverse().find((d) => d.amount >= amount && d.n > 0);
  if (single) return [{ amount: single.amount, n: 1 }];
  const picked: Denomination[] = [];
  let sum = 0;
  for (const d of pool) {
    const n = Math.min(d.n, Math.ceil((amount - sum) / d.amount));
    picked.push({ amount: d.amount, n });
    sum += n * d.amount;
    if (sum >= amount) return picked;
  }
  return undefined;
}

/** Keep at least this many proofs of each small power of two, so change is paid without a swap. */
export const POOL_STOCK = 2;

/**
 * Output amounts for receiving `amount` into a pool: first each power of two the pool holds fewer
 * than POOL_STOCK of (smallest first, while they fit), then the rest in the usual binary split. In
 * a stocked pool that is the plain split; in a depleted one a few more outputs now save a whole swap
 * when change is paid later.
 */
export function stockingSplit(pool: Denomination[], amount: number): number[] {
  const have = new Map(pool.map((d) => [d.amount, d.n]));
  const out: number[] = [];
  let left = amount;
  for (let d = 1; d <= left; d *= 2) {
    if ((have.get(d) ?? 0) < POOL_STOCK) {
      out.push(d);
      left -= d;
    }
  }
  for (let bit = 1; left > 0; bit *= 2) {
    if (Math.floor(left / bit) % 2 === 1) {
      out.push(bit);
      left -= bit;
    }
  }
  return out;
}
