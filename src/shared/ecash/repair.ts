/**
 * Crash repair from the wallet seed (NUT-09): the outputs of counter ranges an operation reserved
 * but never stored (the mint's answer lost, or the process died) are asked of the mint again and
 * stored when unspent, each range with its claim record in one store step; proofs left reserved are
 * settled by asking the mint. Used by EcashWallet (`recover`, `restoreFromSeed`, and `receive` when
 * a swap's answer is lost).
 */
import { CheckStateEnum, type Proof, type Wallet } from "@cashu/cashu-ts";
import type { Logger } from "../log.js";
import { CLAIM_OP_PREFIX, type EcashPool, type RestoredClaim } from "./pool.js";
import { mintFailure, sumProofs, toProof, toStored } from "./proofs.js";
import type { Reservation } from "./store.js";

/** What repair works with: the pool, a loaded cashu-ts wallet per mint (keys fetched), a log. */
export interface RepairContext {
  store: EcashPool;
  wallet(mint: string): Promise<Wallet>;
  log: Logger;
}

/**
 * Recovers every proof the seed ever received from a mint (NUT-09, all its keysets), keeps the
 * unspent ones and moves the counters past what was found.
 */
export async function restoreFromSeed(
  ctx: RepairContext,
  mint: string,
): Promise<{ restoredSat: number; proofs: number }> {
  const wallet = await ctx.wallet(mint);
  let restoredSat = 0;
  let count = 0;
  for (const keyset of wallet.keyChain.getKeysets()) {
    const { proofs, lastCounterWithSignature } = await wallet
      .batchRestore(300, 100, 0, keyset.id)
      .catch((err) => {
        throw mintFailure(err, mint);
      });
    if (lastCounterWithSignature !== undefined) {
      await ctx.store.counterSource(mint).advanceToAtLeast(keyset.id, lastCounterWithSignature + 1);
    }
    const fresh = await unknown(ctx, proofs);
    if (fresh.length === 0) continue;
    const states = await wallet.checkProofsStates(fresh);
    const unspent = fresh.filter((_, i) => states[i]?.state === CheckStateEnum.UNSPENT);
    await ctx.store.addProofs(unspent.map((p) => toStored(mint, p)));
    restoredSat += sumProofs(unspent);
    count += unspent.length;
  }
  return { restoredSat, proofs: count };
}

/** The proofs the pool has never seen (restores find ours again). */
async function unknown(ctx: RepairContext, proofs: Proof[]): Promise<Proof[]> {
  const fresh: Proof[] = [];
  for (const p of proofs) if (!(await ctx.store.hasProof(p.secret))) fresh.push(p);
  return fresh;
}

/**
 * Repairs what a crash interrupted: outputs of unfinished counter ranges are restored from the
 * seed (NUT-09) and added when unspent; proofs left reserved are settled by asking the mint.
 * `claims` has one entry per claim op with its whole uncredited value (read back from the claim
 * records the restores added to, however many ranges an op had), except ops that still have a
 * range this call could not restore: those are held back and credited in full at a later start,
 * while the other ranges and claims are repaired now.
 */
export async function recoverPool(
  ctx: RepairContext,
): Promise<{ restoredSat: number; freedSat: number; claims: RestoredClaim[] }> {
  let restoredSat = 0;
  let freedSat = 0;
  const restoredHere = new Set<string>();
  // Ops with a range not restored now: a claim credited with part of its value would never get
  // the rest (credits are once), so it waits for a start that restores all its ranges. The other
  // ranges and claims go on: one range that fails forever must not block them at every start.
  const heldBack = new Set<string | null>();
  for (const r of await ctx.store.unresolvedReservations()) {
    try {
      const sat = await restoreReservation(ctx, r);
      restoredSat += sat;
      if (sat > 0 && r.op?.startsWith(CLAIM_OP_PREFIX)) restoredHere.add(r.op);
    } catch (err) {
      ctx.log.warn("could not restore a counter range; will retry on next start", {
        ...r,
        err: String(err),
      });
      heldBack.add(r.op);
    }
  }
  // Claims whose proofs reached the pool (restored now, or stored before a crash) but whose owner
  // was never credited: one record per op, holding the value of all its ranges.
  const claims = (await ctx.store.unfundedClaims([...restoredHere])).filter((c) => !heldBack.has(c.op));
  for (const p of await ctx.store.reservedProofs()) {
    try {
      const wallet = await ctx.wallet(p.mint);
      const [state] = await wallet.checkProofsStates([toProof(p)]);
      if (state?.state === CheckStateEnum.UNSPENT) {
        await ctx.store.markProof(p.secret, "available");
        freedSat += p.amount;
      } else if (state?.state === CheckStateEnum.SPENT) await ctx.store.markProof(p.secret, "spent");
    } catch (err) {
      ctx.log.warn("could not check a reserved proof; will retry on next start", { err: String(err) });
    }
  }
  return { restoredSat, freedSat, claims };
}

/**
 * Restores the outputs of one counter range (NUT-09) and keeps the unspent ones; the store resolves
 * the range and records a claim's value in the same step. Answers the sats stored now.
 */
async function restoreReservation(ctx: RepairContext, r: Reservation): Promise<number> {
  const wallet = await ctx.wallet(r.mint);
  const { proofs } = await wallet.restore(r.start, r.count, { keysetId: r.keyset_id });
  const fresh = await unknown(ctx, proofs);
  let unspent: Proof[] = [];
  if (fresh.length > 0) {
    const states = await wallet.checkProofsStates(fresh);
    unspent = fresh.filter((_, i) => states[i]?.state === CheckStateEnum.UNSPENT);
  }
  return ctx.store.restoreRange(
    r,
    unspent.map((p) => toStored(r.mint, p)),
  );
}

/**
 * Restores what one unanswered operation got signed. Nothing found leaves the ranges open: the
 * mint may still be working on the request, and recoverPool looks again on the next start.
 */
export async function restoreOp(ctx: RepairContext, op: string): Promise<number> {
  let sat = 0;
  const ranges = await ctx.store.reservationsOf(op);
  for (const r of ranges) {
    const wallet = await ctx.wallet(r.mint);
    const { proofs } = await wallet.restore(r.start, r.count, { keysetId: r.keyset_id });
    if (proofs.length === 0) return 0;
  }
  for (const r of ranges) sat += await restoreReservation(ctx, r);
  return sat;
}
