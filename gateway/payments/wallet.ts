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
  type OwedToken,
  type TokenFormat,
  type TokenInfo,
} from "../../src/shared/ecash/index.js";
import { type Logger, type PgDatabase, privateDir } from "../../src/shared/index.js";
import type { GatewayPool, StoredChange } from "./pool.js";
import { PgGatewayPool } from "./pool-pg.js";

const CHANGE_SCHEMA = `
CREATE TABLE IF NOT EXISTS change (
  id TEXT PRIMARY KEY, mint TEXT NOT NULL, amount INTEGER NOT NULL, token TEXT NOT NULL, created_at INTEGER NOT NULL,
  fetched_at INTEGER);
`;
/** Retention's scan of change nobody fetched: oldest first, each row rechecked at most daily. */
const CHANGE_RETENTION_SCHEMA = `
CREATE INDEX IF NOT EXISTS change_unfetched ON change (checked_at, created_at) WHERE fetched_at IS NULL;
`;

const DAY = 86_400_000;

/** The SQLite pool: `<data>/wallet/wallet.sqlite`, one process. */
export class GatewayEcashStore extends EcashStore implements GatewayPool {
  constructor(path: string) {
    super(path);
    this.db.exec(CHANGE_SCHEMA);
    const columns = this.db.prepare("PRAGMA table_info(change)").all() as { name: string }[];
    if (!columns.some((c) => c.name === "checked_at")) {
      // When retention last asked the mint about this change (older files lack the column).
      this.db.exec("ALTER TABLE change ADD COLUMN checked_at INTEGER NOT NULL DEFAULT 0");
    }
    this.db.exec(CHANGE_RETENTION_SCHEMA);
  }

  /** Change nobody fetched, made before `beforeMs` and not checked since `checkedBeforeMs`. */
  unfetchedChange(beforeMs: number, checkedBeforeMs: number, limit: number) {
    return this.prepared(
      `SELECT id, mint, token FROM change WHERE fetched_at IS NULL AND checked_at < ? AND created_at < ?
       ORDER BY checked_at, created_at LIMIT ?`,
    ).all(checkedBeforeMs, beforeMs, limit) as { id: string; mint: string; token: string }[];
  }

  markChangeChecked(ids: readonly string[], now: number): void {
    const mark = this.prepared("UPDATE change SET checked_at = ? WHERE id = ?");
    this.tx(() => {
      for (const id of ids) mark.run(now, id);
    });
  }

  /** Deletes change rows (retention: only rows whose proofs the mint reports all spent). */
  forgetChange(ids: readonly string[]): number {
    const del = this.prepared("DELETE FROM change WHERE id = ?");
    return this.tx(() => ids.reduce((n, id) => n + del.run(id).changes, 0));
  }

  /** Stores change unless `id` has some; answers the token stored under `id`. */
  saveChange(id: string, mint: string, amount: number, token: string): string {
    const added = this.prepared(
      "INSERT OR IGNORE INTO change (id, mint, amount, token, created_at) VALUES (?, ?, ?, ?, ?)",
    ).run(id, mint, amount, token, Date.now()).changes;
    return added === 1 ? token : this.findChange(id)!.token;
  }

  protected override saveOwed(owed: OwedToken): string {
    return this.saveChange(owed.id, owed.mint, owed.amount, owed.token);
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

  getChange(id: string): StoredChange | undefined {
    const row = this.prepared("SELECT id, mint, amount, token FROM change WHERE id = ?").get(id) as
      StoredChange | undefined;
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
    private readonly changeStore: GatewayPool,
    seed: Uint8Array,
    private mints: string[],
    log: Logger,
  ) {
    super(changeStore, seed, log);
  }

  /**
   * With `database` the pool, its counters, the change owed and the seed live in PostgreSQL, shared
   * by every gateway process on it (they must share the seed: crash repair restores any process's
   * counter ranges). Without it: `<data>/wallet/` as always.
   */
  static async open(
    dataDir: string,
    trustedMints: string[],
    log: Logger,
    database?: PgDatabase,
  ): Promise<GatewayWallet> {
    const mints = trustedMints.map(normalizeMintUrl);
    if (database) {
      const pool = await PgGatewayPool.open(database);
      return new GatewayWallet(pool, await pool.seed(), mints, log);
    }
    const dir = join(dataDir, "wallet");
    privateDir(dir);
    return new GatewayWallet(
      new GatewayEcashStore(join(dir, "wallet.sqlite")),
      loadOrCreateSeed(dir),
      mints,
      log,
    );
  }

  async close(): Promise<void> {
    await this.changeStore.close();
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
    const existing = await this.changeStore.findChange(id);
    if (existing) return existing.token;
    return this.pay(mint, amountSat, format, undefined, id);
  }

  /** The change token stored under `id`, if any, without marking it fetched. */
  async storedChange(id: string): Promise<string | undefined> {
    return (await this.changeStore.findChange(id))?.token;
  }

  async change(id: string): Promise<{ amount: number; token: string } | undefined> {
    return this.changeStore.getChange(id);
  }

  /**
   * Retention (on a schedule): forgets spent proofs and fetched change tokens older than
   * `beforeMs`. Unspent proofs, reserved ones and change nobody fetched are kept: no balance moves.
   */
  async compact(beforeMs: number): Promise<number> {
    return this.changeStore.compact(beforeMs);
  }

  /**
   * Change made before `beforeMs` that nobody fetched here but whose every proof the mint reports
   * spent: the client got it from the response and redeemed it, so the stored copy is worth nothing
   * to anyone. Change with any proof unspent or pending, or whose mint does not answer, is money
   * still owed and stays claimable (marked checked, asked again after a day). Up to `limit` rows per
   * call. The caller deletes with `forgetChange` once the books agree nothing is owed under the id.
   */
  async redeemedChange(beforeMs: number, now: number, limit = 500): Promise<string[]> {
    const rows = await this.changeStore.unfetchedChange(beforeMs, now - DAY, limit);
    const redeemed: string[] = [];
    const byMint = new Map<string, typeof rows>();
    for (const r of rows) byMint.set(r.mint, [...(byMint.get(r.mint) ?? []), r]);
    for (const [mint, list] of byMint) {
      try {
        const wallet = await this.wallet(mint);
        const tokens = list.flatMap((r) => {
          try {
            return [{ id: r.id, proofs: wallet.decodeToken(r.token).proofs }];
          } catch {
            return []; // unreadable: never forgotten
          }
        });
        const states = await wallet.checkProofsStates(
          tokens.flatMap((t) => t.proofs.map(({ dleq: _dleq, ...p }) => p)),
        );
        let i = 0;
        for (const t of tokens) {
          const mine = states.slice(i, i + t.proofs.length);
          i += t.proofs.length;
          if (
            t.proofs.length > 0 &&
            mine.length === t.proofs.length &&
            mine.every((s) => s.state === "SPENT")
          )
            redeemed.push(t.id);
        }
      } catch (err) {
        this.log.warn("retention could not check change at its mint; kept", { mint, err: String(err) });
      }
    }
    await this.changeStore.markChangeChecked(
      rows.map((r) => r.id),
      now,
    );
    return redeemed;
  }

  async forgetChange(ids: readonly string[]): Promise<number> {
    return this.changeStore.forgetChange(ids);
  }
}
