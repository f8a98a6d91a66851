/**
 * Lightning payments out of ledger money set aside with `ledger.reservePayout` (provider payouts,
 * market collects), through the mint's melt. Only the mint decides how one ended: PAID completes
 * the reservation (the unused fee reserve goes back to the owner), UNPAID reverts it. A lost answer
 * (mint unreachable, timeout, crash) leaves the payment open until the mint is asked again, because
 * that melt may have been paid: reverting it then would let the owner be paid twice.
 */
import type { EcashWallet } from "../../src/shared/ecash/index.js";
import { errorMessage } from "../../src/shared/index.js";
import type { Ledger } from "../ledger/index.js";

/** The journaled facts of one melt payment (rows of the payouts and collections tables). */
export interface ReservedMelt {
  id: string;
  mint: string;
  quote: string;
  amount: number;
  fee_reserve: number;
}

export type MeltOutcome =
  | { state: "paid"; feeSat: number; preimage: string | null }
  | { state: "failed"; error: string }
  | { state: "open" };

/** Pays the melt quote; on any error the mint is asked what happened before anything is reverted. */
export async function payReservedMelt(
  wallet: EcashWallet,
  ledger: Ledger,
  owner: string,
  melt: ReservedMelt,
): Promise<MeltOutcome> {
  let paid;
  try {
    paid = await wallet.payMeltQuote(melt.mint, melt.quote, meltOp(melt));
  } catch (err) {
    const outcome = await resolveReservedMelt(wallet, ledger, owner, melt);
    return outcome.state === "failed" ? { state: "failed", error: errorMessage(err) } : outcome;
  }
  if (paid.preimage === null && paid.paidSat === 0) return { state: "open" }; // PENDING at the mint
  await ledger.completePayout(owner, melt.id, melt.mint, melt.amount * 1000, paid.feeSat * 1000);
  return { state: "paid", feeSat: paid.feeSat, preimage: paid.preimage };
}

/** The wallet op of a payment's melt: known from the payment alone, so a restart finds it too. */
const meltOp = (melt: ReservedMelt) => `melt:${melt.id}`;

/**
 * Asks the mint about a melt left open. PAID completes it with the fee the mint really kept: what
 * the melt put in, less the amount and the change the mint signed back (the change proofs return
 * through the wallet's recovery); when the inputs are unknown, the whole fee reserve. UNPAID
 * reverts it; PENDING or no answer leaves it open.
 */
export async function resolveReservedMelt(
  wallet: EcashWallet,
  ledger: Ledger,
  owner: string,
  melt: ReservedMelt,
): Promise<MeltOutcome> {
  let status;
  try {
    status = await wallet.meltState(melt.mint, melt.quote);
  } catch {
    return { state: "open" };
  }
  if (status.state === "PAID") {
    const inputs = await wallet.meltInputsSat(meltOp(melt));
    const kept = inputs - melt.amount - status.changeSat;
    const feeSat = inputs > 0 && kept >= 0 && kept <= melt.fee_reserve ? kept : melt.fee_reserve;
    await ledger.completePayout(owner, melt.id, melt.mint, melt.amount * 1000, feeSat * 1000);
    return { state: "paid", feeSat, preimage: status.preimage };
  }
  if (status.state === "UNPAID") {
    await ledger.failPayout(owner, melt.id);
    return { state: "failed", error: "the mint did not pay the invoice" };
  }
  return { state: "open" };
}
