/**
 * One-shot payments made outside the gateway (an L402 Lightning invoice, a BSV transaction): the
 * paid amount is credited once to a ledger account of its own (`user:<kind>:<id>`), then one
 * request holds all of it and, once anything is served, is charged all of it (402ai semantics: no
 * refund or extra charge after the response). A request that was not served releases the hold and
 * the credential may be presented again; a credential that paid for a served request is spent for
 * good. The state lives in SQLite (`OneShotStore`) or PostgreSQL (`PgOneShotStore`, shared by several
 * gateway processes) and every change of it is one atomic statement:
 * pending (not yet paid) → paid → in_use → spent, and in_use → paid on a refund.
 */
import { randomUUID } from "node:crypto";
import type { Awaitable } from "../../src/shared/ecash/index.js";
import { SqliteStore } from "../../src/shared/sqlite.js";
import { Accounts, type Ledger } from "../ledger/index.js";
import type { RequestPayment } from "./account-payments.js";
import { PaymentError } from "./errors.js";
import type { SettledPayment } from "./xcashu.js";
import { EndsOnce } from "./once.js";

export type OneShotKind = "l402" | "bsv";
export type OneShotState = "pending" | "paid" | "in_use" | "spent";

export interface OneShotRow {
  id: string;
  kind: OneShotKind;
  amount_sat: number;
  route: string | null;
  state: OneShotState;
  /** where the money is: the mint quote (L402) or nothing (BSV) */
  mint: string | null;
  quote: string | null;
  created_at: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS oneshot (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, amount_sat INTEGER NOT NULL, route TEXT, state TEXT NOT NULL,
  mint TEXT, quote TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS topup_claims (
  payment_hash TEXT PRIMARY KEY, quote TEXT NOT NULL, mint TEXT NOT NULL, amount_sat INTEGER NOT NULL,
  account_id TEXT, state TEXT NOT NULL, created_at INTEGER NOT NULL);
`;

/**
 * `claim_hash`: sha256 of the claim secret handed to whoever made the invoice (the /topup page, a
 * Routstr `purpose: "create"` invoice id), who may claim the paid top-up with it instead of the
 * preimage (wallets that scan a QR never show one). Added after the first release: older files
 * get the column when opened.
 */
function addClaimHash(store: SqliteStore): void {
  const cols = store.db.prepare("PRAGMA table_info(topup_claims)").all() as { name: string }[];
  if (!cols.some((c) => c.name === "claim_hash"))
    store.db.exec("ALTER TABLE topup_claims ADD COLUMN claim_hash TEXT");
  store.db.exec(
    "CREATE UNIQUE INDEX IF NOT EXISTS topup_claims_claim ON topup_claims (claim_hash) WHERE claim_hash IS NOT NULL",
  );
}

export interface TopupClaimRow {
  payment_hash: string;
  quote: string;
  mint: string;
  amount_sat: number;
  account_id: string | null;
  state: "pending" | "claimed";
  claim_hash: string | null;
  created_at: number;
}

/**
 * Where one-shot credentials and top-up claims live; each method is one atomic step. SQLite answers
 * synchronously, PostgreSQL with a promise: callers always `await`.
 */
export interface OneShotRegistry {
  /** Records a credential; false when the id is already known (a replayed BSV txid). */
  add(row: Omit<OneShotRow, "created_at">): Awaitable<boolean>;
  get(id: string): Awaitable<OneShotRow | undefined>;
  /** Moves `id` from one state to another, atomically; false when it was not in `from`. */
  move(id: string, from: OneShotState, to: OneShotState): Awaitable<boolean>;
  /** A refunded hold of a one-shot credential: in_use → paid; false for holds of other kinds. */
  releaseRefunded(hold: { kind: string; account: string }): Awaitable<boolean>;
  stalePending(before: number, limit: number): Awaitable<OneShotRow[]>;
  dropPending(id: string): Awaitable<boolean>;
  releaseInUse(): Awaitable<number>;
  addTopupClaim(t: Omit<TopupClaimRow, "state" | "created_at">): Awaitable<void>;
  topupClaim(paymentHash: string): Awaitable<TopupClaimRow | undefined>;
  /** The top-up whose claim secret hashes to `claimHash`. */
  topupClaimBySecretHash(claimHash: string): Awaitable<TopupClaimRow | undefined>;
  /** pending → claimed for `accountId`, exactly once. */
  markClaimed(paymentHash: string, accountId: string): Awaitable<boolean>;
  claimedTopups(): Awaitable<TopupClaimRow[]>;
  close(): Awaitable<void>;
}

/** External payments (L402, BSV) and 402ai-style top-up claims, in `<data>/payments.sqlite`. */
export class OneShotStore extends SqliteStore implements OneShotRegistry {
  constructor(path: string) {
    super(path, SCHEMA);
    addClaimHash(this);
  }

  /** Records a credential; false when the id is already known (a replayed BSV txid). */
  add(row: Omit<OneShotRow, "created_at">): boolean {
    const now = Date.now();
    return (
      this.db
        .prepare(
          "INSERT OR IGNORE INTO oneshot (id, kind, amount_sat, route, state, mint, quote, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .run(row.id, row.kind, row.amount_sat, row.route, row.state, row.mint, row.quote, now, now)
        .changes === 1
    );
  }

  get(id: string): OneShotRow | undefined {
    return this.db.prepare("SELECT * FROM oneshot WHERE id = ?").get(id) as OneShotRow | undefined;
  }

  /** Moves `id` from one state to another, atomically; false when it was not in `from`. */
  move(id: string, from: OneShotState, to: OneShotState): boolean {
    return (
      this.db
        .prepare("UPDATE oneshot SET state = ?, updated_at = ? WHERE id = ? AND state = ?")
        .run(to, Date.now(), id, from).changes === 1
    );
  }

  /**
   * A refunded hold (the sweeper's, or a restart's) of a one-shot credential: nothing was served,
   * so the credential may be presented again. Holds of other kinds are not ours: false.
   */
  releaseRefunded(hold: { kind: string; account: string }): boolean {
    if (hold.kind !== "l402" && hold.kind !== "bsv") return false;
    return this.move(hold.account.replace(/^user:/, ""), "in_use", "paid");
  }

  /** Pending (never paid) L402 rows created before `before` (ms), oldest first, at most `limit`. */
  stalePending(before: number, limit: number): OneShotRow[] {
    return this.db
      .prepare(
        "SELECT * FROM oneshot WHERE state = 'pending' AND kind = 'l402' AND created_at < ? ORDER BY created_at LIMIT ?",
      )
      .all(before, limit) as OneShotRow[];
  }

  /** Deletes a row that is still pending (an unpaid challenge); false when it moved meanwhile. */
  dropPending(id: string): boolean {
    return this.db.prepare("DELETE FROM oneshot WHERE id = ? AND state = 'pending'").run(id).changes === 1;
  }

  /** After a restart no request is being served: in_use credentials become presentable again. */
  releaseInUse(): number {
    return this.db.prepare("UPDATE oneshot SET state = 'paid' WHERE state = 'in_use'").run().changes;
  }

  addTopupClaim(t: Omit<TopupClaimRow, "state" | "created_at">): void {
    this.db
      .prepare(
        "INSERT INTO topup_claims (payment_hash, quote, mint, amount_sat, account_id, state, created_at, claim_hash) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
      )
      .run(t.payment_hash, t.quote, t.mint, t.amount_sat, t.account_id, Date.now(), t.claim_hash);
  }

  topupClaim(paymentHash: string): TopupClaimRow | undefined {
    return this.db.prepare("SELECT * FROM topup_claims WHERE payment_hash = ?").get(paymentHash) as
      TopupClaimRow | undefined;
  }

  /** The top-up whose claim secret hashes to `claimHash`. */
  topupClaimBySecretHash(claimHash: string): TopupClaimRow | undefined {
    return this.db.prepare("SELECT * FROM topup_claims WHERE claim_hash = ?").get(claimHash) as
      TopupClaimRow | undefined;
  }

  /** pending → claimed for `accountId`, exactly once. */
  markClaimed(paymentHash: string, accountId: string): boolean {
    return (
      this.db
        .prepare(
          "UPDATE topup_claims SET state = 'claimed', account_id = ? WHERE payment_hash = ? AND state = 'pending'",
        )
        .run(accountId, paymentHash).changes === 1
    );
  }

  claimedTopups(): TopupClaimRow[] {
    return this.db.prepare("SELECT * FROM topup_claims WHERE state = 'claimed'").all() as TopupClaimRow[];
  }
}

/** The ledger account a one-shot credential's money sits in between its payment and its request. */
export const oneShotAccount = (id: string) => Accounts.user(id);

/** One request paid by a one-shot credential: holds the whole amount, charges all of it once served. */
export class OneShotPayment extends EndsOnce implements RequestPayment {
  constructor(
    readonly holdId: string,
    readonly row: OneShotRow,
    readonly method: OneShotKind,
    readonly receiptFields: Record<string, unknown>,
    private readonly ledger: Ledger,
    private readonly store: OneShotRegistry,
    /** what the credential holds for this request (sats) */
    readonly heldSat: number = row.amount_sat,
    /** the request's price (BSV): charged instead of everything held; the rest stays on the txid */
    readonly priceSat?: number,
  ) {
    super();
  }

  async settle(
    chargedSat: number,
    nodeId: string,
    providerSharePct: number,
    memo?: string,
  ): Promise<SettledPayment> {
    if (chargedSat <= 0) return this.refund(memo);
    this.end();
    const owner = oneShotAccount(this.row.id);
    // L402 (402ai): the invoice was the price, all of it is charged. BSV: a payment above the
    // price is charged the price; the rest stays on the txid, which pays later requests.
    const charged = Math.min(this.heldSat, this.priceSat ?? this.heldSat);
    await this.ledger.settleJob(
      this.holdId,
      { chargedMsat: charged * 1000, providerId: nodeId, providerSharePct },
      owner,
      memo,
    );
    await this.store.move(this.row.id, "in_use", charged < this.heldSat ? "paid" : "spent");
    return { chargedSat: charged, changeSat: 0 };
  }

  /**
   * A fixed fee (a market posting or quoting fee, 402ai: payable with L402): `to` gets it, capped
   * by what is held; L402 is charged all of it as for requests (its invoice was the fee).
   */
  async chargeFee(feeSat: number, to: string, memo?: string): Promise<SettledPayment> {
    this.end();
    const charged = this.method === "l402" ? this.heldSat : Math.min(feeSat, this.heldSat);
    await this.ledger.chargeHold(this.holdId, to, charged * 1000, oneShotAccount(this.row.id), memo);
    this.store.move(this.row.id, "in_use", charged < this.heldSat ? "paid" : "spent");
    return { chargedSat: charged, changeSat: 0 };
  }

  async refund(memo?: string): Promise<SettledPayment> {
    this.end();
    await this.ledger.releaseHold(this.holdId, oneShotAccount(this.row.id), memo);
    await this.store.move(this.row.id, "in_use", "paid");
    return { chargedSat: 0, changeSat: 0 };
  }
}

/**
 * Takes a paid credential for one request: paid → in_use (refused when spent or already in use),
 * then holds its whole amount. Checks the amount covers at least the request's minimum first.
 */
export async function openOneShot(
  ledger: Ledger,
  store: OneShotRegistry,
  row: OneShotRow,
  minimumSat: number,
  receiptFields: Record<string, unknown>,
  memo?: string,
  priceSat?: number,
): Promise<OneShotPayment> {
  if (row.state === "spent" || row.state === "in_use")
    throw new PaymentError("token_spent", "this payment credential was already used", 401);
  // What is left on the credential (all of it until a request was charged less than that).
  const available = Math.floor((await ledger.balance(oneShotAccount(row.id))) / 1000);
  if (available < minimumSat) {
    throw new PaymentError(
      "insufficient_balance",
      `this payment covers ${available} sats; this request needs at least ${minimumSat}`,
      402,
      { required_sats: minimumSat },
    );
  }
  if (!(await store.move(row.id, "paid", "in_use"))) {
    throw new PaymentError("token_spent", "this payment credential was already used", 401);
  }
  const holdId = randomUUID();
  try {
    await ledger.hold(holdId, oneShotAccount(row.id), available * 1000, row.kind, memo);
  } catch (err) {
    await store.move(row.id, "in_use", "paid");
    throw err;
  }
  return new OneShotPayment(holdId, row, row.kind, receiptFields, ledger, store, available, priceSat);
}
