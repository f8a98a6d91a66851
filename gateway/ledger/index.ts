/**
 * The gateway ledger: the only writer of balances. Methods are async at the boundary and each one
 * is a single atomic, balanced transaction, on one SQLite file (the embedded default) or on
 * PostgreSQL shared by several gateway processes (`--database-url`).
 */
import { join } from "node:path";
import type { PgDatabase } from "../../src/shared/postgres.js";
import { Accounts, upstreamName } from "./accounts.js";
import { PgLedgerStore } from "./pg-store.js";
import { SqliteLedgerStorage } from "./sqlite-storage.js";
import {
  type HoldRow,
  imbalanceOf,
  type LedgerStorage,
  type Posting,
  type StatementEntry,
} from "./storage.js";
import { LedgerStore } from "./store.js";
import { splitCharge } from "./split.js";

export { Accounts, accountKind, UPSTREAM_TARGET_PREFIX, upstreamName } from "./accounts.js";
export { HoldExistsError, HoldStateError, InsufficientBalanceError, LedgerError } from "./errors.js";
export {
  chargeSats,
  DEFAULT_PROVIDER_SHARE_PCT,
  MIN_CHARGE_SAT,
  MIN_PROVIDER_SHARE_PCT,
  splitCharge,
} from "./split.js";
export type { HoldRow, LedgerStorage, Posting, StatementEntry } from "./storage.js";
export { imbalanceOf } from "./storage.js";
export { DAY_MS, LedgerStore } from "./store.js";
export { SqliteLedgerStorage } from "./sqlite-storage.js";
export { LEDGER_MIGRATIONS, PgLedgerStore } from "./pg-store.js";
export { copyLedgerFromSqlite, type LedgerCopyReport } from "./pg-copy.js";

export interface JobSettlement {
  chargedMsat: number;
  /** the node that served the job, or `upstream:<name>` for an upstream provider */
  providerId: string;
  providerSharePct: number;
  /** who pays: the hold itself (paid requests) or the promo account (free tier) */
  free?: boolean;
}

export class Ledger {
  private constructor(private readonly store: LedgerStorage) {}

  /**
   * The books in PostgreSQL when `database` is given (its schema migrates before the first query;
   * `ready()` waits for that), else in `<dataDir>/ledger.sqlite` as always.
   */
  static open(dataDir: string, database?: PgDatabase): Ledger {
    return new Ledger(
      database
        ? new PgLedgerStore(database)
        : new SqliteLedgerStorage(new LedgerStore(join(dataDir, "ledger.sqlite"))),
    );
  }

  /** Resolves once the store can be used (PostgreSQL: migrations applied); throws what stopped it. */
  async ready(): Promise<void> {
    if (this.store instanceof PgLedgerStore) await this.store.ready();
  }

  async close(): Promise<void> {
    await this.store.close();
  }

  async balance(account: string): Promise<number> {
    return this.store.balance(account);
  }

  /** Ecash received from outside (a deposited token, a paid Lightning top-up) credited to an account. */
  async deposit(account: string, msat: number, mintUrl: string, ref: string): Promise<boolean> {
    return this.store.transfer("deposit", ref, [{ from: Accounts.ecash(mintUrl), to: account, msat }]);
  }

  /** An account's value leaves as ecash (a withdrawal token). Refuses to overdraw. */
  async withdraw(account: string, msat: number, mintUrl: string, ref: string): Promise<boolean> {
    return this.store.transfer("withdraw", ref, [{ from: account, to: Accounts.ecash(mintUrl), msat }]);
  }

  /**
   * Reserves part of an account for one request (balance - held >= hold, atomically; held money
   * has already left the balance for `hold:<id>`).
   *
   * Metered business keys (`creditMsat` = their credit limit) hold on credit: the check becomes
   * balance + credit >= hold, so the user account may go negative down to −credit, and a negative
   * balance is what the key owes (a credit-normal account with a debit balance is a receivable).
   * Why not a separate receivable asset drawn on demand: every way money comes in (ecash deposit,
   * Lightning top-up, refund of a hold) already credits `user:<id>`, so paying reduces what is owed
   * first with no new posting anywhere, the limit is one comparison in the same locked step as the
   * hold (exact under concurrency, on SQLite and PostgreSQL alike), and the books stay balanced
   * because nothing but the sign changed. Credit is never drawn by transfers or withdrawals: they
   * still refuse to take a user account below zero.
   */
  async hold(
    holdId: string,
    account: string,
    msat: number,
    kind: string,
    memo?: string,
    creditMsat = 0,
  ): Promise<void> {
    await this.store.hold(holdId, account, msat, kind, memo, creditMsat);
  }

