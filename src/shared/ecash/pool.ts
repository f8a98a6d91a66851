/**
 * What the wallet core (EcashWallet) needs from wherever its ecash lives: the SQLite EcashStore of
 * one process (the MCP wallet, an embedded gateway) or the gateway's PostgreSQL pool shared by
 * several processes. Each method is one atomic step. SQLite answers synchronously (its internals
 * stay synchronous and the local wallet also calls it directly); PostgreSQL answers with a promise.
 * Callers through this interface always `await`.
 */
import type { CounterSource } from "@cashu/cashu-ts";
import type { Denomination } from "./denominations.js";
import type { Reservation, StoredProof } from "./store.js";

export type Awaitable<T> = T | Promise<T>;

/**
 * A token the payer owes someone (the gateway's change), stored by the transaction that spends
 * the proofs it is made of, so a crash never leaves them spent and the token unrecorded.
 */
export interface OwedToken {
  id: string;
  mint: string;
  amount: number;
  token: string;
}

/** A swap's sent proofs, owed as `token`: if the id already has a token, they go back to the pool. */
export interface OwedSwap extends OwedToken {
  proofs: StoredProof[];
}

export interface EcashPool {
  /** Counters are committed before any blinded output leaves; never the same counter twice. */
  counterSource(mint: string): CounterSource;
  /**
   * Stores proofs; with `op`, that operation's counter ranges are resolved in the same step, and a
   * claim op (CLAIM_OP_PREFIX) is recorded as claimed-not-yet-credited until `claimFunded(op)`.
   */
  addProofs(proofs: StoredProof[], op?: string): Awaitable<void>;
  /**
   * Stores the outputs of one counter range restored from the seed (NUT-09) and resolves the range
   * in the same step; for a claim op the value of the proofs stored now (not those already there) is
   * added to the claim's not-yet-credited record, which this process then owns. Answers that value.
   */
  restoreRange(range: Reservation, proofs: StoredProof[]): Awaitable<number>;
  /**
   * Claims stored by `addProofs` or `restoreRange` and not yet marked funded: those of processes
   * that are gone, plus the ops in `restoredHere` (restored by this process's `recover`).
   */
  unfundedClaims(restoredHere?: readonly string[]): Awaitable<RestoredClaim[]>;
  /** The claim's value is credited in the ledger: its record is dropped. */
  claimFunded(op: string): Awaitable<void>;
  /** Reserves available proofs covering `amount` for `op`; each proof is reserved by one op at a time. */
  reserveProofs(mint: string, amount: number, op: string): Awaitable<StoredProof[] | undefined>;
  /**
   * Pays exactly `amount` with no swap when the denominations allow: the proofs are spent and
   * `encode`'s token (stored as owed under `owedId` when given) in one step. Undefined when not exact.
   * An id that already has a token (another request or process paid it) spends nothing and
   * answers the stored token: a change id is paid once.
   */
  spendExact(
    mint: string,
    amount: number,
    encode: (proofs: StoredProof[]) => string,
    owedId?: string,
  ): Awaitable<string | undefined>;
  denominations(mint: string): Awaitable<Denomination[]>;
  /**
   * A swap of `op` succeeded: inputs spent, kept proofs stored, ranges resolved, `owed` stored in
   * one step. Answers the token stored under `owed.id`: when another one was there first, the
   * swap's sent proofs are kept in the pool instead (nothing is lost).
   */
  finishSwap(op: string, keep: StoredProof[], owed?: OwedSwap): Awaitable<string | undefined>;
  /** Ends an operation: its reserved proofs are spent (success) or available again (failure). */
  finishOp(op: string, spent: boolean): Awaitable<void>;
  reservedProofs(): Awaitable<(StoredProof & { op: string })[]>;
  markProof(secret: string, state: "available" | "spent"): Awaitable<void>;
  spentBy(op: string): Awaitable<number>;
  balance(mint?: string): Awaitable<number>;
  balancesByMint(): Awaitable<Record<string, number>>;
  hasProof(secret: string): Awaitable<boolean>;
  unresolvedReservations(): Awaitable<Reservation[]>;
  reservationsOf(op: string): Awaitable<Reservation[]>;
  resolveOp(op: string): Awaitable<void>;
  resolveReservation(id: number): Awaitable<void>;
}

/** Ops of swaps whose value a caller credits elsewhere start with this (see `receive`). */
export const CLAIM_OP_PREFIX = "claim:";

/** Value a crash left in the pool (or restored from the seed) for a claim op: the caller credits its owner. */
export interface RestoredClaim {
  op: string;
  mint: string;
  sat: number;
}
