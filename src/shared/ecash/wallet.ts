/**
 * A Cashu wallet over cashu-ts for any mint, backed by an EcashPool (SQLite or PostgreSQL): receive tokens (swap), pay
 * tokens out of the pool (no swap when it holds exact change), mint from Lightning quotes, melt to
 * invoices, and repair crashes from the seed. Used by the gateway and by the MCP server's wallet.
 */
import { randomUUID } from "node:crypto";
import { CheckStateEnum, Mint, MintOperationError, type Proof, Wallet } from "@cashu/cashu-ts";
import type { Logger } from "../log.js";
import { EcashError } from "./errors.js";
import { type LockKey, planUnlock } from "./locks.js";
import { nativeOutputs } from "./native-outputs.js";
import type { EcashPool, RestoredClaim } from "./pool.js";
import { stockingSplit } from "./denominations.js";
import { mintFailure, sumProofs, sumStored, toProof, toStored } from "./proofs.js";
import { type RepairContext, recoverPool, restoreFromSeed, restoreOp } from "./repair.js";
import { currentOp } from "./store.js";
import { encodeToken, inspectToken, normalizeMintUrl, type TokenFormat, type TokenInfo } from "./tokens.js";
import { type MintTransport, requestVia } from "./transport.js";

export interface MeltResult {
  paidSat: number;
  feeSat: number;
  preimage: string | null;
  changeSat: number;
}

export class EcashWallet {
  private readonly wallets = new Map<string, Promise<Wallet>>();
  private readonly transports = new Map<string, MintTransport>();

  constructor(
    protected readonly store: EcashPool,
    private readonly seed: Uint8Array,
    protected readonly log: Logger,
  ) {}

  /**
   * Reaches `mint` (its HTTP API) through `transport` instead of the network: the composition root
   * uses it for the bundled mint served by this same process.
   */
  connect(mint: string, transport: MintTransport): void {
    this.transports.set(normalizeMintUrl(mint), transport);
    this.wallets.delete(mint);
  }

  /** One loaded cashu-ts wallet per mint, keys fetched once. */
  protected wallet(mint: string): Promise<Wallet> {
    let w = this.wallets.get(mint);
    if (!w) {
      w = (async () => {
        const transport = this.transports.get(normalizeMintUrl(mint));
        const wallet = new Wallet(
          transport ? new Mint(mint, { customRequest: requestVia(transport.fetch) }) : mint,
          {
            unit: "sat",
            bip39seed: this.seed,
            counterSource: this.store.counterSource(mint),
            // Blinding, unblinding and DLEQ checks on native libsecp256k1 instead of noble.
            outputDataCreator: nativeOutputs({ checkDleq: !transport?.sameProcess }),
          },
        );
        await wallet.loadMint();
        return wallet;
      })();
      w.catch(() => this.wallets.delete(mint));
      this.wallets.set(mint, w);
    }
    return w.catch((err) => {
      throw mintFailure(err, mint);
    });
  }

