/**
 * The Cashu mint: NUT-03 swap, NUT-04 mint, NUT-05 melt (with NUT-08 change), NUT-07 check state,
 * NUT-09 restore, NUT-10/11/14 spending conditions on inputs, NUT-12 DLEQ on every signature. Pure request → response logic over the store, the
 * keysets and a Lightning backend; HTTP and websockets live in http.ts and ws.ts.
 */
import { EventEmitter } from "node:events";
import { Amount, verifyMintQuoteSignature } from "@cashu/cashu-ts";
import bolt11 from "bolt11";
import { createLogger, type Logger, VERSION } from "../../src/shared/index.js";
import { fromHex, isValidPoint, proofY, signOutput, toHex, verifyProof } from "./crypto.js";
import { type CachedPath, cacheInfo, cacheKey } from "./cache.js";
import { type SpendTranscript, verifySpendingConditions } from "./conditions.js";
import { MintError, MintErrorCode, QuoteNotFoundError } from "./errors.js";
import { uuidv7 } from "./ids.js";
import type { Keyset, KeysetManager } from "./keys.js";
import type { LightningBackend } from "./lightning/types.js";
import type {
  BlindedMessage,
  BlindSignature,
  MeltQuoteRequest,
  MeltQuoteResponse,
  MeltRequest,
  MintQuoteRequest,
  MintQuoteResponse,
  MintRequest,
  Proof,
  ProofStateEntry,
  SwapRequest,
} from "./schemas.js";
import type { CachedAnswer, MintStorage } from "./storage.js";
import type { MeltQuoteRow, MintQuoteRow, PromiseRow, SpentProofRow } from "./store.js";

export const SUPPORTED_UNIT = "sat";

export interface MintOptions {
  name: string;
  description?: string;
  /** public URLs of this mint, for NUT-06 */
  urls?: string[];
  quoteTtlSeconds: number;
  minAmount: number;
  maxAmount: number;
  inputFeePpk: number;
  log?: Logger;
}

export interface MintEvents {
  mint_quote: [MintQuoteResponse];
  melt_quote: [MeltQuoteResponse];
  proof_state: [ProofStateEntry];
}

interface VerifiedInputs {
  rows: SpentProofRow[];
  total: number;
  fee: number;
  unit: string;
}

const now = () => Math.floor(Date.now() / 1000);
/** Unpaid quotes are forgotten this long after their invoice expired (late payments stay findable meanwhile). */
const QUOTE_PRUNE_GRACE_S = 3600;

/** Splits an amount into ascending powers of two (NUT-08 change amounts). */
export function splitAmount(amount: number): number[] {
  const parts: number[] = [];
  for (let bit = 0; amount > 0 && bit < 53; bit++) {
    const v = 2 ** bit;
    if (amount % (v * 2) !== 0) {
      parts.push(v);
      amount -= v;
    }
  }
  return parts;
}

