/**
 * The browser's Cashu wallet: cashu-ts against the gateway's mint, NUT-13 secrets from a BIP-39
 * phrase, state in the Vault. Every operation saves what it is about to do before it talks to the
 * mint or the gateway, and `repair()` settles whatever a closed tab interrupted.
 */
import {
  Amount,
  CheckStateEnum,
  type CounterRange,
  type CounterSource,
  getEncodedToken,
  getTokenMetadata,
  MintOperationError,
  type Proof,
  type ProofLike,
  Wallet,
} from "@cashu/cashu-ts";
import { generateMnemonic, mnemonicToSeedSync, validateMnemonic } from "@scure/bip39";
import { wordlist } from "@scure/bip39/wordlists/english.js";
import { type SavedProof, type SavedQuote, Vault, type VaultData } from "./vault.js";

const toSaved = (p: Proof): SavedProof => ({
  id: p.id,
  amount: Amount.from(p.amount).toNumber(),
  secret: p.secret,
  C: p.C,
  ...(p.dleq ? { dleq: p.dleq } : {}),
});
const toLike = (p: SavedProof): ProofLike => ({ ...p });
const sum = (ps: { amount: number }[]) => ps.reduce((s, p) => s + p.amount, 0);

/** How far back from the current counters a repair looks for outputs a closed tab never saved. */
const REPAIR_WINDOW = 200;

export class BrowserWallet {
  private constructor(
    readonly vault: Vault,
    private readonly cashu: Wallet,
  ) {}

  /** Opens the saved wallet, or creates one with a fresh phrase (or the given one, to restore). */
  static async open(storage: Storage, mint: string, mnemonic?: string): Promise<BrowserWallet> {
    let vault = mnemonic ? undefined : Vault.load(storage);
    if (vault && vault.data.mint !== mint && vault.balance() > 0) {
      throw new Error(`this browser holds ecash of ${vault.data.mint}, but the gateway now uses ${mint}`);
    }
    if (!vault || vault.data.mint !== mint) {
      if (mnemonic && !validateMnemonic(mnemonic.trim(), wordlist))
        throw new Error("not a valid backup phrase");
      vault = Vault.create(storage, mnemonic?.trim() ?? generateMnemonic(wordlist, 128), mint);
    }
    const cashu = new Wallet(mint, {
      unit: "sat",
      bip39seed: mnemonicToSeedSync(vault.data.mnemonic),
      counterSource: vaultCounters(vault),
    });
    await cashu.loadMint();
    return new BrowserWallet(vault, cashu);
  }

  balance(): number {
    return this.vault.balance();
  }

  get mnemonic(): string {
    return this.vault.data.mnemonic;
  }

  /** Lightning top-up, step 1: an invoice from the mint, saved so a reload keeps watching it. */
  async createTopUp(amount: number): Promise<SavedQuote> {
    const q = await this.cashu.createMintQuoteBolt11(amount, "Owlrun Chat top-up");
    const saved = { quote: q.quote, amount, request: q.request, expiry: q.expiry ?? null };
    this.vault.update((d) => d.quotes.push(saved));
    return saved;
  }

  /**
   * Step 2: waits until the invoice is paid (NUT-17 websocket, with polling beside it in case the
   * socket is blocked), then mints the proofs. Returns the sats added.
   */
  async completeTopUp(quote: SavedQuote, signal: AbortSignal): Promise<number> {
    await Promise.any([
      this.cashu.on.onceMintPaid(quote.quote, { signal }),
      (async () => {
        for (;;) {
          const q = await this.cashu.checkMintQuoteBolt11(quote.quote);
          if (q.state !== "UNPAID") return q;
          await sleep(1500, signal);
        }
      })(),
    ]).catch((e: AggregateError) => {
      throw e.errors?.[0] ?? e;
    });
    return this.mintPaid(quote);
  }

  private async mintPaid(quote: SavedQuote): Promise<number> {
    await this.signing(
      () => this.cashu.mintProofsBolt11(quote.amount, quote.quote),
      (d, proofs) => {
        d.proofs.push(...proofs.map(toSaved));
        d.quotes = d.quotes.filter((q) => q.quote !== quote.quote);
      },
    );
    return quote.amount;
  }

  /** Saves a token the page now owns (change, refund, pasted) before anything else happens with it. */
  keepToken(token: string): void {
    this.vault.update((d) => d.inbox.push(token.trim()));
  }

