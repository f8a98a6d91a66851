/**
 * One-shot credentials (L402, BSV) and top-up claims in PostgreSQL, shared by every gateway
 * process: each state change is one conditional UPDATE (`… WHERE state = $from`), so across
 * processes a credential moves once and a top-up is claimed once. Every method is one statement:
 * READ COMMITTED suffices (a conditional UPDATE re-checks its row after waiting on its lock).
 */
import type { Migration, PgDatabase } from "../../src/shared/index.js";
import type { OneShotRegistry, OneShotRow, OneShotState, TopupClaimRow } from "./oneshot.js";

export const ONESHOT_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    sql: `
CREATE TABLE oneshot_credentials (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, amount_sat BIGINT NOT NULL, route TEXT,
  state TEXT NOT NULL CHECK (state IN ('pending', 'paid', 'in_use', 'spent')),
  mint TEXT, quote TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX oneshot_credentials_pending ON oneshot_credentials (created_at) WHERE state = 'pending';
CREATE INDEX oneshot_credentials_in_use ON oneshot_credentials (id) WHERE state = 'in_use';
CREATE TABLE oneshot_topup_claims (
  payment_hash TEXT PRIMARY KEY, quote TEXT NOT NULL, mint TEXT NOT NULL, amount_sat BIGINT NOT NULL,
  account_id TEXT, state TEXT NOT NULL CHECK (state IN ('pending', 'claimed')), created_at BIGINT NOT NULL);
CREATE INDEX oneshot_topup_claims_claimed ON oneshot_topup_claims (payment_hash) WHERE state = 'claimed';
`,
  },
  {
    // The claim secret's hash (the /topup page, Routstr purpose "create"): claims without the preimage.
    version: 2,
    sql: `
ALTER TABLE oneshot_topup_claims ADD COLUMN claim_hash TEXT;
CREATE UNIQUE INDEX oneshot_topup_claims_claim ON oneshot_topup_claims (claim_hash) WHERE claim_hash IS NOT NULL;
`,
  },
];

const ROW = "id, kind, amount_sat, route, state, mint, quote, created_at";
const CLAIM = "payment_hash, quote, mint, amount_sat, account_id, state, claim_hash, created_at";

export class PgOneShotStore implements OneShotRegistry {
  private constructor(private readonly db: PgDatabase) {}

  static async open(db: PgDatabase): Promise<PgOneShotStore> {
    await db.migrate("oneshot", ONESHOT_MIGRATIONS);
    return new PgOneShotStore(db);
  }

  async add(row: Omit<OneShotRow, "created_at">): Promise<boolean> {
    const now = Date.now();
    const res = await this.db.pool.query(
      `INSERT INTO oneshot_credentials (id, kind, amount_sat, route, state, mint, quote, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) ON CONFLICT (id) DO NOTHING`,
      [row.id, row.kind, row.amount_sat, row.route, row.state, row.mint, row.quote, now],
    );
    return res.rowCount === 1;
  }

  async get(id: string): Promise<OneShotRow | undefined> {
    const [row] = await this.db.query<OneShotRow>(`SELECT ${ROW} FROM oneshot_credentials WHERE id = $1`, [
      id,
    ]);
    return row;
  }

  async move(id: string, from: OneShotState, to: OneShotState): Promise<boolean> {
    const res = await this.db.pool.query(
      "UPDATE oneshot_credentials SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4",
      [to, Date.now(), id, from],
    );
    return res.rowCount === 1;
  }

  async releaseRefunded(hold: { kind: string; account: string }): Promise<boolean> {
    if (hold.kind !== "l402" && hold.kind !== "bsv") return false;
    return this.move(hold.account.replace(/^user:/, ""), "in_use", "paid");
  }

  async stalePending(before: number, limit: number): Promise<OneShotRow[]> {
    return this.db.query<OneShotRow>(
      `SELECT ${ROW} FROM oneshot_credentials WHERE state = 'pending' AND kind = 'l402' AND created_at < $1
       ORDER BY created_at LIMIT $2`,
      [before, limit],
    );
  }

  async dropPending(id: string): Promise<boolean> {
    const res = await this.db.pool.query(
      "DELETE FROM oneshot_credentials WHERE id = $1 AND state = 'pending'",
      [id],
    );
    return res.rowCount === 1;
  }

  /**
   * As in SQLite: every in_use credential becomes presentable again. It would free credentials
   * other live processes are serving, so a gateway on a shared database does not call it at
   * restart: it frees each refunded hold's credential (`releaseRefunded`) instead.
   */
  async releaseInUse(): Promise<number> {
    const res = await this.db.pool.query(
      "UPDATE oneshot_credentials SET state = 'paid', updated_at = $1 WHERE state = 'in_use'",
      [Date.now()],
    );
    return res.rowCount ?? 0;
  }

  /**
   * Credentials in use since before `before` (ms): at a restart on a shared database, those with no
   * active hold were left by a crash between taking the credential and holding its money.
   */
  async inUseSince(before: number): Promise<string[]> {
    const rows = await this.db.query<{ id: string }>(
      "SELECT id FROM oneshot_credentials WHERE state = 'in_use' AND updated_at < $1",
      [before],
    );
    return rows.map((r) => r.id);
  }

  async addTopupClaim(t: Omit<TopupClaimRow, "state" | "created_at">): Promise<void> {
    await this.db.query(
      `INSERT INTO oneshot_topup_claims (payment_hash, quote, mint, amount_sat, account_id, state, created_at, claim_hash)
       VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7)`,
      [t.payment_hash, t.quote, t.mint, t.amount_sat, t.account_id, Date.now(), t.claim_hash],
    );
  }

  async topupClaimBySecretHash(claimHash: string): Promise<TopupClaimRow | undefined> {
    const [row] = await this.db.query<TopupClaimRow>(
      `SELECT ${CLAIM} FROM oneshot_topup_claims WHERE claim_hash = $1`,
      [claimHash],
    );
    return row;
  }

  async topupClaim(paymentHash: string): Promise<TopupClaimRow | undefined> {
    const [row] = await this.db.query<TopupClaimRow>(
      `SELECT ${CLAIM} FROM oneshot_topup_claims WHERE payment_hash = $1`,
      [paymentHash],
    );
    return row;
  }

  async markClaimed(paymentHash: string, accountId: string): Promise<boolean> {
    const res = await this.db.pool.query(
      "UPDATE oneshot_topup_claims SET state = 'claimed', account_id = $1 WHERE payment_hash = $2 AND state = 'pending'",
      [accountId, paymentHash],
    );
    return res.rowCount === 1;
  }

  async claimedTopups(): Promise<TopupClaimRow[]> {
    return this.db.query<TopupClaimRow>(`SELECT ${CLAIM} FROM oneshot_topup_claims WHERE state = 'claimed'`);
  }

  /** The database belongs to the composition root, which closes it. */
  async close(): Promise<void> {}
}