export class CashuMint extends EventEmitter<MintEvents> {
  readonly log: Logger;
  private recoveryTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    readonly store: MintStorage,
    readonly keysets: KeysetManager,
    readonly lightning: LightningBackend,
    readonly options: MintOptions,
  ) {
    super();
    this.log = options.log ?? createLogger("mint");
    this.setMaxListeners(0); // each NUT-17 websocket listens: many clients are normal
    lightning.onInvoicePaid?.((hash) => void this.onInvoicePaid(hash));
  }

  /**
   * Makes sure a keyset is active, resolves melts left PENDING by a crash and keeps retrying them
   * in the background (in one process at a time when several share the store).
   */
  async start(): Promise<void> {
    await this.keysets.ensureActive(SUPPORTED_UNIT, this.options.inputFeePpk);
    await this.recoverPendingMelts();
    this.recoveryTimer = setInterval(() => {
      this.store
        .exclusively("maintenance", async () => {
          await this.recoverPendingMelts();
          await this.pruneExpiredQuotes();
          await this.store.pruneCachedAnswers();
        })
        .catch((err) => this.log.warn("melt recovery failed", { err: String(err) }));
    }, 15_000);
    this.recoveryTimer.unref();
  }

  /** Drops unpaid mint quotes an hour past their invoice's expiry (unpaid challenges pile up otherwise). */
  async pruneExpiredQuotes(nowSeconds = now()): Promise<number> {
    const n = await this.store.pruneUnpaidMintQuotes(nowSeconds - QUOTE_PRUNE_GRACE_S);
    if (n) this.log.info("pruned expired unpaid mint quotes", { count: n });
    return n;
  }

  /** A NUT-19 answer to keep with the work, under the request's key. */
  private static answer(path: CachedPath, req: unknown, body: unknown): CachedAnswer {
    return { key: cacheKey(path, req), body };
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.recoveryTimer) clearInterval(this.recoveryTimer);
    await this.lightning.close();
  }

  // ---- NUT-06 -----------------------------------------------------------------------------------
  info(): Record<string, unknown> {
    const method = { method: "bolt11", unit: SUPPORTED_UNIT };
    return {
      name: this.options.name,
      version: `owlrun-mint/${VERSION}`,
      description: this.options.description ?? "Owlrun bundled Cashu mint",
      ...(this.options.urls ? { urls: this.options.urls } : {}),
      time: now(),
      nuts: {
        "4": {
          methods: [
            {
              ...method,
              min_amount: this.options.minAmount,
              max_amount: this.options.maxAmount,
              options: { description: true },
            },
          ],
          disabled: false,
        },
        "5": {
          methods: [{ ...method, min_amount: this.options.minAmount, max_amount: this.options.maxAmount }],
          disabled: false,
        },
        "7": { supported: true },
        "8": { supported: true },
        "9": { supported: true },
        "10": { supported: true },
        "11": { supported: true },
        "12": { supported: true },
        "14": { supported: true },
        "17": {
          supported: [{ ...method, commands: ["bolt11_mint_quote", "bolt11_melt_quote", "proof_state"] }],
        },
        "19": cacheInfo(),
        "20": { supported: true },
      },
    };
  }

  // ---- NUT-01/02 --------------------------------------------------------------------------------
  private keysetKeys(k: Keyset) {
    return {
      id: k.id,
      unit: k.unit,
      active: k.active,
      input_fee_ppk: k.inputFeePpk,
      ...(k.finalExpiry ? { final_expiry: k.finalExpiry } : {}),
      keys: Object.fromEntries([...k.publicKeys].map(([amount, pub]) => [String(amount), toHex(pub)])),
    };
  }

  async activeKeys() {
    return {
      keysets: (await this.keysets.all()).filter((k) => k.active).map((k) => this.keysetKeys(k)),
    };
  }

  async keysFor(id: string) {
    const k = await this.keysets.get(id.toLowerCase());
    if (!k) throw new MintError(MintErrorCode.KeysetUnknown, "Keyset unknown.", 404);
    return { keysets: [this.keysetKeys(k)] };
  }

  async keysetList() {
    return {
      keysets: (await this.keysets.all()).map((k) => ({
        id: k.id,
        unit: k.unit,
        active: k.active,
        input_fee_ppk: k.inputFeePpk,
        ...(k.finalExpiry ? { final_expiry: k.finalExpiry } : {}),
      })),
    };
  }

  // ---- shared verification ----------------------------------------------------------------------
  private static keysetOf(keysets: Map<string, Keyset>, id: string): Keyset {
    const k = keysets.get(id);
    if (!k) throw new MintError(MintErrorCode.KeysetUnknown, `Keyset ${id} unknown.`);
    return k;
  }

  /**
   * Checks signatures, duplicates, units and fees of inputs, then their NUT-10 spending conditions
   * against the transaction (`transcript`: its outputs, and the quote for a melt); pure, no state.
   */
  private verifyInputs(
    keysets: Map<string, Keyset>,
    proofs: Proof[],
    transcript: Omit<SpendTranscript, "now">,
  ): VerifiedInputs {
    const rows: SpentProofRow[] = [];
    const seen = new Set<string>();
    let unit: string | undefined;
    let total = 0;
    let feePpk = 0;
    for (const p of proofs) {
      const k = CashuMint.keysetOf(keysets, p.id);
      if (unit && k.unit !== unit)
        throw new MintError(MintErrorCode.MultipleUnits, "Inputs have multiple units.");
      unit = k.unit;
      const priv = k.privateKeys.get(p.amount);
      if (!priv || !verifyProof(p.secret, fromHex(p.C), priv)) {
        throw new MintError(MintErrorCode.ProofVerificationFailed, "Proof could not be verified.");
      }
      const y = toHex(proofY(p.secret));
      if (seen.has(y)) throw new MintError(MintErrorCode.DuplicateInputs, "Duplicate inputs provided.");
      seen.add(y);
      rows.push({
        y,
        amount: p.amount,
        keyset_id: k.id,
        secret: p.secret,
        c: p.C,
        witness: p.witness ?? null,
      });
      total += p.amount;
      feePpk += k.inputFeePpk;
    }
    verifySpendingConditions(proofs, { ...transcript, now: now() });
    return { rows, total, fee: Math.floor((feePpk + 999) / 1000), unit: unit! };
  }

  /** Checks outputs (active keyset, unit, known amount unless blank, valid point, no duplicates). */
  private verifyOutputs(
    keysets: Map<string, Keyset>,
    outputs: BlindedMessage[],
    unit: string,
    blank = false,
  ): Keyset[] {
    const seen = new Set<string>();
    return outputs.map((o) => {
      const k = CashuMint.keysetOf(keysets, o.id);
      if (!k.active)
        throw new MintError(MintErrorCode.KeysetInactive, "Keyset is inactive, cannot sign messages.");
      if (k.unit !== unit)
        throw new MintError(MintErrorCode.UnitMismatch, "Inputs and outputs have different units.");
      if (!blank && !k.privateKeys.has(o.amount)) {
        throw new MintError(
          MintErrorCode.AmountOutsideLimit,
          `Output amount ${o.amount} is not in the keyset.`,
        );
      }
      if (!isValidPoint(fromHex(o.B_)))
        throw new MintError(MintErrorCode.BadRequest, "Invalid blinded message.");
      if (seen.has(o.B_)) throw new MintError(MintErrorCode.DuplicateOutputs, "Duplicate outputs provided.");
      seen.add(o.B_);
      return k;
    });
  }

  private sign(outputs: { B_: string; amount: number }[], keysets: Keyset[]): PromiseRow[] {
    return outputs.map((o, i) => {
      const k = keysets[i]!;
      const { C_, dleq } = signOutput(
        fromHex(o.B_),
        k.privateKeys.get(o.amount)!,
        k.publicKeys.get(o.amount)!,
      );
      return {
        b_: o.B_,
        amount: o.amount,
        keyset_id: k.id,
        c_: toHex(C_),
        dleq_e: toHex(dleq.e),
        dleq_s: toHex(dleq.s),
      };
    });
  }

  private static toSignature(p: PromiseRow): BlindSignature {
    return { amount: p.amount, id: p.keyset_id, C_: p.c_, dleq: { e: p.dleq_e, s: p.dleq_s } };
  }

  private emitProofStates(ys: string[], state: "SPENT" | "PENDING" | "UNSPENT"): void {
    for (const Y of ys) this.emit("proof_state", { Y, state, witness: null });
  }

  // ---- NUT-03 -----------------------------------------------------------------------------------
  async swap(req: SwapRequest): Promise<{ signatures: BlindSignature[] }> {
    const cached = await this.store.cachedAnswer<{ signatures: BlindSignature[] }>(cacheKey("/v1/swap", req));
    if (cached) return cached;
    const snapshot = await this.keysets.snapshot();
    const inputs = this.verifyInputs(snapshot, req.inputs, { outputs: req.outputs });
    const keysets = this.verifyOutputs(snapshot, req.outputs, inputs.unit);
    const outTotal = req.outputs.reduce((s, o) => s + o.amount, 0);
    if (inputs.total - inputs.fee !== outTotal) {
      throw new MintError(
        MintErrorCode.TransactionNotBalanced,
        `Inputs (${inputs.total}) - fees (${inputs.fee}) vs outputs (${outTotal}) are not balanced.`,
      );
    }
    const promises = this.sign(req.outputs, keysets);
    const answer = { signatures: promises.map(CashuMint.toSignature) };
    await this.store.commitSwap(inputs.rows, promises, CashuMint.answer("/v1/swap", req, answer));
    this.emitProofStates(
      inputs.rows.map((r) => r.y),
      "SPENT",
    );
    return answer;
  }

  // ---- NUT-07 / NUT-09 --------------------------------------------------------------------------
  async checkState(ys: string[]): Promise<{ states: ProofStateEntry[] }> {
    const known = await this.store.proofStates(ys);
    return {
      states: ys.map((Y) => {
        const s = known.get(Y);
        return { Y, state: s?.state ?? "UNSPENT", witness: s?.witness ?? null };
      }),
    };
  }

  async restore(
    outputs: BlindedMessage[],
  ): Promise<{ outputs: BlindedMessage[]; signatures: BlindSignature[] }> {
    const found = await this.store.findPromises(outputs.map((o) => o.B_));
    const outs: BlindedMessage[] = [];
    const sigs: BlindSignature[] = [];
    for (const o of outputs) {
      const p = found.get(o.B_);
      if (!p) continue;
      outs.push({ amount: p.amount, id: p.keyset_id, B_: p.b_ });
      sigs.push(CashuMint.toSignature(p));
    }
    return { outputs: outs, signatures: sigs };
  }

  // ---- NUT-04 -----------------------------------------------------------------------------------
  private assertUnit(unit: string): void {
    if (unit !== SUPPORTED_UNIT)
      throw new MintError(MintErrorCode.UnitUnsupported, `Unit ${unit} is not supported.`);
  }

  private assertAmountInLimits(amount: number): void {
    const { minAmount, maxAmount } = this.options;
    if (amount < minAmount || amount > maxAmount) {
      throw new MintError(
        MintErrorCode.AmountOutsideLimit,
        `Amount must be between ${minAmount} and ${maxAmount}.`,
      );
    }
  }

  private mintQuoteResponse(q: MintQuoteRow): MintQuoteResponse {
    return {
      quote: q.quote,
      request: q.request,
      amount: q.amount,
      unit: q.unit,
      state: q.state,
      expiry: q.expiry,
      ...(q.pubkey ? { pubkey: q.pubkey } : {}),
    };
  }

  async createMintQuote(req: MintQuoteRequest): Promise<MintQuoteResponse> {
    this.assertUnit(req.unit);
    this.assertAmountInLimits(req.amount);
    const invoice = await this.lightning.createInvoice(
      req.amount,
      req.description,
      this.options.quoteTtlSeconds,
    );
    const row = {
      quote: uuidv7(),
      method: "bolt11",
      request: invoice.request,
      payment_hash: invoice.paymentHash,
      unit: req.unit,
      amount: req.amount,
      state: "UNPAID" as const,
      description: req.description ?? null,
      pubkey: req.pubkey ?? null,
      created_at: now(),
      expiry: invoice.expiresAt,
    };
    await this.store.insertMintQuote(row);
    return this.mintQuoteResponse({ ...row, paid_at: null, issued_at: null });
  }

  /** Reads a mint quote, asking the Lightning backend first while it is unpaid. */
  async getMintQuote(quote: string): Promise<MintQuoteResponse> {
    let row = await this.store.getMintQuote(quote);
    if (!row) throw new QuoteNotFoundError("mint");
    if (row.state === "UNPAID") {
      const state = await this.lightning.invoiceState({
        paymentHash: row.payment_hash,
        request: row.request,
      });
      if (state === "PAID" && (await this.store.markMintQuotePaid(quote))) {
        row = (await this.store.getMintQuote(quote))!;
        this.emit("mint_quote", this.mintQuoteResponse(row));
      }
    }
    return this.mintQuoteResponse(row);
  }

  private async onInvoicePaid(paymentHash: string): Promise<void> {
    if (this.closed) return;
    try {
      const row = await this.store.getMintQuoteByPaymentHash(paymentHash);
      if (row && (await this.store.markMintQuotePaid(row.quote))) {
        this.emit("mint_quote", this.mintQuoteResponse((await this.store.getMintQuote(row.quote))!));
      }
    } catch (err) {
      this.log.warn("could not record incoming payment", { paymentHash, err: String(err) });
    }
  }

  async mint(req: MintRequest): Promise<{ signatures: BlindSignature[] }> {
    const cached = await this.store.cachedAnswer<{ signatures: BlindSignature[] }>(
      cacheKey("/v1/mint/bolt11", req),
    );
    if (cached) return cached;
    const quote = await this.getMintQuote(req.quote);
    if (quote.state === "ISSUED")
      throw new MintError(MintErrorCode.QuoteAlreadyIssued, "Quote already issued.");
    if (quote.state !== "PAID") throw new MintError(MintErrorCode.QuoteNotPaid, "Quote not paid.");
    if (quote.pubkey) {
      if (!req.signature)
        throw new MintError(MintErrorCode.QuotePubkeyRequired, "Signature required for this quote.");
      const ok = (() => {
        try {
          const outputs = req.outputs.map((o) => ({ ...o, amount: Amount.from(o.amount) }));
          return verifyMintQuoteSignature(quote.pubkey, quote.quote, outputs, req.signature!);
        } catch {
          return false;
        }
      })();
      if (!ok) throw new MintError(MintErrorCode.QuoteSignatureInvalid, "Mint quote signature is invalid.");
    }
    const keysets = this.verifyOutputs(await this.keysets.snapshot(), req.outputs, quote.unit);
    const outTotal = req.outputs.reduce((s, o) => s + o.amount, 0);
    if (outTotal !== quote.amount) {
      throw new MintError(
        MintErrorCode.TransactionNotBalanced,
        `Outputs (${outTotal}) do not match the quote amount (${quote.amount}).`,
      );
    }
    const promises = this.sign(req.outputs, keysets);
    const answer = { signatures: promises.map(CashuMint.toSignature) };
    await this.store.issueMintQuote(req.quote, promises, CashuMint.answer("/v1/mint/bolt11", req, answer));
    this.emit("mint_quote", { ...quote, state: "ISSUED" });
    return answer;
  }

  // ---- NUT-05 / NUT-08 --------------------------------------------------------------------------
  private meltQuoteResponse(q: MeltQuoteRow): MeltQuoteResponse {
    return {
      quote: q.quote,
      request: q.request,
      amount: q.amount,
      unit: q.unit,
      fee_reserve: q.fee_reserve,
      state: q.state,
      expiry: q.expiry,
      payment_preimage: q.preimage,
      ...(q.change ? { change: JSON.parse(q.change) as BlindSignature[] } : {}),
    };
  }

  async createMeltQuote(req: MeltQuoteRequest): Promise<MeltQuoteResponse> {
    this.assertUnit(req.unit);
    let decoded: ReturnType<typeof bolt11.decode>;
    try {
      decoded = bolt11.decode(req.request.replace(/^lightning:/i, ""));
    } catch (err) {
      throw new MintError(
        MintErrorCode.BadRequest,
        `Invalid bolt11 invoice: ${String((err as Error).message ?? err)}`,
      );
    }
    const paymentHash = decoded.tagsObject.payment_hash;
    if (!paymentHash) throw new MintError(MintErrorCode.BadRequest, "Invoice has no payment hash.");
    const invoiceMsat = decoded.millisatoshis ? Number(decoded.millisatoshis) : undefined;
    const amountMsat = invoiceMsat ?? req.options?.amountless?.amount_msat;
    if (amountMsat === undefined) {
      throw new MintError(
        MintErrorCode.AmountlessInvoiceUnsupported,
        "Amountless invoices are not supported.",
      );
    }
    if (
      invoiceMsat !== undefined &&
      req.options?.amountless &&
      req.options.amountless.amount_msat !== invoiceMsat
    ) {
      throw new MintError(MintErrorCode.AmountMismatch, "Amount does not match the invoice amount.");
    }
    if (decoded.timeExpireDate && decoded.timeExpireDate < now() && !this.lightning.paysExpiredInvoices) {
      throw new MintError(MintErrorCode.BadRequest, "Invoice has expired.");
    }
    const amount = Math.ceil(amountMsat / 1000);
    this.assertAmountInLimits(amount);
    const internal = await this.store.getMintQuoteByPaymentHash(paymentHash);
    if (internal && internal.state !== "UNPAID") {
      throw new MintError(MintErrorCode.InvoiceAlreadyPaid, "Invoice already paid.");
    }
    const row = {
      quote: uuidv7(),
      method: "bolt11",
      request: req.request,
      payment_hash: paymentHash,
      unit: req.unit,
      amount,
      // Our own invoices settle inside the mint: no routing fee.
      fee_reserve: internal ? 0 : this.lightning.feeReserveSat(amountMsat),
      created_at: now(),
      expiry: now() + this.options.quoteTtlSeconds,
      internal_mint_quote: internal?.quote ?? null,
    };
    await this.store.insertMeltQuote(row);
    return this.meltQuoteResponse((await this.store.getMeltQuote(row.quote))!);
  }

  async getMeltQuote(quote: string): Promise<MeltQuoteResponse> {
    const row = await this.store.getMeltQuote(quote);
    if (!row) throw new QuoteNotFoundError("melt");
    return this.meltQuoteResponse(row);
  }

  async melt(req: MeltRequest): Promise<MeltQuoteResponse> {
    // NUT-19: the same melt again answers the quote as it stands now (PENDING, or PAID with its
    // change); a melt that failed left the quote UNPAID and may be tried anew.
    const key = cacheKey("/v1/melt/bolt11", req);
    const earlier = await this.store.cachedAnswer<{ quote: string }>(key);
    if (earlier) {
      const now = await this.store.getMeltQuote(earlier.quote);
      if (now && now.state !== "UNPAID") return this.meltQuoteResponse(now);
      await this.store.deleteCachedAnswer(key);
    }
    const row = await this.store.getMeltQuote(req.quote);
    if (!row) throw new QuoteNotFoundError("melt");
    if (row.state === "PAID") throw new MintError(MintErrorCode.InvoiceAlreadyPaid, "Invoice already paid.");
    if (row.state === "PENDING") throw new MintError(MintErrorCode.QuotePending, "Quote is pending.");
    if (row.expiry < now()) throw new MintError(MintErrorCode.QuoteExpired, "Quote expired.");
    const blanks = req.outputs ?? [];
    const snapshot = await this.keysets.snapshot();
    const inputs = this.verifyInputs(snapshot, req.inputs, { outputs: blanks, quoteId: req.quote });
    if (inputs.unit !== row.unit)
      throw new MintError(MintErrorCode.UnitMismatch, "Inputs and quote have different units.");
    const needed = row.amount + row.fee_reserve;
    if (inputs.total - inputs.fee < needed) {
      throw new MintError(
        MintErrorCode.TransactionNotBalanced,
        `Not enough inputs: ${inputs.total} - fees ${inputs.fee} < ${needed} (amount + fee reserve).`,
      );
    }
    if (blanks.length > 0) this.verifyOutputs(snapshot, blanks, row.unit, true);
    // The lease is taken before the quote turns PENDING and held until the melt ends: recovery (in
    // this or another process) never asks Lightning about a payment that is still being made.
    const lease = await this.store.leaseMelt(row.quote);
    if (!lease) throw new MintError(MintErrorCode.QuotePending, "Quote is pending.");
    let begun: MeltQuoteRow;
    try {
      await this.store.beginMelt(
        row.quote,
        inputs.rows,
        blanks,
        { inputsTotal: inputs.total, inputFee: inputs.fee },
        JSON.stringify(blanks),
        { key, body: { quote: row.quote } },
      );
      this.emitProofStates(
        inputs.rows.map((r) => r.y),
        "PENDING",
      );
      begun = (await this.store.getMeltQuote(row.quote))!;
    } catch (err) {
      // Nothing was paid: a melt left PENDING here is freed by recovery (the backend never saw it).
      await lease.release();
      throw err;
    }
    this.emit("melt_quote", this.meltQuoteResponse(begun));

    const pay = this.settleMelt(begun).finally(() => lease.release());
    if (req.prefer_async) {
      pay.catch((err) => this.log.warn("async melt failed", { quote: row.quote, err: String(err) }));
      return this.meltQuoteResponse(begun);
    }
    return pay;
  }

  /** Pays (or settles internally) a PENDING melt and records the outcome. */
  private async settleMelt(row: MeltQuoteRow): Promise<MeltQuoteResponse> {
    if (row.internal_mint_quote) {
      const paid = await this.store.getMintQuote(row.internal_mint_quote);
      const preimage = paid
        ? await this.lightning
            .invoicePreimage?.({ paymentHash: paid.payment_hash, request: paid.request })
            .catch(() => undefined)
        : undefined;
      return this.finishMelt(row, { state: "PAID", feeSat: 0, preimage });
    }
    let result: Awaited<ReturnType<LightningBackend["payInvoice"]>>;
    try {
      result = await this.lightning.payInvoice(row.request, row.amount * 1000, row.fee_reserve);
    } catch (err) {
      // We cannot know whether the payment left: keep it PENDING for recovery, never pay twice.
      this.log.warn("payInvoice threw; melt stays pending", { quote: row.quote, err: String(err) });
      result = { state: "UNKNOWN" };
    }
    return this.finishMelt(row, result);
  }

  private async finishMelt(
    row: MeltQuoteRow,
    outcome: { state: string; preimage?: string; feeSat?: number; reason?: string },
  ): Promise<MeltQuoteResponse> {
    let result = outcome;
    const lockedYs = await this.store.pendingYsOfMelt(row.quote);
    if (result.state === "PAID") {
      const feePaid = Math.min(result.feeSat ?? 0, row.fee_reserve);
      const change = await this.signChange(row, feePaid);
      const outcome = await this.store.completeMelt(row.quote, {
        preimage: result.preimage ?? null,
        feePaid,
        change,
        changeJson: JSON.stringify(change.map(CashuMint.toSignature)),
      });
      if (outcome === "done") await this.announceMeltEnd(row.quote, lockedYs, "SPENT");
      if (outcome !== "internal_already_paid")
        return this.meltQuoteResponse((await this.store.getMeltQuote(row.quote))!);
      result = { state: "FAILED", reason: "invoice already paid" };
    }
    if (result.state === "FAILED") {
      if (await this.store.failMelt(row.quote)) await this.announceMeltEnd(row.quote, lockedYs, "UNSPENT");
      throw new MintError(
        MintErrorCode.LightningPaymentFailed,
        `Lightning payment failed${result.reason ? `: ${result.reason}` : ""}.`,
      );
    }
    return this.meltQuoteResponse((await this.store.getMeltQuote(row.quote))!);
  }

  private async announceMeltEnd(quote: string, ys: string[], state: "SPENT" | "UNSPENT"): Promise<void> {
    this.emitProofStates(ys, state);
    this.emit("melt_quote", this.meltQuoteResponse((await this.store.getMeltQuote(quote))!));
  }

  /** NUT-08: overpaid = inputs - input fees - amount - fee paid, written into the blank outputs in order. */
  private async signChange(row: MeltQuoteRow, feePaid: number): Promise<PromiseRow[]> {
    const blanks = row.blank_outputs ? (JSON.parse(row.blank_outputs) as BlindedMessage[]) : [];
    const overpaid = (row.inputs_total ?? 0) - (row.input_fee ?? 0) - row.amount - feePaid;
    if (overpaid <= 0 || blanks.length === 0) return [];
    const keyset = await this.keysets.active(row.unit);
    if (!keyset) return [];
    const amounts = splitAmount(overpaid).filter((a) => keyset.privateKeys.has(a));
    const outputs = blanks
      .slice(0, amounts.length)
      .map((b, i) => ({ B_: b.B_, amount: amounts[i]!, id: keyset.id }));
    return this.sign(
      outputs,
      outputs.map(() => keyset),
    );
  }

  /**
   * Asks the backend about every PENDING melt no one is settling (a melt being paid holds its
   * lease); PAID completes it, FAILED frees the inputs.
   */
  async recoverPendingMelts(): Promise<void> {
    for (const row of await this.store.listPendingMelts()) {
      const lease = await this.store.leaseMelt(row.quote);
      if (!lease) continue;
      try {
        // Re-read under the lease: the melt may have ended since the list was read.
        const current = await this.store.getMeltQuote(row.quote);
        if (current?.state !== "PENDING") continue;
        await this.recoverMelt(current);
      } finally {
        await lease.release();
      }
    }
  }

  private async recoverMelt(row: MeltQuoteRow): Promise<void> {
    if (row.internal_mint_quote) {
      await this.finishMelt(row, { state: "PAID", feeSat: 0 }).catch((err) => {
        if (!(err instanceof MintError)) throw err;
      });
      return;
    }
    const result = await this.lightning.paymentState(row.payment_hash);
    if (result.state === "PAID" || result.state === "FAILED") {
      try {
        await this.finishMelt(row, result);
      } catch (err) {
        if (!(err instanceof MintError)) throw err;
      }
      this.log.info("resolved pending melt", { quote: row.quote, state: result.state });
    }
  }
}
