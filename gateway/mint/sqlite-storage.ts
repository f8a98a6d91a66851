/**
 * `MintStorage` over mint.sqlite: the synchronous `MintStore` and the NUT-19 `ResponseCache` in the
 * same file, unchanged; this class only gives them the async shape the mint awaits. Cross-process
 * safety stays SQLite's (BEGIN IMMEDIATE serialises writers across processes on the file).
 */
import { ResponseCache } from "./cache.js";
import type { CachedAnswer, MeltInsert, MeltLease, MintStorage, ProofState } from "./storage.js";
import { MintStore } from "./store.js";
import type { KeysetRow, MintQuoteRow, PromiseRow, SpentProofRow } from "./store.js";

export class SqliteMintStore implements MintStorage {
  readonly store: MintStore;
  readonly shared = false;
  private readonly cache: ResponseCache;
  /** Melts this process is settling (SQLite mints on one file keep the earlier behaviour across processes). */
  private readonly settling = new Set<string>();

  constructor(path: string) {
    this.store = new MintStore(path);
    this.cache = new ResponseCache(this.store.db);
  }

  private keep(cached?: CachedAnswer): (() => void) | undefined {
    return cached ? () => this.cache.put(cached.key, cached.body) : undefined;
  }

  /** The secret file sits next to mint.sqlite, and every keyset is checked against it on load. */
  async claimMasterFingerprint(fingerprint: string): Promise<string> {
    return fingerprint;
  }

  async listKeysets(): Promise<KeysetRow[]> {
    return this.store.listKeysets();
  }

  async addNextKeyset(
    unit: string,
    inputFeePpk: number,
    idOf: (index: number) => string,
    ifNoneActive: boolean,
  ): Promise<void> {
    const rows = this.store.listKeysets().filter((k) => k.unit === unit);
    if (ifNoneActive && rows.some((k) => k.active === 1)) return;
    const index = rows.reduce((max, k) => Math.max(max, k.derivation_index + 1), 0);
    this.store.addActiveKeyset({
      id: idOf(index),
      unit,
      derivation_index: index,
      input_fee_ppk: inputFeePpk,
      final_expiry: null,
    });
  }

  async commitSwap(inputs: SpentProofRow[], promises: PromiseRow[], cached?: CachedAnswer): Promise<void> {
    this.store.commitSwap(inputs, promises, this.keep(cached));
  }

  async proofStates(ys: string[]): Promise<Map<string, ProofState>> {
    return this.store.proofStates(ys);
  }

  async findPromises(bs: string[]): Promise<Map<string, PromiseRow>> {
    return this.store.findPromises(bs);
  }

  async insertMintQuote(row: Omit<MintQuoteRow, "paid_at" | "issued_at">): Promise<void> {
    this.store.insertMintQuote(row);
  }

  async getMintQuote(quote: string) {
    return this.store.getMintQuote(quote);
  }

  async getMintQuoteByPaymentHash(hash: string) {
    return this.store.getMintQuoteByPaymentHash(hash);
  }

  async pruneUnpaidMintQuotes(before: number): Promise<number> {
    return this.store.pruneUnpaidMintQuotes(before);
  }

  async markMintQuotePaid(quote: string): Promise<boolean> {
    return this.store.markMintQuotePaid(quote);
  }

  async issueMintQuote(quote: string, promises: PromiseRow[], cached?: CachedAnswer): Promise<void> {
    this.store.issueMintQuote(quote, promises, this.keep(cached));
  }

  async insertMeltQuote(row: MeltInsert): Promise<void> {
    this.store.insertMeltQuote(row);
  }

  async getMeltQuote(quote: string) {
    return this.store.getMeltQuote(quote);
  }

  async listPendingMelts() {
    return this.store.listPendingMelts();
  }

  async beginMelt(
    quote: string,
    inputs: SpentProofRow[],
    blankOutputs: { B_: string }[],
    totals: { inputsTotal: number; inputFee: number },
    blankOutputsJson: string,
    cached?: CachedAnswer,
  ): Promise<void> {
    this.store.beginMelt(quote, inputs, blankOutputs, totals, blankOutputsJson, this.keep(cached));
  }

  async completeMelt(
    quote: string,
    result: { preimage: string | null; feePaid: number; change: PromiseRow[]; changeJson: string },
  ) {
    return this.store.completeMelt(quote, result);
  }

  async failMelt(quote: string): Promise<boolean> {
    return this.store.failMelt(quote);
  }

  async pendingYsOfMelt(quote: string): Promise<string[]> {
    return this.store.pendingYsOfMelt(quote);
  }

  async leaseMelt(quote: string): Promise<MeltLease | undefined> {
    if (this.settling.has(quote)) return undefined;
    this.settling.add(quote);
    return { release: async () => void this.settling.delete(quote) };
  }

  async cachedAnswer<T>(key: string): Promise<T | undefined> {
    return this.cache.get<T>(key);
  }

  async deleteCachedAnswer(key: string): Promise<void> {
    this.cache.delete(key);
  }

  async pruneCachedAnswers(): Promise<void> {
    this.cache.prune();
  }

  async exclusively<T>(_name: string, fn: () => Promise<T>): Promise<T | undefined> {
    return fn();
  }

  async close(): Promise<void> {
    this.store.close();
  }
}
