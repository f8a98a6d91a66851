/**
 * The local Cashu wallet behind the MCP tools and `owlrun-mcp wallet`: several mints, a BIP-39
 * seed, NUT-13 counters committed before any request leaves, spends that stay pending until the
 * mint or the gateway confirms them, and spend limits per call and per day.
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import Database from "better-sqlite3";
import secp from "secp256k1";
import {
  deriveLockKey,
  EcashError,
  EcashStore,
  EcashWallet,
  inspectToken,
  type LockKey,
  type MeltResult,
  normalizeMintUrl,
  type TokenFormat,
} from "../shared/ecash/index.js";
import { invoiceForLightningAddress, LIGHTNING_ADDRESS, type ResolveOptions } from "../shared/lnurl.js";
import { type Logger, privateDir } from "../shared/index.js";
import { loadOrCreateMnemonic } from "./seed.js";

export { isValidMnemonic } from "./seed.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS topups (
  quote TEXT PRIMARY KEY, mint TEXT NOT NULL, amount INTEGER NOT NULL, request TEXT NOT NULL, expiry INTEGER,
  state TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS spends (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, amount INTEGER NOT NULL, day TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS requests (
  id TEXT PRIMARY KEY, gateway TEXT NOT NULL, mint TEXT NOT NULL, amount INTEGER NOT NULL, token TEXT NOT NULL,
  state TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS l402_credentials (
  payment_hash TEXT PRIMARY KEY, gateway TEXT NOT NULL, credential TEXT NOT NULL, amount INTEGER NOT NULL,
  state TEXT NOT NULL, created_at INTEGER NOT NULL);
`;

/** A paid L402 credential (`<macaroon>:<preimage>`) not yet spent on a served request. */
export interface L402Credential {
  payment_hash: string;
  gateway: string;
  credential: string;
  amount: number;
  created_at: number;
}

class LocalStore extends EcashStore {
  constructor(path: string) {
    super(path);
    this.db.exec(SCHEMA);
  }
  get sql(): Database.Database {
    return this.db;
  }
}

export interface SpendLimits {
  perCallSat: number;
  perDaySat: number;
}

export class SpendLimitError extends EcashError {
  constructor(
    message: string,
    readonly limit: "per_call" | "per_day",
  ) {
    super("insufficient_funds", message, 402);
  }
}

/** A compressed secp256k1 public key in hex, on the curve. */
export function isLockPubkey(key: string): boolean {
  return /^0[23][0-9a-fA-F]{64}$/.test(key) && secp.publicKeyVerify(Buffer.from(key, "hex"));
}

const today = () => new Date().toISOString().slice(0, 10);

export class LocalWallet {
  private constructor(
    private readonly store: LocalStore,
    private readonly core: EcashWallet,
    readonly mnemonic: string,
    readonly createdSeed: boolean,
    readonly limits: SpendLimits,
    private readonly lockKey: LockKey,
  ) {}

  static open(
    dataDir: string,
    log: Logger,
    opts: { limits?: Partial<SpendLimits>; restoreFrom?: string } = {},
  ): LocalWallet {
    const dir = join(dataDir, "wallet");
    privateDir(dir);
    const { mnemonic, seed, created } = loadOrCreateMnemonic(dir, opts.restoreFrom);
    const store = new LocalStore(join(dir, "wallet.sqlite"));
    const limits = {
      perCallSat: opts.limits?.perCallSat ?? 1000,
      perDaySat: opts.limits?.perDaySat ?? 10_000,
    };
    // The lock key comes from the seed: the recovery phrase restores it with the ecash.
    return new LocalWallet(
      store,
      new EcashWallet(store, seed, log),
      mnemonic,
      created,
      limits,
      deriveLockKey(seed),
    );
  }

  close(): void {
    this.store.close();
  }

  /**
   * Keeps a paid L402 credential until a request it pays is served: a request that fails after the
   * invoice was paid leaves it here for the next one (the gateway releases unserved credentials).
   */
  saveL402(c: Omit<L402Credential, "created_at">): void {
    this.store.sql
      .prepare(
        "INSERT OR IGNORE INTO l402_credentials (payment_hash, gateway, credential, amount, state, created_at) VALUES (?, ?, ?, ?, 'unused', ?)",
      )
      .run(c.payment_hash, c.gateway, c.credential, c.amount, Date.now());
  }

  /** The newest unused credential for `gateway` worth at least `minSat`, younger than `maxAgeMs`. */
  unusedL402(gateway: string, minSat: number, maxAgeMs: number): L402Credential | undefined {
    return this.store.sql
      .prepare(
        "SELECT * FROM l402_credentials WHERE gateway = ? AND state = 'unused' AND amount >= ? AND created_at >= ? ORDER BY created_at DESC LIMIT 1",
      )
      .get(gateway, minSat, Date.now() - maxAgeMs) as L402Credential | undefined;
  }

