/**
 * The mint's SQLite store. Every method is one atomic transaction (BEGIN IMMEDIATE), so the
 * double-spend rule holds across processes that open the same file: a Y is inserted into
 * proofs_used or proofs_pending by exactly one writer, and a B_ is signed exactly once.
 */
import { SqliteStore } from "../../src/shared/sqlite.js";
import { MintError, MintErrorCode } from "./errors.js";
import type { MeltQuoteState, MintQuoteState } from "./schemas.js";

export interface KeysetRow {
  id: string;
  unit: string;
  derivation_index: number;
  active: number;
  input_fee_ppk: number;
  final_expiry: number | null;
  created_at: number;
}

export interface SpentProofRow {
  y: string;
  amount: number;
  keyset_id: string;
  secret: string;
  c: string;
  witness: string | null;
}

export interface PromiseRow {
  b_: string;
  amount: number;
  keyset_id: string;
  c_: string;
  dleq_e: string;
  dleq_s: string;
}

export interface MintQuoteRow {
  quote: string;
  method: string;
  request: string;
  payment_hash: string;
  unit: string;
  amount: number;
  state: MintQuoteState;
  description: string | null;
  pubkey: string | null;
  created_at: number;
  expiry: number;
  paid_at: number | null;
  issued_at: number | null;
}

