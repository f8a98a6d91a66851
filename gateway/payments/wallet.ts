/**
 * The gateway's own Cashu wallet: the shared ecash core plus what only a gateway needs — the list
 * of trusted mints, and change tokens kept server-side so a client that went away can claim them.
 */
import { join } from "node:path";
import {
  EcashError,
  EcashStore,
  EcashWallet,
  loadOrCreateSeed,
  normalizeMintUrl,
  type TokenFormat,
  type TokenInfo,
} from "../../src/shared/ecash/index.js";
import { type Logger, privateDir } from "../../src/shared/index.js";

const CHANGE_SCHEMA = `
CREATE TABLE IF NOT EXISTS change (
  id TEXT PRIMARY KEY, mint TEXT NOT NULL, amount INTEGER NOT NULL, token TEXT NOT NULL, created_at INTEGER NOT NULL,
  fetched_at INTEGER);
`;

class GatewayEcashStore extends EcashStore {
  constructor(path: string) {
    super(path);
    this.db.exec(CHANGE_SCHEMA);
  }

  saveChange(id: string, mint: string, amount: number, token: string): void {
    this.prepared(
      "INSERT OR IGNORE INTO change (id, mint, amount, token, created_at) VALUES (?, ?, ?, ?, ?)",
    ).run(id, mint, amount, token, Date.now());
  }

  /** The stored change token, without marking it fetched. */
  findChange(id: string): { token: string } | undefined {
    return this.prepared("SELECT token FROM change WHERE id = ?").get(id) as { token: string } | undefined;
  }

  /** Retention: spent proofs (see EcashStore) and change tokens their client fetched before `beforeMs`. */
  override compact(beforeMs: number): number {
    const change = this.tx(
      () =>
        this.prepared("DELETE FROM change WHERE fetched_at IS NOT NULL AND fetched_at < ?").run(beforeMs)
          .changes,
    );
    return super.compact(beforeMs) + change;
  }

  getChange(id: string): { id: string; mint: string; amount: number; token: string } | undefined {
    const row = this.prepared("SELECT id, mint, amount, token FROM change WHERE id = ?").get(id) as
      { id: string; mint: string; amount: number; token: string } | undefined;
    if (row)
      this.prepared("UPDATE change SET fetched_at = COALESCE(fetched_at, ?) WHERE id = ?").run(
        Date.now(),
        id,
      );
    return row;
  }
}

export class GatewayWallet extends EcashWallet {
  private constructor(
    private readonly changeStore: GatewayEcashStore,
    seed: Uint8Array,
    private mints: string[],
    log: Logger,
  ) {
    super(changeStore, seed, log);
  }

  static async open(dataDir: string, trustedMints: string[], log: Logger): Promise<GatewayWallet> {
    const dir = join(dataDir, "wallet");
    privateDir(dir);
    return new GatewayWallet(
      new GatewayEcashStore(join(dir, "wallet.sqlite")),
      loadOrCreateSeed(dir),
      trustedMints.map(normalizeMintUrl),
      log,
    );
  }

  async close(): Promise<void> {
    this.store.close();
  }

  /** Mints whose tokens are accepted, the preferred one first. */
  get trustedMints(): string[] {
    return [...this.mints];
  }

  /** Trusts another mint (the bundled mint's URL is known only once the server listens). */
  trust(mint: string, preferred = false): void {
    const url = normalizeMintUrl(mint);
    const others = this.mints.filter((m) => m !== url);
    this.mints = preferred ? [url, ...others] : [...others, url];
  }

  isTrusted(mint: string): boolean {
    return this.mints.includes(normalizeMintUrl(mint));
  }

  /** Swaps a client's token into the pool, if its mint is trusted; `op` says whose it is (claims.ts). */
  async claim(info: TokenInfo, op?: string): Promise<{ mint: string; amountSat: number }> {
    if (!this.isTrusted(info.mint)) {
      throw new EcashError(
        "foreign_mint",
        `mint ${info.mint} is not trusted here; use ${this.mints[0]}`,
        400,
      );
    }
    return this.receive(info, op);
  }

  /** Pays change and keeps the token server-side under `id` before anyone sees it. */
  async payChange(id: string, mint: string, amountSat: number, format: TokenFormat): Promise<string> {
    const existing = this.changeStore.findChange(id);
    if (existing) return existing.token;
    return this.pay(mint, amountSat, format, undefined, (token) =>
      this.changeStore.saveChange(id, mint, amountSat, token),
    );
  }

  change(id: string): { amount: number; token: string } | undefined {
    return this.changeStore.getChange(id);
  }

  /**
   * Retention (on a schedule): forgets spent proofs and fetched change tokens older than
   * `beforeMs`. Unspent proofs, reserved ones and change nobody fetched are kept: no balance moves.
   */
  compact(beforeMs: number): number {
    return this.changeStore.compact(beforeMs);
  }
}