  /** Swaps every saved token into fresh proofs of our own (so the backup phrase covers them). */
  async claimInbox(): Promise<number> {
    let added = 0;
    for (const token of [...this.vault.data.inbox]) {
      const proofs = await this.signing(
        () =>
          this.cashu.receive(token).catch((err: unknown) => {
            // Spent already (e.g. swapped before a reload cut us off): repair() finds our outputs.
            if (err instanceof MintOperationError && err.code === 11001) return [] as Proof[];
            throw err;
          }),
        (d, proofs) => {
          d.proofs.push(...proofs.map(toSaved));
          d.inbox = d.inbox.filter((t) => t !== token);
        },
      );
      added += sum(proofs.map(toSaved));
    }
    return added;
  }

  /** The amount a token carries, or an error if it is not a sat token of our mint. */
  inspect(token: string): number {
    const meta = getTokenMetadata(token.trim());
    if (meta.mint.replace(/\/+$/, "") !== this.vault.data.mint.replace(/\/+$/, ""))
      throw new Error(`that token is from ${meta.mint}; this chat accepts ecash of ${this.vault.data.mint}`);
    if ((meta.unit ?? "sat") !== "sat") throw new Error("only sat tokens are accepted");
    return Amount.from(meta.amount).toNumber();
  }

  /**
   * A token of exactly `amount` for one prompt. The proofs it carries leave the wallet and are
   * recorded as in flight under `requestId` in the same write, before the caller sends them.
   */
  async payFor(amount: number, requestId: string): Promise<string> {
    if (amount > this.balance())
      throw new Error(`this prompt needs ${amount} sats; the wallet holds ${this.balance()}`);
    let token = "";
    await this.signing(
      () => this.cashu.send(amount, this.vault.data.proofs.map(toLike)),
      (d, { keep, send }) => {
        token = this.encode(send);
        d.proofs = keep.map(toSaved);
        d.inFlight.push({ requestId, token, amount, createdAt: Date.now() });
      },
    );
    return token;
  }

  /** The prompt is settled: its change (if any) is already in the inbox. */
  settled(requestId: string, change?: string): void {
    this.vault.update((d) => {
      if (change) d.inbox.push(change);
      d.inFlight = d.inFlight.filter((f) => f.requestId !== requestId);
    });
  }

  /** Every proof as one token; the wallet is empty afterwards and the token is kept on screen. */
  async withdrawAll(): Promise<{ token: string; amount: number } | undefined> {
    await this.claimInbox();
    let proofs = this.vault.data.proofs;
    if (proofs.length === 0) return undefined;
    const amount = sum(proofs);
    if (proofs.length > 4) {
      // One proof per power of two, so the token stays short enough for a QR code. Our own outputs:
      // if the tab dies mid-swap, repair() restores them from the phrase.
      await this.signing(
        () => this.cashu.receive(proofs.map(toLike), {}, { type: "deterministic", counter: 0 }),
        (d, fewer) => (d.proofs = fewer.map(toSaved)),
      );
      proofs = this.vault.data.proofs;
    }
    const token = this.encode(proofs.map((p) => ({ ...p, amount: Amount.from(p.amount) })));
    this.vault.update((d) => {
      d.proofs = [];
      d.lastWithdrawal = { token, amount, at: Date.now() };
    });
    return { token, amount };
  }

  /**
   * After a reload: finishes top-ups that were paid, recovers prompts that never saw their answer
   * (change stored by the gateway, or the unspent token itself), drops spent proofs and brings
   * back outputs a closed tab signed but never saved (NUT-09 restore around the counters).
   */
  async repair(): Promise<void> {
    for (const q of [...this.vault.data.quotes]) {
      const state = await this.cashu.checkMintQuoteBolt11(q.quote).catch(() => undefined);
      if (state?.state === "PAID") await this.mintPaid(q).catch(() => undefined);
      else if (state?.state === "ISSUED" || (q.expiry && q.expiry * 1000 < Date.now()))
        this.vault.update((d) => (d.quotes = d.quotes.filter((x) => x.quote !== q.quote)));
    }
    await this.recoverInFlight();
    await this.claimInbox().catch(() => undefined);
    await this.dropSpent();
    if (this.vault.data.signing) {
      await this.restoreRange(REPAIR_WINDOW);
      this.vault.update((d) => (d.signing = false));
    }
  }