export interface MeltQuoteRow {
  quote: string;
  method: string;
  request: string;
  payment_hash: string;
  unit: string;
  amount: number;
  fee_reserve: number;
  state: MeltQuoteState;
  created_at: number;
  expiry: number;
  paid_at: number | null;
  fee_paid: number | null;
  preimage: string | null;
  /** internal settlement: the mint quote this melt pays, when the invoice is our own */
  internal_mint_quote: string | null;
  /** total of the inputs locked by the running melt, to compute NUT-08 change */
  inputs_total: number | null;
  input_fee: number | null;
  /** JSON BlindedMessage[] kept so change can be signed even after a crash */
  blank_outputs: string | null;
  /** JSON BlindSignature[] */
  change: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS keysets (
  id TEXT PRIMARY KEY, unit TEXT NOT NULL, derivation_index INTEGER NOT NULL, active INTEGER NOT NULL,
  input_fee_ppk INTEGER NOT NULL, final_expiry INTEGER, created_at INTEGER NOT NULL,
  UNIQUE (unit, derivation_index));
CREATE TABLE IF NOT EXISTS proofs_used (
  y TEXT PRIMARY KEY, amount INTEGER NOT NULL, keyset_id TEXT NOT NULL, secret TEXT NOT NULL, c TEXT NOT NULL,
  witness TEXT, melt_quote TEXT, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS proofs_pending (
  y TEXT PRIMARY KEY, amount INTEGER NOT NULL, keyset_id TEXT NOT NULL, secret TEXT NOT NULL, c TEXT NOT NULL,
  witness TEXT, melt_quote TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS proofs_pending_quote ON proofs_pending (melt_quote);
CREATE TABLE IF NOT EXISTS promises (
  b_ TEXT PRIMARY KEY, amount INTEGER NOT NULL, keyset_id TEXT NOT NULL, c_ TEXT NOT NULL,
  dleq_e TEXT NOT NULL, dleq_s TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS mint_quotes (
  quote TEXT PRIMARY KEY, method TEXT NOT NULL, request TEXT NOT NULL, payment_hash TEXT NOT NULL UNIQUE,
  unit TEXT NOT NULL, amount INTEGER NOT NULL, state TEXT NOT NULL, description TEXT, pubkey TEXT,
  created_at INTEGER NOT NULL, expiry INTEGER NOT NULL, paid_at INTEGER, issued_at INTEGER);
CREATE INDEX IF NOT EXISTS mint_quotes_state ON mint_quotes (state);
CREATE TABLE IF NOT EXISTS melt_quotes (
  quote TEXT PRIMARY KEY, method TEXT NOT NULL, request TEXT NOT NULL, payment_hash TEXT NOT NULL,
  unit TEXT NOT NULL, amount INTEGER NOT NULL, fee_reserve INTEGER NOT NULL, state TEXT NOT NULL,
  created_at INTEGER NOT NULL, expiry INTEGER NOT NULL, paid_at INTEGER, fee_paid INTEGER, preimage TEXT,
  internal_mint_quote TEXT, inputs_total INTEGER, input_fee INTEGER, blank_outputs TEXT, change TEXT);
CREATE INDEX IF NOT EXISTS melt_quotes_state ON melt_quotes (state);
`;

const now = () => Math.floor(Date.now() / 1000);

export class MintStore extends SqliteStore {
  constructor(path: string) {
    super(path, SCHEMA);
  }

  // ---- keysets ----------------------------------------------------------------------------------
  listKeysets(): KeysetRow[] {
    return this.prepared("SELECT * FROM keysets ORDER BY unit, derivation_index").all() as KeysetRow[];
  }

  /** Adds a keyset and makes it the only active one of its unit. */
  addActiveKeyset(row: Omit<KeysetRow, "active" | "created_at">): void {
    this.tx(() => {
      this.prepared("UPDATE keysets SET active = 0 WHERE unit = ?").run(row.unit);
      this.prepared(
        `INSERT INTO keysets (id, unit, derivation_index, active, input_fee_ppk, final_expiry, created_at)
           VALUES (@id, @unit, @derivation_index, 1, @input_fee_ppk, @final_expiry, @created_at)`,
      ).run({ ...row, created_at: now() });
    });
  }

  // ---- proofs and promises ----------------------------------------------------------------------
  private assertInputsFree(ys: string[]): void {
    const used = this.prepared("SELECT 1 FROM proofs_used WHERE y = ?");
    const pending = this.prepared("SELECT 1 FROM proofs_pending WHERE y = ?");
    for (const y of ys) {
      if (used.get(y)) throw new MintError(MintErrorCode.ProofsAlreadySpent, "Token already spent.");
    }
    for (const y of ys) {
      if (pending.get(y)) throw new MintError(MintErrorCode.ProofsPending, "Token is pending.");
    }
  }

  private assertOutputsUnsigned(bs: string[]): void {
    const signed = this.prepared("SELECT 1 FROM promises WHERE b_ = ?");
    for (const b of bs) {
      if (signed.get(b))
        throw new MintError(MintErrorCode.OutputsAlreadySigned, "Blinded message already signed.");
    }
  }

  private insertUsed(proofs: SpentProofRow[], meltQuote: string | null): void {
    const stmt = this.prepared(
      `INSERT INTO proofs_used (y, amount, keyset_id, secret, c, witness, melt_quote, created_at)
       VALUES (@y, @amount, @keyset_id, @secret, @c, @witness, @melt_quote, @created_at)`,
    );
    const t = now();
    for (const p of proofs) stmt.run({ ...p, melt_quote: meltQuote, created_at: t });
  }

  private insertPromises(promises: PromiseRow[]): void {
    const stmt = this.prepared(
      `INSERT INTO promises (b_, amount, keyset_id, c_, dleq_e, dleq_s, created_at)
       VALUES (@b_, @amount, @keyset_id, @c_, @dleq_e, @dleq_s, @created_at)`,
    );
    const t = now();
    for (const p of promises) stmt.run({ ...p, created_at: t });
  }

  /** NUT-03: spends the inputs and records the signatures (and `also`, e.g. the NUT-19 answer), or changes nothing. */
  commitSwap(inputs: SpentProofRow[], promises: PromiseRow[], also?: () => void): void {
    this.tx(() => {
      this.assertInputsFree(inputs.map((p) => p.y));
      this.assertOutputsUnsigned(promises.map((p) => p.b_));
      this.insertUsed(inputs, null);
      this.insertPromises(promises);
      also?.();
    });
  }

  proofStates(ys: string[]): Map<string, { state: "SPENT" | "PENDING"; witness: string | null }> {
    const out = new Map<string, { state: "SPENT" | "PENDING"; witness: string | null }>();
    const used = this.prepared("SELECT witness FROM proofs_used WHERE y = ?");
    const pending = this.prepared("SELECT witness FROM proofs_pending WHERE y = ?");
    this.db.transaction(() => {
      for (const y of ys) {
        const u = used.get(y) as { witness: string | null } | undefined;
        if (u) {
          out.set(y, { state: "SPENT", witness: u.witness });
          continue;
        }
        const p = pending.get(y) as { witness: string | null } | undefined;
        if (p) out.set(y, { state: "PENDING", witness: p.witness });
      }
    })();
    return out;
  }

  findPromises(bs: string[]): Map<string, PromiseRow> {
    const stmt = this.prepared("SELECT b_, amount, keyset_id, c_, dleq_e, dleq_s FROM promises WHERE b_ = ?");
    const out = new Map<string, PromiseRow>();
    for (const b of bs) {
      const row = stmt.get(b) as PromiseRow | undefined;
      if (row) out.set(b, row);
    }
    return out;
  }

  // ---- mint quotes (NUT-04) ---------------------------------------------------------------------
  insertMintQuote(row: Omit<MintQuoteRow, "paid_at" | "issued_at">): void {
    this.prepared(
      `INSERT INTO mint_quotes (quote, method, request, payment_hash, unit, amount, state, description, pubkey, created_at, expiry)
         VALUES (@quote, @method, @request, @payment_hash, @unit, @amount, @state, @description, @pubkey, @created_at, @expiry)`,
    ).run(row);
  }

  getMintQuote(quote: string): MintQuoteRow | undefined {
    return this.prepared("SELECT * FROM mint_quotes WHERE quote = ?").get(quote) as MintQuoteRow | undefined;
  }

  getMintQuoteByPaymentHash(hash: string): MintQuoteRow | undefined {
    return this.prepared("SELECT * FROM mint_quotes WHERE payment_hash = ?").get(hash) as
      MintQuoteRow | undefined;
  }

  /**
   * Forgets unpaid mint quotes whose invoice expired before `before` (unix seconds): an unpaid L402
   * challenge or top-up leaves one each, and their invoices can no longer be paid.
   */
  pruneUnpaidMintQuotes(before: number): number {
    return this.prepared("DELETE FROM mint_quotes WHERE state = 'UNPAID' AND expiry < ?").run(before).changes;
  }

  /** UNPAID → PAID; returns true when this call made the change. */
  markMintQuotePaid(quote: string): boolean {
    const res = this.prepared(
      "UPDATE mint_quotes SET state = 'PAID', paid_at = ? WHERE quote = ? AND state = 'UNPAID'",
    ).run(now(), quote);
    return res.changes === 1;
  }

  /** PAID → ISSUED together with the signatures (and `also`), or nothing. */
  issueMintQuote(quote: string, promises: PromiseRow[], also?: () => void): void {
    this.tx(() => {
      const row = this.getMintQuote(quote);
      if (!row) throw new MintError(MintErrorCode.BadRequest, "mint quote not found", 404);
      if (row.state === "ISSUED")
        throw new MintError(MintErrorCode.QuoteAlreadyIssued, "Quote already issued.");
      if (row.state !== "PAID") throw new MintError(MintErrorCode.QuoteNotPaid, "Quote not paid.");
      this.assertOutputsUnsigned(promises.map((p) => p.b_));
      this.insertPromises(promises);
      this.prepared("UPDATE mint_quotes SET state = 'ISSUED', issued_at = ? WHERE quote = ?").run(
        now(),
        quote,
      );
      also?.();
    });
  }

  // ---- melt quotes (NUT-05) ---------------------------------------------------------------------
  insertMeltQuote(
    row: Pick<
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
    >,
  ): void {
    this.prepared(
      `INSERT INTO melt_quotes (quote, method, request, payment_hash, unit, amount, fee_reserve, state, created_at, expiry, internal_mint_quote)
         VALUES (@quote, @method, @request, @payment_hash, @unit, @amount, @fee_reserve, 'UNPAID', @created_at, @expiry, @internal_mint_quote)`,
    ).run(row);
  }

  getMeltQuote(quote: string): MeltQuoteRow | undefined {
    return this.prepared("SELECT * FROM melt_quotes WHERE quote = ?").get(quote) as MeltQuoteRow | undefined;
  }

  listPendingMelts(): MeltQuoteRow[] {
    return this.prepared("SELECT * FROM melt_quotes WHERE state = 'PENDING'").all() as MeltQuoteRow[];
  }

  /**
   * UNPAID → PENDING and the inputs locked as pending, atomically. A second melt of the same quote,
   * or of the same proofs elsewhere, fails here.
   */
  beginMelt(
    quote: string,
    inputs: SpentProofRow[],
    blankOutputs: { B_: string }[],
    totals: { inputsTotal: number; inputFee: number },
    blankOutputsJson: string,
    also?: () => void,
  ): void {
    this.tx(() => {
      const row = this.getMeltQuote(quote);
      if (!row) throw new MintError(MintErrorCode.BadRequest, "melt quote not found", 404);
      if (row.state === "PENDING") throw new MintError(MintErrorCode.QuotePending, "Quote is pending.");
      if (row.state === "PAID")
        throw new MintError(MintErrorCode.InvoiceAlreadyPaid, "Invoice already paid.");
      this.assertInputsFree(inputs.map((p) => p.y));
      this.assertOutputsUnsigned(blankOutputs.map((o) => o.B_));
      const stmt = this.prepared(
        `INSERT INTO proofs_pending (y, amount, keyset_id, secret, c, witness, melt_quote, created_at)
         VALUES (@y, @amount, @keyset_id, @secret, @c, @witness, @melt_quote, @created_at)`,
      );
      const t = now();
      for (const p of inputs) stmt.run({ ...p, melt_quote: quote, created_at: t });
      this.prepared(
        `UPDATE melt_quotes SET state = 'PENDING', inputs_total = ?, input_fee = ?, blank_outputs = ? WHERE quote = ?`,
      ).run(totals.inputsTotal, totals.inputFee, blankOutputsJson, quote);
      also?.();
    });
  }

  /**
   * PENDING → PAID: pending inputs become spent, change is signed, and (internal settlement) the
   * paid mint quote is marked. "internal_already_paid" means our own invoice was paid by someone
   * else meanwhile: nothing changed, the caller fails the melt.
   */
  completeMelt(
    quote: string,
    result: { preimage: string | null; feePaid: number; change: PromiseRow[]; changeJson: string },
  ): "done" | "not_pending" | "internal_already_paid" {
    return this.tx(() => {
      const row = this.getMeltQuote(quote);
      if (row?.state !== "PENDING") return "not_pending";
      if (row.internal_mint_quote) {
        const paid = this.prepared(
          "UPDATE mint_quotes SET state = 'PAID', paid_at = ? WHERE quote = ? AND state = 'UNPAID'",
        ).run(now(), row.internal_mint_quote);
        if (paid.changes !== 1) return "internal_already_paid";
      }
      const pending = this.prepared("SELECT * FROM proofs_pending WHERE melt_quote = ?").all(
        quote,
      ) as SpentProofRow[];
      this.prepared("DELETE FROM proofs_pending WHERE melt_quote = ?").run(quote);
      this.insertUsed(
        pending.map(({ y, amount, keyset_id, secret, c, witness }) => ({
          y,
          amount,
          keyset_id,
          secret,
          c,
          witness,
        })),
        quote,
      );
      this.insertPromises(result.change);
      this.prepared(
        "UPDATE melt_quotes SET state = 'PAID', paid_at = ?, fee_paid = ?, preimage = ?, change = ? WHERE quote = ?",
      ).run(now(), result.feePaid, result.preimage, result.changeJson, quote);
      return "done";
    });
  }

  /** PENDING → UNPAID: the payment failed, the inputs are free again. */
  failMelt(quote: string): boolean {
    return this.tx(() => {
      const row = this.getMeltQuote(quote);
      if (row?.state !== "PENDING") return false;
      this.prepared("DELETE FROM proofs_pending WHERE melt_quote = ?").run(quote);
      this.prepared(
        "UPDATE melt_quotes SET state = 'UNPAID', inputs_total = NULL, input_fee = NULL, blank_outputs = NULL WHERE quote = ?",
      ).run(quote);
      return true;
    });
  }

  pendingYsOfMelt(quote: string): string[] {
    return (
      this.prepared("SELECT y FROM proofs_pending WHERE melt_quote = ?").all(quote) as { y: string }[]
    ).map((r) => r.y);
  }
}