  /**
   * Swaps a token into the pool; afterwards the sender's proofs are spent. `op` names the swap's
   * counter range: a caller that credits the value elsewhere (the gateway's ledger) passes an op it
   * can recognise in `recover().claims`, so value restored after a crash reaches its owner.
   * Locked proofs (NUT-10) are received only when `unlock` can open them (signed with its key, HTLC
   * preimage added); others are refused before any swap.
   */
  async receive(
    info: TokenInfo,
    op: string = randomUUID(),
    unlock: { key?: LockKey; preimage?: string } = {},
  ): Promise<{ mint: string; amountSat: number }> {
    if (info.unit !== "sat")
      throw new EcashError("invalid_token", `unit ${info.unit} is not accepted; use sat`, 400);
    const wallet = await this.wallet(info.mint);
    const plan = planUnlock(this.checkedProofs(wallet, info.token), unlock);
    const incoming = plan.proofs;
    const signWith = plan.privkey ? { privkey: plan.privkey } : undefined;
    let proofs: Proof[];
    try {
      // Denominations that keep the pool able to pay change exactly (no second swap later).
      const amount = sumProofs(incoming) - Number(wallet.getFeesForProofs(incoming).toString());
      const denominations = stockingSplit(await this.store.denominations(info.mint), amount);
      proofs = await currentOp.run(op, () =>
        amount > 0
          ? wallet.receive(incoming, signWith, { type: "deterministic", counter: 0, denominations })
          : wallet.receive(incoming, signWith),
      );
    } catch (err) {
      // A refused swap signed nothing.
      if (err instanceof MintOperationError) {
        await this.store.resolveOp(op);
        throw mintFailure(err, info.mint);
      }
      // Unanswered: the mint may have swapped (the sender's proofs are then spent). Ask it for our
      // outputs now; if it cannot answer, recover() restores them on the next start.
      const restored = await restoreOp(this.repair, op).catch(() => 0);
      if (restored > 0) return { mint: info.mint, amountSat: restored };
      throw mintFailure(err, info.mint);
    }
    await this.store.addProofs(
      proofs.map((p) => toStored(info.mint, p)),
      op,
    );
    return { mint: info.mint, amountSat: sumProofs(proofs) };
  }

  /**
   * The claim `op`'s value is credited in the ledger: recovery no longer needs its record. Never
   * throws: a record left behind only makes the next start check a credit that is already there.
   */
  async claimFunded(op: string): Promise<void> {
    try {
      await this.store.claimFunded(op);
    } catch (err) {
      this.log.warn("could not drop a funded claim's record; the next start checks it", {
        op,
        err: String(err),
      });
    }
  }

  /** NUT-07: whether any proof of `token` has been spent at its mint. */
  async tokenRedeemed(token: string): Promise<boolean> {
    const { mint } = inspectToken(token);
    const wallet = await this.wallet(mint);
    const proofs = this.checkedProofs(wallet, token);
    const states = await wallet.checkProofsStates(proofs).catch((err) => {
      throw mintFailure(err, mint);
    });
    return states.some((s) => s.state === CheckStateEnum.SPENT);
  }

  /**
   * The token's proofs without their DLEQ proofs: the swap that follows has the mint check every
   * signature, so a DLEQ (which lets an offline receiver check them) adds nothing here, and
   * cashu-ts would re-check each one in noble.
   */
  private checkedProofs(wallet: Wallet, token: string): Proof[] {
    let decoded: ReturnType<Wallet["decodeToken"]>;
    try {
      decoded = wallet.decodeToken(token);
    } catch (err) {
      throw new EcashError("invalid_token", `malformed cashu token: ${(err as Error).message}`, 400);
    }
    return decoded.proofs.map(({ dleq: _dleq, ...proof }) => proof);
  }

  /**
   * Pays `amountSat` out of the pool as a token; no swap when the pool has exact change. With
   * `owedId` the token is stored as owed under that id (the gateway's change) by the same step that
   * marks its proofs spent.
   * `lockTo` (a public key) makes the token P2PK-locked (NUT-11): always a swap.
   */
  async pay(
    mint: string,
    amountSat: number,
    format: TokenFormat = "B",
    memo?: string,
    owedId?: string,
    lockTo?: string,
  ): Promise<string> {
    const exact = lockTo
      ? undefined
      : await this.store.spendExact(
          mint,
          amountSat,
          (picked) => encodeToken(mint, picked.map(toProof), format, memo),
          owedId,
        );
    if (exact !== undefined) return exact;
    const op = randomUUID();
    const picked = await this.store.reserveProofs(mint, amountSat, op);
    if (!picked) {
      throw new EcashError(
        "insufficient_funds",
        `wallet holds ${await this.balance(mint)} sats at ${mint}, need ${amountSat}`,
        402,
      );
    }
    try {
      const wallet = await this.wallet(mint);
      const locked = lockTo
        ? { send: { type: "p2pk" as const, options: { pubkey: lockTo } }, keep: wallet.defaultOutputType() }
        : undefined;
      const { keep, send } = await currentOp.run(op, () =>
        wallet.send(amountSat, picked.map(toProof), undefined, locked),
      );
      const token = encodeToken(mint, send, format, memo);
      // Resolved before the token leaves: its proofs must never be restored into the pool.
      const owed =
        owedId === undefined
          ? undefined
          : { id: owedId, mint, amount: amountSat, token, proofs: send.map((p) => toStored(mint, p)) };
      // Another payment of the same id stored its token first: that one is owed, ours stays here.
      return (
        (await this.store.finishSwap(
          op,
          keep.map((p) => toStored(mint, p)),
          owed,
        )) ?? token
      );
    } catch (err) {
      if (err instanceof MintOperationError) {
        await this.store.finishOp(op, false);
        await this.store.resolveOp(op);
      }
      // Otherwise the swap may have happened: the proofs stay reserved for recover().
      throw mintFailure(err, mint);
    }
  }