  /** A credential that paid a served request (used) or that the gateway no longer takes (dead). */
  endL402(paymentHash: string, state: "used" | "dead"): void {
    this.store.sql
      .prepare("UPDATE l402_credentials SET state = ? WHERE payment_hash = ?")
      .run(state, paymentHash);
  }

  /** Spendable sats per mint and in total. */
  balance(): { total_sats: number; mints: Record<string, number> } {
    // Read from the SQLite store directly: the local wallet answers synchronously, as it always has.
    const mints = this.store.balancesByMint();
    return { total_sats: Object.values(mints).reduce((s, v) => s + v, 0), mints };
  }

  /** The mint to pay from: the given one, else the one holding the most. */
  pickMint(preferred?: string): string | undefined {
    if (preferred) return normalizeMintUrl(preferred);
    const entries = Object.entries(this.store.balancesByMint()).sort((a, b) => b[1] - a[1]);
    return entries[0]?.[0];
  }

  spentToday(): number {
    const row = this.store.sql.prepare("SELECT SUM(amount) AS v FROM spends WHERE day = ?").get(today()) as {
      v: number | null;
    };
    return row.v ?? 0;
  }

  /**
   * Refuses a spend over the daily limit (never exceeded); reports whether it is over the per-call
   * limit, which the caller may let the user confirm.
   */
  checkSpend(amountSat: number): { overPerCall: boolean } {
    const spent = this.spentToday();
    if (spent + amountSat > this.limits.perDaySat) {
      throw new SpendLimitError(
        `daily spend limit: ${spent} of ${this.limits.perDaySat} sats spent today; ${amountSat} more is not allowed`,
        "per_day",
      );
    }
    return { overPerCall: amountSat > this.limits.perCallSat };
  }

  /**
   * Counts a spend against the daily limit. The wallet records its own; tools record money they
   * spend from elsewhere (the gateway account: market escrow and collects).
   */
  recordSpend(kind: string, amountSat: number): void {
    if (amountSat === 0) return;
    this.store.sql
      .prepare("INSERT INTO spends (id, kind, amount, day, created_at) VALUES (?, ?, ?, ?, ?)")
      .run(randomUUID(), kind, amountSat, today(), Date.now());
  }

  /** The public key others lock ecash to (NUT-11 P2PK) for this wallet to receive. */
  lockPubkey(): string {
    return this.lockKey.pubkey;
  }

  /**
   * Swaps a token into the wallet. Tokens locked to this wallet's key are signed for; an HTLC
   * needs its `preimage`; tokens locked to anyone else are refused before any swap.
   */
  async receive(
    token: string,
    opts: { preimage?: string } = {},
  ): Promise<{ mint: string; amountSat: number }> {
    return this.core.receive(inspectToken(token), undefined, { key: this.lockKey, preimage: opts.preimage });
  }

  /** A token of `amountSat`; with `lockTo` (a compressed public key) only that key's holder can claim it. */
  async send(
    amountSat: number,
    mint?: string,
    format: TokenFormat = "B",
    lockTo?: string,
  ): Promise<{ token: string; mint: string }> {
    if (lockTo !== undefined && !isLockPubkey(lockTo))
      throw new EcashError(
        "invalid_token",
        "lock_to_pubkey must be a 33-byte compressed public key in hex (02… or 03…)",
        400,
      );
    const from = this.pickMint(mint);
    if (!from) throw new EcashError("insufficient_funds", "the wallet is empty; use topup", 402);
    this.checkSpend(amountSat);
    const token = await this.core.pay(from, amountSat, format, undefined, undefined, lockTo?.toLowerCase());
    this.recordSpend("send", amountSat);
    return { token, mint: from };
  }

  // ---- Lightning top-up ---------------------------------------------------------------------
  async topup(
    mint: string,
    amountSat: number,
  ): Promise<{ quote: string; request: string; expiry: number | null }> {
    const url = normalizeMintUrl(mint);
    const q = await this.core.createMintQuote(url, amountSat, "owlrun-mcp wallet top-up");
    this.store.sql
      .prepare(
        "INSERT INTO topups (quote, mint, amount, request, expiry, state, created_at) VALUES (?, ?, ?, ?, ?, 'pending', ?)",
      )
      .run(q.quote, url, amountSat, q.request, q.expiry, Date.now());
    return q;
  }