  /**
   * X-Cashu: the claimed ecash itself funds the hold. The owner records where the remainder goes
   * (a change token of `format` at `mintUrl`), so a restart can refund it.
   */
  async holdClaimedEcash(
    holdId: string,
    mintUrl: string,
    msat: number,
    format: "A" | "B",
    memo?: string,
  ): Promise<void> {
    await this.store.openFundedHold(
      holdId,
      `xcashu:${format}:${mintUrl}`,
      msat,
      "xcashu",
      [{ from: Accounts.ecash(mintUrl), to: Accounts.hold(holdId), msat }],
      memo,
    );
  }

  /**
   * X-Cashu with a client-chosen id: takes the id before the token is claimed (HoldExistsError
   * when another request has it), owned like `holdClaimedEcash`'s holds.
   */
  async reserveCashuHold(holdId: string, mintUrl: string, format: "A" | "B", memo?: string): Promise<void> {
    await this.store.reserveHold(holdId, `xcashu:${format}:${mintUrl}`, "xcashu", memo);
  }

  /**
   * The claimed ecash funds a reserved hold, once: "funded" while it is active, "change" when the
   * reservation had already ended (the value is then owed as change under its id), "already" when
   * it was funded before.
   */
  async fundCashuHold(
    holdId: string,
    mintUrl: string,
    msat: number,
  ): Promise<"funded" | "change" | "already"> {
    return this.store.fundReservedHold(holdId, msat, Accounts.ecash(mintUrl));
  }

  /** True once a hold's money was posted. */
  async holdFunded(holdId: string): Promise<boolean> {
    return this.store.holdFunded(holdId);
  }

  /** Frees a reserved id whose claim was refused (nothing was posted). */
  async dropReservation(holdId: string): Promise<void> {
    await this.store.dropReservation(holdId);
  }

  /**
   * Settles a job: the charge goes to the provider and the gateway (paid from the hold, or from
   * promo for free-tier jobs), or all of it to `equity:upstream:<name>` when an upstream provider
   * served it; the rest of the hold to `remainderTo`. Exactly once per hold.
   */
  async settleJob(holdId: string, s: JobSettlement, remainderTo: string, memo?: string): Promise<boolean> {
    const hold = Accounts.hold(holdId);
    const upstream = upstreamName(s.providerId);
    if (upstream !== undefined) {
      // An upstream provider is paid by the operator outside the ledger: the whole charge is the
      // operator's, booked under the upstream that served it (never free: upstreams take no free jobs).
      const postings: Posting[] = s.free
        ? []
        : [{ from: hold, to: Accounts.upstream(upstream), msat: s.chargedMsat }];
      return this.store.settleHold(holdId, postings, remainderTo, memo);
    }
    const { providerMsat, gatewayMsat } = splitCharge(s.chargedMsat, s.providerSharePct);
    // Free tier: the gateway pays the provider from promo; the hold (normally 0) is returned.
    const postings: Posting[] = s.free
      ? [{ from: Accounts.promo, to: Accounts.provider(s.providerId), msat: providerMsat }]
      : [
          { from: hold, to: Accounts.provider(s.providerId), msat: providerMsat },
          { from: hold, to: Accounts.fees, msat: gatewayMsat },
        ];
    return this.store.settleHold(holdId, postings, remainderTo, memo);
  }

  /** Returns the whole hold to `remainderTo` (job never started). Exactly once per hold. */
  async releaseHold(holdId: string, remainderTo: string, memo?: string): Promise<boolean> {
    return this.store.settleHold(holdId, [], remainderTo, memo);
  }

  /** What a provider earned from jobs, in msat (lifetime, or since a time). */
  async earned(nodeId: string, sinceMs = 0): Promise<number> {
    return this.store.earned(Accounts.provider(nodeId), sinceMs);
  }