  /** A Lightning invoice at the mint; pay it, then call mintPaid. */
  async createMintQuote(
    mint: string,
    amountSat: number,
    description?: string,
  ): Promise<{ quote: string; request: string; expiry: number | null }> {
    const wallet = await this.wallet(mint);
    try {
      const q = await wallet.createMintQuoteBolt11(amountSat, description);
      return { quote: q.quote, request: q.request, expiry: q.expiry ?? null };
    } catch (err) {
      throw mintFailure(err, mint);
    }
  }

  /** A mint quote's state at the mint; "UNKNOWN" when the mint no longer knows it. */
  async mintQuoteState(mint: string, quoteId: string): Promise<"UNPAID" | "PAID" | "ISSUED" | "UNKNOWN"> {
    const wallet = await this.wallet(mint);
    try {
      return (await wallet.checkMintQuoteBolt11(quoteId)).state as "UNPAID" | "PAID" | "ISSUED";
    } catch (err) {
      if (err instanceof MintOperationError || (err as { status?: number }).status === 404) return "UNKNOWN";
      throw mintFailure(err, mint);
    }
  }

  /**
   * Mints the proofs of a paid quote into the pool. True once the ecash is ours (also when an
   * earlier attempt minted it and a crash interrupted: recover() restores those from the seed).
   */
  async mintPaid(mint: string, quoteId: string, amountSat: number): Promise<boolean> {
    const wallet = await this.wallet(mint);
    const quote = await wallet.checkMintQuoteBolt11(quoteId).catch((err) => {
      throw mintFailure(err, mint);
    });
    if (quote.state === "ISSUED") return true;
    if (quote.state !== "PAID") return false;
    const op = randomUUID();
    try {
      const proofs = await currentOp.run(op, () => wallet.mintProofsBolt11(amountSat, quoteId));
      await this.store.addProofs(proofs.map((p) => toStored(mint, p)));
      await this.store.resolveOp(op);
      return true;
    } catch (err) {
      if (err instanceof MintOperationError && err.code === 20002) return true; // issued meanwhile
      throw mintFailure(err, mint);
    }
  }

  /** A melt quote for an invoice: amount and the fee reserve the mint asks for. */
  async meltQuote(
    mint: string,
    invoice: string,
  ): Promise<{ quote: string; amountSat: number; feeReserveSat: number }> {
    const wallet = await this.wallet(mint);
    const q = await wallet.createMeltQuoteBolt11(invoice).catch((err) => {
      throw mintFailure(err, mint);
    });
    return {
      quote: q.quote,
      amountSat: Number(q.amount.toString()),
      feeReserveSat: Number(q.fee_reserve.toString()),
    };
  }