  /** Mints a paid top-up into the wallet; "pending" while the invoice is unpaid. */
  async topupStatus(
    quote: string,
  ): Promise<{ state: "pending" | "claimed"; amountSat: number; mint: string }> {
    const row = this.store.sql.prepare("SELECT * FROM topups WHERE quote = ?").get(quote) as
      { quote: string; mint: string; amount: number; state: string } | undefined;
    if (!row) throw new EcashError("invalid_token", `no top-up with quote ${quote} in this wallet`, 404);
    if (row.state === "claimed") return { state: "claimed", amountSat: row.amount, mint: row.mint };
    if (!(await this.core.mintPaid(row.mint, quote, row.amount)))
      return { state: "pending", amountSat: row.amount, mint: row.mint };
    this.store.sql.prepare("UPDATE topups SET state = 'claimed' WHERE quote = ?").run(quote);
    return { state: "claimed", amountSat: row.amount, mint: row.mint };
  }

  pendingTopups(): { quote: string; mint: string; amount: number }[] {
    return this.store.sql.prepare("SELECT quote, mint, amount FROM topups WHERE state = 'pending'").all() as {
      quote: string;
      mint: string;
      amount: number;
    }[];
  }

  // ---- withdraw -----------------------------------------------------------------------------
  /** Pays a bolt11 invoice, or `amountSat` to a Lightning address, through the mint's melt. */
  async withdraw(
    destination: string,
    opts: { amountSat?: number; mint?: string; lnurl?: ResolveOptions } = {},
  ): Promise<MeltResult & { mint: string }> {
    const mint = this.pickMint(opts.mint);
    if (!mint) throw new EcashError("insufficient_funds", "the wallet is empty; use topup", 402);
    let invoice = destination.trim().replace(/^lightning:/i, "");
    if (LIGHTNING_ADDRESS.test(invoice)) {
      if (!opts.amountSat)
        throw new EcashError("invalid_token", "paying a Lightning address needs an amount", 400);
      invoice = await invoiceForLightningAddress(invoice, opts.amountSat, opts.lnurl);
    }
    const result = await this.core.melt(mint, invoice);
    this.recordSpend("withdraw", result.paidSat + result.feeSat);
    return { ...result, mint };
  }

  // ---- paying gateway requests ----------------------------------------------------------------
  /**
   * A token for one X-Cashu request. The request id is journaled first, so after a crash the
   * change can be fetched from the gateway with it.
   */
  async tokenForRequest(
    gateway: string,
    amountSat: number,
    mint?: string,
  ): Promise<{ id: string; token: string; mint: string }> {
    const { token, mint: from } = await this.send(amountSat, mint);
    const id = randomUUID();
    this.store.sql
      .prepare(
        "INSERT INTO requests (id, gateway, mint, amount, token, state, created_at) VALUES (?, ?, ?, ?, ?, 'sent', ?)",
      )
      .run(id, gateway, from, amountSat, token, Date.now());
    return { id, token, mint: from };
  }

  /**
   * The request never reached the gateway (or it refused the token before claiming it): take the
   * token back. Returns the sats recovered (0 when the token was spent after all).
   */
  async reclaimRequest(id: string): Promise<number> {
    const row = this.store.sql
      .prepare("SELECT token FROM requests WHERE id = ? AND state = 'sent'")
      .get(id) as { token: string } | undefined;
    if (!row) return 0;
    try {
      const { amountSat } = await this.receive(row.token);
      this.recordSpend("reclaimed", -amountSat);
      this.store.sql.prepare("UPDATE requests SET state = 'reclaimed' WHERE id = ?").run(id);
      return amountSat;
    } catch (err) {
      if (err instanceof EcashError && err.type === "token_spent") return 0;
      throw err;
    }
  }

  /** Stores the change the gateway returned and closes the request. */
  async finishRequest(id: string, changeToken?: string): Promise<number> {
    let received = 0;
    if (changeToken) received = (await this.receive(changeToken)).amountSat;
    // Only what the request cost counts against the daily limit: the change comes off it.
    this.recordSpend("change", -received);
    this.store.sql.prepare("UPDATE requests SET state = 'done' WHERE id = ?").run(id);
    return received;
  }

  /** Requests whose outcome is not settled yet, with when they were sent (ms). */
  openRequests(): { id: string; gateway: string; amount: number; created_at: number }[] {
    return this.store.sql
      .prepare("SELECT id, gateway, amount, created_at FROM requests WHERE state = 'sent'")
      .all() as { id: string; gateway: string; amount: number; created_at: number }[];
  }

  /** `owlrun-mcp wallet restore`: everything the seed ever received at this mint, unspent, back in the wallet. */
  async restore(mint: string): Promise<{ restoredSat: number; proofs: number }> {
    return this.core.restoreFromSeed(normalizeMintUrl(mint));
  }

  /** Repairs interrupted swaps (from the seed) and reserved proofs (asking the mint). */
  async recover(): Promise<{ restoredSat: number; freedSat: number }> {
    return this.core.recover();
  }
}