  /**
   * Runs a mint call that signs outputs for us, flagged in the vault until `save` stores its result
   * in the same write that clears the flag: a tab closed in between is repaired from the phrase.
   */
  private async signing<T>(run: () => Promise<T>, save: (d: VaultData, result: T) => void): Promise<T> {
    this.vault.update((d) => (d.signing = true));
    let result: T;
    try {
      result = await run();
    } catch (err) {
      // A refusal signed nothing; anything else (no answer) may have: leave the flag for repair().
      if (err instanceof MintOperationError) this.vault.update((d) => (d.signing = false));
      throw err;
    }
    this.vault.update((d) => {
      save(d, result);
      d.signing = false;
    });
    return result;
  }

  /**
   * Prompts that never saw their answer: the change the gateway stored under the request id, or
   * the token itself while the mint says it is unspent (never claimed).
   */
  async recoverInFlight(): Promise<void> {
    for (const f of [...this.vault.data.inFlight]) {
      const res = await fetch(`/v1/cashu/change/${f.requestId}`).catch(() => undefined);
      if (res?.ok) {
        this.settled(f.requestId, ((await res.json()) as { token: string }).token || undefined);
        continue;
      }
      const proofs = this.cashu.decodeToken(f.token).proofs;
      const states = await this.cashu.checkProofsStates(proofs);
      if (states.every((s) => s.state === CheckStateEnum.UNSPENT)) this.settled(f.requestId, f.token);
      else if (Date.now() - f.createdAt > 15 * 60_000) this.settled(f.requestId);
    }
  }

  /** Restore from the phrase: every deterministic output the mint ever signed for it, unspent only. */
  async restoreAll(): Promise<number> {
    const before = this.balance();
    const keysets = this.cashu.keyChain.getKeysets().filter((k) => k.unit === "sat");
    for (const ks of keysets) {
      const { proofs, lastCounterWithSignature } = await this.cashu.batchRestore(50, 100, 0, ks.id);
      if (lastCounterWithSignature !== undefined)
        this.vault.update(
          (d) => (d.counters[ks.id] = Math.max(d.counters[ks.id] ?? 0, lastCounterWithSignature + 1)),
        );
      await this.addUnspent(proofs);
    }
    return this.balance() - before;
  }

  private async restoreRange(window: number) {
    for (const [keysetId, next] of Object.entries(this.vault.data.counters)) {
      const start = Math.max(0, next - window);
      if (next === start) continue;
      const { proofs } = await this.cashu.restore(start, next - start, { keysetId });
      await this.addUnspent(proofs);
    }
  }

  private async addUnspent(proofs: Proof[]) {
    const held = new Set(this.vault.data.proofs.map((p) => p.secret));
    // Proofs in flight or withdrawn are not ours to take back here.
    const away = new Set(
      [...this.vault.data.inFlight.map((f) => f.token), this.vault.data.lastWithdrawal?.token ?? ""]
        .filter(Boolean)
        .flatMap((t) => this.cashu.decodeToken(t).proofs.map((p) => p.secret)),
    );
    const fresh = proofs.filter((p) => !held.has(p.secret) && !away.has(p.secret));
    if (fresh.length === 0) return;
    const states = await this.cashu.checkProofsStates(fresh);
    const unspent = fresh.filter((_, i) => states[i]?.state === CheckStateEnum.UNSPENT);
    if (unspent.length) this.vault.update((d) => d.proofs.push(...unspent.map(toSaved)));
  }

  private async dropSpent() {
    const proofs = this.vault.data.proofs;
    if (proofs.length === 0) return;
    const states = await this.cashu.checkProofsStates(proofs.map(toLike));
    const spent = new Set(
      proofs.filter((_, i) => states[i]?.state !== CheckStateEnum.UNSPENT).map((p) => p.secret),
    );
    if (spent.size) this.vault.update((d) => (d.proofs = d.proofs.filter((p) => !spent.has(p.secret))));
  }

  private encode(proofs: Proof[]): string {
    return getEncodedToken({ mint: this.vault.data.mint, unit: "sat", proofs });
  }
}

/** NUT-13 counters kept in the vault, so secrets are never reused after a reload. */
function vaultCounters(vault: Vault): CounterSource {
  const next = (id: string) => vault.data.counters[id] ?? 0;
  return {
    async reserve(keysetId: string, n: number): Promise<CounterRange> {
      const start = next(keysetId);
      if (n > 0) vault.update((d) => (d.counters[keysetId] = start + n));
      return { start, count: n };
    },
    async advanceToAtLeast(keysetId: string, minNext: number) {
      if (next(keysetId) < minNext) vault.update((d) => (d.counters[keysetId] = minNext));
    },
    async snapshot() {
      return { ...vault.data.counters };
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason);
    });
  });
}
