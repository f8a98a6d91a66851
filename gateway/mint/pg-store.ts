/**
 * The mint's state in PostgreSQL, shared by every mint process on the database (`--database-url`).
 *
 * Double spend: spent AND pending proofs live in one table keyed by Y (`mint_proofs`, primary key),
 * so a swap and a melt, in any processes, cannot both take the same Y: each inserts its inputs with
 * `ON CONFLICT DO NOTHING` inside one transaction, and a transaction that did not insert all of
 * them throws and rolls back as a whole. A concurrent insert of the same Y waits for the other
 * transaction and then sees its row (READ COMMITTED re-checks the unique index), so the check is
 * PostgreSQL's, not this process's memory. Quotes move state with one conditional UPDATE
 * (`WHERE state = 'PAID'`), so a quote is issued once and a melt begun once.
 */
import pg from "pg";
import type { PgDatabase } from "../../src/shared/index.js";
import { CACHE_TTL_SECONDS } from "./cache.js";
import { MintError, MintErrorCode } from "./errors.js";
import { MINT_MIGRATIONS } from "./pg-schema.js";
import { assertOutputsUnsigned, insertPromises, keepAnswer, now, takeInputs } from "./pg-writes.js";
import type { CachedAnswer, MeltInsert, MeltLease, MintStorage, ProofState } from "./storage.js";
import type { KeysetRow, MeltQuoteRow, MintQuoteRow, PromiseRow, SpentProofRow } from "./store.js";

export class PgMintStore implements MintStorage {
  readonly shared = true;

  private constructor(readonly db: PgDatabase) {}

  /** Applies the mint's migrations (safe when several processes start at once). */
  static async open(db: PgDatabase): Promise<PgMintStore> {
    await db.migrate("mint", MINT_MIGRATIONS);
    return new PgMintStore(db);
  }

  // ---- master secret and keysets ----------------------------------------------------------------
  async claimMasterFingerprint(fingerprint: string): Promise<string> {
    // One statement: the first process to start records its fingerprint, every later one reads it.
    await this.db.query(
      "INSERT INTO mint_master (id, fingerprint, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
      [fingerprint, now()],
    );
    const rows = await this.db.query<{ fingerprint: string }>(
      "SELECT fingerprint FROM mint_master WHERE id = 1",
    );
    return rows[0]!.fingerprint;
  }

  async listKeysets(): Promise<KeysetRow[]> {
    return this.db.query<KeysetRow>("SELECT * FROM mint_keysets ORDER BY unit, derivation_index");
  }

  async addNextKeyset(
    unit: string,
    inputFeePpk: number,
    idOf: (index: number) => string,
    ifNoneActive: boolean,
  ): Promise<void> {
    // READ COMMITTED under a per-unit transaction lock: the next index is read and the keyset added
    // by one process at a time, so two processes starting (or rotating) at once add one keyset.
    await this.db.tx(async (c) => {
      await c.query("SELECT pg_advisory_xact_lock(hashtext('owlrun:mint:keyset:' || $1))", [unit]);
      const rows = (await c.query<KeysetRow>("SELECT * FROM mint_keysets WHERE unit = $1", [unit])).rows;
      if (ifNoneActive && rows.some((k) => k.active === 1)) return;
      const index = rows.reduce((max, k) => Math.max(max, k.derivation_index + 1), 0);
      const id = idOf(index);
      await c.query("UPDATE mint_keysets SET active = 0 WHERE unit = $1", [unit]);
      await c.query(
        `INSERT INTO mint_keysets (id, unit, derivation_index, active, input_fee_ppk, final_expiry, created_at)
         VALUES ($1, $2, $3, 1, $4, NULL, $5)`,
        [id, unit, index, inputFeePpk, now()],
      );
    });
  }

  // ---- proofs and promises ----------------------------------------------------------------------
  async commitSwap(inputs: SpentProofRow[], promises: PromiseRow[], cached?: CachedAnswer): Promise<void> {
    // READ COMMITTED: every guarantee here is a unique index (Y, B_), which holds at any level;
    // any failure throws and the whole transaction (inputs, signatures, answer) rolls back.
    await this.db.tx(async (c) => {
      await takeInputs(c, inputs, "SPENT", null);
      await insertPromises(c, promises);
      await keepAnswer(c, cached);
    });
  }

  async proofStates(ys: string[]): Promise<Map<string, ProofState>> {
    const rows = await this.db.query<{ y: string; state: "SPENT" | "PENDING"; witness: string | null }>(
      "SELECT y, state, witness FROM mint_proofs WHERE y = ANY($1)",
      [ys],
    );
    return new Map(rows.map((r) => [r.y, { state: r.state, witness: r.witness }]));
  }

  async findPromises(bs: string[]): Promise<Map<string, PromiseRow>> {
    const rows = await this.db.query<PromiseRow>(
      "SELECT b_, amount, keyset_id, c_, dleq_e, dleq_s FROM mint_promises WHERE b_ = ANY($1)",
      [bs],
    );
    return new Map(rows.map((r) => [r.b_, r]));
  }