  /**
   * The state of a melt quote at the mint (to finish a payout whose answer was lost). `changeSat`
   * is what the mint signed back (NUT-08); the change proofs themselves return through `recover()`.
   */
  async meltState(
    mint: string,
    quote: string,
  ): Promise<{ state: "UNPAID" | "PENDING" | "PAID"; preimage: string | null; changeSat: number }> {
    const wallet = await this.wallet(mint);
    const q = await wallet.checkMeltQuoteBolt11(quote).catch((err) => {
      throw mintFailure(err, mint);
    });
    const changeSat = (q.change ?? []).reduce((s, c) => s + Number(c.amount.toString()), 0);
    return {
      state: q.state as "UNPAID" | "PENDING" | "PAID",
      preimage: q.payment_preimage ?? null,
      changeSat,
    };
  }

  /** What a melt named `op` put in (0 when unknown: finished normally, or never started). */
  async meltInputsSat(op: string): Promise<number> {
    return this.store.spentBy(op);
  }

  /** Pays a bolt11 invoice from the pool through the mint (NUT-05), keeping the NUT-08 change. */
  async melt(mint: string, invoice: string): Promise<MeltResult> {
    return this.payMeltQuote(mint, (await this.meltQuote(mint, invoice)).quote);
  }

  /**
   * Pays an existing melt quote from the pool; inputs stay reserved while the mint reports PENDING.
   * A caller that may have to settle the melt later (its answer lost) names it with `op`, and
   * then learns what it put in with `meltInputsSat(op)`.
   */
  async payMeltQuote(mint: string, quoteId: string, op: string = randomUUID()): Promise<MeltResult> {
    const wallet = await this.wallet(mint);
    const quote = await wallet.checkMeltQuoteBolt11(quoteId).catch((err) => {
      throw mintFailure(err, mint);
    });
    const need = Number(quote.amount.toString()) + Number(quote.fee_reserve.toString());
    const picked = await this.store.reserveProofs(mint, need, op);
    if (!picked) {
      throw new EcashError(
        "insufficient_funds",
        `wallet holds ${await this.balance(mint)} sats at ${mint}, need ${need}`,
        402,
      );
    }
    try {
      const result = await currentOp.run(op, () => wallet.meltProofsBolt11(quote, picked.map(toProof)));
      await this.store.addProofs(result.change.map((p) => toStored(mint, p)));
      if (result.quote.state !== "PAID") {
        // Still in flight at the mint: keep the inputs reserved; recover() settles them later.
        return { paidSat: 0, feeSat: 0, preimage: null, changeSat: sumProofs(result.change) };
      }
      await this.store.finishOp(op, true);
      await this.store.resolveOp(op);
      const changeSat = sumProofs(result.change);
      const paidSat = Number(quote.amount.toString());
      return {
        paidSat,
        feeSat: sumStored(picked) - paidSat - changeSat,
        preimage: result.quote.payment_preimage ?? null,
        changeSat,
      };
    } catch (err) {
      if (err instanceof MintOperationError) {
        await this.store.finishOp(op, false);
        await this.store.resolveOp(op);
      }
      throw mintFailure(err, mint);
    }
  }

  /**
   * Recovers every proof the seed ever received from a mint (NUT-09, all its keysets), keeps the
   * unspent ones and moves the counters past what was found.
   */
  async restoreFromSeed(mint: string): Promise<{ restoredSat: number; proofs: number }> {
    return restoreFromSeed(this.repair, mint);
  }

  async balance(mint?: string): Promise<number> {
    return this.store.balance(mint);
  }

  async balances(): Promise<Record<string, number>> {
    return this.store.balancesByMint();
  }

  /**
   * Repairs what a crash interrupted: outputs of unfinished counter ranges are restored from the
   * seed (NUT-09) and added when unspent; proofs left reserved are settled by asking the mint.
   * `claims` has one entry per claim op with its whole uncredited value (see `recoverPool`).
   */
  async recover(): Promise<{ restoredSat: number; freedSat: number; claims: RestoredClaim[] }> {
    return recoverPool(this.repair);
  }

  /** What crash repair (repair.ts) works with: the pool, a loaded wallet per mint, the log. */
  private get repair(): RepairContext {
    return { store: this.store, wallet: (mint) => this.wallet(mint), log: this.log };
  }
}
