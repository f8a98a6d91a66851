/**
 * What the mint needs from its state, as one async interface: each method is one atomic step.
 * Two implementations: `SqliteMintStore` (mint.sqlite, the embedded default; its writers are
 * serialised by SQLite's file lock) and `PgMintStore` (PostgreSQL shared by several mint
 * processes; the same guarantees come from primary keys and row locks, never from process memory).
 */
import type { KeysetRow, MeltQuoteRow, MintQuoteRow, PromiseRow, SpentProofRow } from "./store.js";

/** A NUT-19 answer, kept in the same transaction as the work it answers. */
export interface CachedAnswer {
  key: string;
  body: unknown;
}

export type MeltInsert = Pick<
  MeltQuoteRow,
  | "quote"
  | "method"
  | "request"
  | "payment_hash"
  | "unit"
  | "amount"
  | "fee_reserve"
  | "created_at"
  | "expiry"
  | "internal_mint_quote"
>;

export type ProofState = { state: "SPENT" | "PENDING"; witness: string | null };

/** Held while one process settles a melt: recovery elsewhere leaves that melt alone. */
export interface MeltLease {
  release(): Promise<void>;
}

export interface MintStorage {
  /**
   * True when other processes change this state too (PostgreSQL): NUT-17 subscribers are then kept
   * up to date by reading the state, since another process's change raises no event here.
   */
  readonly shared: boolean;
  // ---- master secret and keysets
  /**
   * Records the fingerprint of the master secret on first use and returns the one recorded (the
   * caller refuses to run when they differ: processes sharing state must sign with the same keys).
   */
  claimMasterFingerprint(fingerprint: string): Promise<string>;
  listKeysets(): Promise<KeysetRow[]>;
  /**
   * Adds keyset `max(derivation_index) + 1` of `unit` (id from `idOf(index)`, pure) and makes it the
   * only active one. With `ifNoneActive`, does nothing when the unit already has an active keyset.
   */
  addNextKeyset(
    unit: string,
    inputFeePpk: number,
    idOf: (index: number) => string,
    ifNoneActive: boolean,
  ): Promise<void>;

  // ---- proofs and promises
  /** NUT-03: spends the inputs and records the signatures (and the NUT-19 answer), or changes nothing. */
  commitSwap(inputs: SpentProofRow[], promises: PromiseRow[], cached?: CachedAnswer): Promise<void>;
  proofStates(ys: string[]): Promise<Map<string, ProofState>>;
  findPromises(bs: string[]): Promise<Map<string, PromiseRow>>;

  // ---- mint quotes (NUT-04)
  insertMintQuote(row: Omit<MintQuoteRow, "paid_at" | "issued_at">): Promise<void>;
  getMintQuote(quote: string): Promise<MintQuoteRow | undefined>;
  getMintQuoteByPaymentHash(hash: string): Promise<MintQuoteRow | undefined>;
  pruneUnpaidMintQuotes(before: number): Promise<number>;
  /** UNPAID → PAID; true when this call made the change. */
  markMintQuotePaid(quote: string): Promise<boolean>;
  /** PAID → ISSUED together with the signatures (and the NUT-19 answer), or nothing. */
  issueMintQuote(quote: string, promises: PromiseRow[], cached?: CachedAnswer): Promise<void>;

  // ---- melt quotes (NUT-05)
  insertMeltQuote(row: MeltInsert): Promise<void>;
  getMeltQuote(quote: string): Promise<MeltQuoteRow | undefined>;
  listPendingMelts(): Promise<MeltQuoteRow[]>;
  /** UNPAID → PENDING with the inputs locked as pending, atomically; or nothing. */
  beginMelt(
    quote: string,
    inputs: SpentProofRow[],
    blankOutputs: { B_: string }[],
    totals: { inputsTotal: number; inputFee: number },
    blankOutputsJson: string,
    cached?: CachedAnswer,
  ): Promise<void>;
  completeMelt(
    quote: string,
    result: { preimage: string | null; feePaid: number; change: PromiseRow[]; changeJson: string },
  ): Promise<"done" | "not_pending" | "internal_already_paid">;
  failMelt(quote: string): Promise<boolean>;
  pendingYsOfMelt(quote: string): Promise<string[]>;
  /** The lease on settling `quote`, or undefined when someone (here or in another process) holds it. */
  leaseMelt(quote: string): Promise<MeltLease | undefined>;

  // ---- NUT-19 answers
  cachedAnswer<T>(key: string): Promise<T | undefined>;
  deleteCachedAnswer(key: string): Promise<void>;
  /** Drops answers older than the TTL. */
  pruneCachedAnswers(): Promise<void>;

  /** Runs background work (melt recovery, pruning) in one process at a time; undefined when another has it. */
  exclusively<T>(name: string, fn: () => Promise<T>): Promise<T | undefined>;
  close(): Promise<void>;
}