  // ---- mint quotes (NUT-04) ---------------------------------------------------------------------
  async insertMintQuote(row: Omit<MintQuoteRow, "paid_at" | "issued_at">): Promise<void> {
    await this.db.query(
      `INSERT INTO mint_mint_quotes (quote, method, request, payment_hash, unit, amount, state, description, pubkey, created_at, expiry)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        row.quote,
        row.method,
        row.request,
        row.payment_hash,
        row.unit,
        row.amount,
        row.state,
        row.description,
        row.pubkey,
        row.created_at,
        row.expiry,
      ],
    );
  }

  async getMintQuote(quote: string): Promise<MintQuoteRow | undefined> {
    return (await this.db.query<MintQuoteRow>("SELECT * FROM mint_mint_quotes WHERE quote = $1", [quote]))[0];
  }

  async getMintQuoteByPaymentHash(hash: string): Promise<MintQuoteRow | undefined> {
    return (
      await this.db.query<MintQuoteRow>("SELECT * FROM mint_mint_quotes WHERE payment_hash = $1", [hash])
    )[0];
  }

  async pruneUnpaidMintQuotes(before: number): Promise<number> {
    const rows = await this.db.query(
      "DELETE FROM mint_mint_quotes WHERE state = 'UNPAID' AND expiry < $1 RETURNING quote",
      [before],
    );
    return rows.length;
  }

  async markMintQuotePaid(quote: string): Promise<boolean> {
    // One conditional UPDATE: of two processes hearing of the payment, one makes the change.
    const rows = await this.db.query(
      "UPDATE mint_mint_quotes SET state = 'PAID', paid_at = $1 WHERE quote = $2 AND state = 'UNPAID' RETURNING quote",
      [now(), quote],
    );
    return rows.length === 1;
  }

  async issueMintQuote(quote: string, promises: PromiseRow[], cached?: CachedAnswer): Promise<void> {
    // READ COMMITTED: the conditional UPDATE takes the quote's row lock; a second issuer waits for
    // it, re-reads the row as ISSUED and matches nothing. Signatures and the answer go in the same
    // transaction, so a failure (outputs already signed) leaves the quote PAID.
    await this.db.tx(async (c) => {
      const moved = await c.query(
        "UPDATE mint_mint_quotes SET state = 'ISSUED', issued_at = $1 WHERE quote = $2 AND state = 'PAID'",
        [now(), quote],
      );
      if (moved.rowCount !== 1) {
        const row = (
          await c.query<MintQuoteRow>("SELECT state FROM mint_mint_quotes WHERE quote = $1", [quote])
        ).rows[0];
        if (!row) throw new MintError(MintErrorCode.BadRequest, "mint quote not found", 404);
        if (row.state === "ISSUED")
          throw new MintError(MintErrorCode.QuoteAlreadyIssued, "Quote already issued.");
        throw new MintError(MintErrorCode.QuoteNotPaid, "Quote not paid.");
      }
      await insertPromises(c, promises);
      await keepAnswer(c, cached);
    });
  }

  // ---- melt quotes (NUT-05) ---------------------------------------------------------------------
  async insertMeltQuote(row: MeltInsert): Promise<void> {
    await this.db.query(
      `INSERT INTO mint_melt_quotes (quote, method, request, payment_hash, unit, amount, fee_reserve, state, created_at, expiry, internal_mint_quote)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'UNPAID', $8, $9, $10)`,
      [
        row.quote,
        row.method,
        row.request,
        row.payment_hash,
        row.unit,
        row.amount,
        row.fee_reserve,
        row.created_at,
        row.expiry,
        row.internal_mint_quote,
      ],
    );
  }

  async getMeltQuote(quote: string): Promise<MeltQuoteRow | undefined> {
    return (await this.db.query<MeltQuoteRow>("SELECT * FROM mint_melt_quotes WHERE quote = $1", [quote]))[0];
  }

  async listPendingMelts(): Promise<MeltQuoteRow[]> {
    return this.db.query<MeltQuoteRow>("SELECT * FROM mint_melt_quotes WHERE state = 'PENDING'");
  }

  async beginMelt(
    quote: string,
    inputs: SpentProofRow[],
    blankOutputs: { B_: string }[],
    totals: { inputsTotal: number; inputFee: number },
    blankOutputsJson: string,
    cached?: CachedAnswer,
  ): Promise<void> {
    // READ COMMITTED: UNPAID → PENDING is one conditional UPDATE (the row lock makes a second melt
    // of the quote, in any process, match nothing); the inputs go into the same key space as spent
    // proofs, so a swap of them elsewhere conflicts. Any failure rolls back both.
    await this.db.tx(async (c) => {
      const moved = await c.query(
        `UPDATE mint_melt_quotes SET state = 'PENDING', inputs_total = $1, input_fee = $2, blank_outputs = $3
          WHERE quote = $4 AND state = 'UNPAID'`,
        [totals.inputsTotal, totals.inputFee, blankOutputsJson, quote],
      );
      if (moved.rowCount !== 1) {
        const row = (
          await c.query<MeltQuoteRow>("SELECT state FROM mint_melt_quotes WHERE quote = $1", [quote])
        ).rows[0];
        if (!row) throw new MintError(MintErrorCode.BadRequest, "melt quote not found", 404);
        if (row.state === "PENDING") throw new MintError(MintErrorCode.QuotePending, "Quote is pending.");
        throw new MintError(MintErrorCode.InvoiceAlreadyPaid, "Invoice already paid.");
      }
      await takeInputs(c, inputs, "PENDING", quote);
      await assertOutputsUnsigned(
        c,
        blankOutputs.map((o) => o.B_),
      );
      await keepAnswer(c, cached);
    });
  }

  async completeMelt(
    quote: string,
    result: { preimage: string | null; feePaid: number; change: PromiseRow[]; changeJson: string },
  ): Promise<"done" | "not_pending" | "internal_already_paid"> {
    // READ COMMITTED with the quote row locked (FOR UPDATE): completion and failure of one melt are
    // serialised, so a melt ends once; the internal mint quote moves with one conditional UPDATE.
    return this.db.tx(async (c) => {
      const row = (
        await c.query<MeltQuoteRow>("SELECT * FROM mint_melt_quotes WHERE quote = $1 FOR UPDATE", [quote])
      ).rows[0];
      if (row?.state !== "PENDING") return "not_pending";
      if (row.internal_mint_quote) {
        const paid = await c.query(
          "UPDATE mint_mint_quotes SET state = 'PAID', paid_at = $1 WHERE quote = $2 AND state = 'UNPAID'",
          [now(), row.internal_mint_quote],
        );
        if (paid.rowCount !== 1) return "internal_already_paid";
      }
      await c.query(
        "UPDATE mint_proofs SET state = 'SPENT', created_at = $1 WHERE melt_quote = $2 AND state = 'PENDING'",
        [now(), quote],
      );
      await insertPromises(c, result.change);
      await c.query(
        "UPDATE mint_melt_quotes SET state = 'PAID', paid_at = $1, fee_paid = $2, preimage = $3, change = $4 WHERE quote = $5",
        [now(), result.feePaid, result.preimage, result.changeJson, quote],
      );
      return "done" as const;
    });
  }

  async failMelt(quote: string): Promise<boolean> {
    // Same lock as completeMelt: a melt is either completed or freed, never both.
    return this.db.tx(async (c) => {
      const row = (
        await c.query<MeltQuoteRow>("SELECT state FROM mint_melt_quotes WHERE quote = $1 FOR UPDATE", [quote])
      ).rows[0];
      if (row?.state !== "PENDING") return false;
      await c.query("DELETE FROM mint_proofs WHERE melt_quote = $1 AND state = 'PENDING'", [quote]);
      await c.query(
        "UPDATE mint_melt_quotes SET state = 'UNPAID', inputs_total = NULL, input_fee = NULL, blank_outputs = NULL WHERE quote = $1",
        [quote],
      );
      return true;
    });
  }

  async pendingYsOfMelt(quote: string): Promise<string[]> {
    const rows = await this.db.query<{ y: string }>(
      "SELECT y FROM mint_proofs WHERE melt_quote = $1 AND state = 'PENDING'",
      [quote],
    );
    return rows.map((r) => r.y);
  }

  /**
   * A session advisory lock on its own connection (not a pool one: a melt may wait minutes on
   * Lightning, and pooled connections are for short queries). The lock dies with the session, so
   * a process killed mid-melt frees the melt for recovery in another.
   */
  async leaseMelt(quote: string): Promise<MeltLease | undefined> {
    const client = new pg.Client(this.db.pool.options);
    client.on("error", () => {});
    await client.connect();
    try {
      const got = await client.query<{ ok: boolean }>(
        "SELECT pg_try_advisory_lock(hashtext('owlrun:mint:melt:' || $1)) AS ok",
        [quote],
      );
      if (!got.rows[0]?.ok) {
        await client.end();
        return undefined;
      }
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    return { release: () => client.end().catch(() => {}) };
  }

  // ---- NUT-19 answers ---------------------------------------------------------------------------
  async cachedAnswer<T>(key: string): Promise<T | undefined> {
    const rows = await this.db.query<{ body: string }>(
      "SELECT body FROM mint_cached_responses WHERE key = $1 AND created_at >= $2",
      [key, now() - CACHE_TTL_SECONDS],
    );
    return rows[0] ? (JSON.parse(rows[0].body) as T) : undefined;
  }

  async deleteCachedAnswer(key: string): Promise<void> {
    await this.db.query("DELETE FROM mint_cached_responses WHERE key = $1", [key]);
  }

  /** Expired answers are dropped by the background job here, not inside every swap's transaction. */
  async pruneCachedAnswers(): Promise<void> {
    await this.db.query("DELETE FROM mint_cached_responses WHERE created_at < $1", [
      now() - CACHE_TTL_SECONDS,
    ]);
  }

  exclusively<T>(name: string, fn: () => Promise<T>): Promise<T | undefined> {
    return this.db.exclusively(`owlrun:mint:${name}`, fn);
  }

  /** The database belongs to the composition root, which closes it. */
  async close(): Promise<void> {}
}