  /**
   * A withdrawal as ecash: the amount leaves `account` and is owed as change under `ref` until the
   * token is made and stored (`payOutChange`); a crash in between leaves it owed, and the restart
   * (or the next fetch of the withdrawal) makes the token. Format B at `mintUrl`.
   */
  async withdrawAsChange(
    ref: string,
    account: string,
    msat: number,
    mintUrl: string,
    format: "A" | "B" = "B",
  ): Promise<void> {
    await this.store.withdrawAsChange(ref, account, `xcashu:${format}:${mintUrl}`, msat, account);
  }

  async getHold(holdId: string): Promise<HoldRow | undefined> {
    return this.store.getHold(holdId);
  }

  async activeHolds(): Promise<HoldRow[]> {
    return this.store.activeHolds();
  }

  /** Ended X-Cashu holds, to find where owed change must go. */
  async settledCashuHolds(): Promise<HoldRow[]> {
    return this.store.holdsOwnedLike("xcashu:%");
  }

  /** A fixed charge from a hold (a market fee): `msat` to `to`, the rest to `remainderTo`. Exactly once per hold. */
  async chargeHold(
    holdId: string,
    to: string,
    msat: number,
    remainderTo: string,
    memo?: string,
  ): Promise<boolean> {
    return this.store.settleHold(holdId, [{ from: Accounts.hold(holdId), to, msat }], remainderTo, memo);
  }

  /**
   * Locks a market task's price in escrow (`from`, the buyer, → `escrow:<task>`): at most once per
   * task, never overdrawing the buyer. False when the task's escrow was already locked.
   */
  async lockEscrow(taskId: string, from: string, msat: number): Promise<boolean> {
    return this.store.transfer("escrow_lock", taskId, [{ from, to: Accounts.escrow(taskId), msat }]);
  }

  /**
   * Ends a task's escrow exactly once, whichever way it goes: all of it to `to` (the worker's
   * account when released, the buyer's when refunded). False when it had already ended.
   */
  async settleEscrow(taskId: string, to: string): Promise<boolean> {
    return this.store.moveAll("escrow_settle", taskId, Accounts.escrow(taskId), to);
  }

  /** Money set aside from `from` (a provider, or a market account collecting) for a Lightning payment. */
  async reservePayout(from: string, payoutId: string, msat: number): Promise<boolean> {
    return this.store.transfer("payout_reserve", payoutId, [{ from, to: Accounts.payout(payoutId), msat }]);
  }

  /** The payout left: amount + routing fee leave as ecash; what the fee reserve did not use goes back to `owner`. */
  async completePayout(
    owner: string,
    payoutId: string,
    mintUrl: string,
    paidMsat: number,
    feeMsat: number,
  ): Promise<boolean> {
    const held = await this.store.balance(Accounts.payout(payoutId));
    return this.store.transfer("payout_done", payoutId, [
      { from: Accounts.payout(payoutId), to: Accounts.ecash(mintUrl), msat: paidMsat + feeMsat },
      { from: Accounts.payout(payoutId), to: owner, msat: held - paidMsat - feeMsat },
    ]);
  }

  /** The payout failed: everything goes back to `owner`. */
  async failPayout(owner: string, payoutId: string): Promise<boolean> {
    return this.store.moveAll("payout_failed", payoutId, Accounts.payout(payoutId), owner);
  }

  /** Free-form balanced transfer for the few flows that need it (tests, admin). */
  async transfer(kind: string, ref: string | null, postings: Posting[]): Promise<boolean> {
    return this.store.transfer(kind, ref, postings);
  }

  /** The entries of one account in a time range (statements). */
  async entries(account: string, fromMs: number, toMs: number): Promise<StatementEntry[]> {
    return this.store.entriesOf(account, fromMs, toMs);
  }

  /** Retention: forgets empty per-request balance rows (no balance changes); returns how many. */
  async compact(): Promise<number> {
    return this.store.compact();
  }

  /** Every non-zero balance and the books' imbalance (always 0 unless the store is corrupt). */
  async audit(): Promise<{ balances: Map<string, number>; imbalanceMsat: number; ecashMsat: number }> {
    const balances = await this.store.balances();
    let ecashMsat = 0;
    for (const [account, msat] of balances) if (account.startsWith("asset:ecash:")) ecashMsat += msat;
    return { balances, imbalanceMsat: imbalanceOf(balances), ecashMsat };
  }
}
