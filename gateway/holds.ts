/**
 * Holds nobody serves any more: the stale-hold sweep (periodic) and the repair after a restart.
 * With a shared database other live processes serve some of the active holds, so both ask the
 * cluster which before refunding anything.
 */
import type { Logger, PgDatabase } from "../src/shared/index.js";
import { repairClaimedTopups } from "./api/pay.js";
import { type Cluster, serially } from "./cluster/index.js";
import type { Ledger } from "./ledger/index.js";
import type { Market } from "./market/index.js";
import { oneShotAccount, type OneShotRegistry } from "./payments/oneshot.js";
import { PgOneShotStore } from "./payments/oneshot-pg.js";
import type { ProviderPayouts } from "./payments/payouts.js";
import {
  type RecoveryReport,
  type RecoverySnapshot,
  recoverAfterRestart,
  refundHold,
} from "./payments/recovery.js";
import type { GatewayWallet } from "./payments/wallet.js";

export interface HoldParts {
  ledger: Ledger;
  wallet: GatewayWallet;
  oneShots: OneShotRegistry;
  /** holds this process is serving right now */
  live: ReadonlySet<string>;
  cluster: Cluster | undefined;
  /** a hold not served and older than this is refunded */
  staleMs: number;
  log: Logger;
}

/** Refunds holds nobody is serving any more; returns how many. */
export function staleHoldSweep(p: HoldParts): () => Promise<number> {
  const { ledger, wallet, oneShots, live, cluster, staleMs, log } = p;
  return async () => {
    let n = 0;
    // Holds another live process is serving are not stale, however old (it knows only its own).
    const elsewhere = cluster ? await cluster.holdsServedElsewhere() : undefined;
    for (const hold of await ledger.activeHolds()) {
      if (live.has(hold.id) || elsewhere?.has(hold.id) || Date.now() - hold.updated_at < staleMs) continue;
      if (!(await refundHold(hold, ledger, wallet, log, "stale hold refunded by the sweeper"))) continue;
      await oneShots.releaseRefunded(hold);
      n++;
    }
    if (n) log.warn("refunded stale holds", { count: n });
    return n;
  };
}

export interface RestartParts extends HoldParts {
  /** the active holds and owed change as they were when this process opened the ledger */
  snapshot: RecoverySnapshot;
  database: PgDatabase | undefined;
  payouts: ProviderPayouts;
  market: Market;
}

/** Repairs what a crash left (call once the mints are reachable, i.e. after listen). */
export async function recoverAfterStart(p: RestartParts): Promise<RecoveryReport> {
  const { ledger, wallet, oneShots, cluster, staleMs, log, snapshot } = p;
  // With a shared ledger the active holds at start include the ones other live processes are
  // serving: only holds nobody serves and old enough for the sweeper are refunded now; the
  // rest are left to the stale-hold sweep (which rechecks who serves them).
  const elsewhere = cluster ? await cluster.holdsServedElsewhere() : undefined;
  const orphaned = elsewhere
    ? snapshot.activeHolds.filter((h) => !elsewhere.has(h.id) && Date.now() - h.updated_at >= staleMs)
    : snapshot.activeHolds;
  // Two processes restarting at once repair one after the other: the wallet's restore credits a
  // dead process's claims, and the second must find them credited, not credit them again.
  const repair = () =>
    recoverAfterRestart(
      { ...snapshot, activeHolds: orphaned },
      ledger,
      wallet,
      log.child("recovery"),
      // Shared database: free only the credentials of holds refunded here; the others in use are
      // being served by live processes (or are left to the sweeper, which frees them the same way).
      elsewhere ? (hold) => oneShots.releaseRefunded(hold) : undefined,
    );
  const report = p.database ? await serially(p.database, "restart-recovery", repair) : await repair();
  await p.payouts.recover();
  // One process: holds are refunded by now, one-shot credentials caught mid-request may be
  // presented again. Shared: only those in use long enough with no hold at all (a crash
  // between taking the credential and holding its money); a live request has its hold.
  if (!elsewhere) await oneShots.releaseInUse();
  else if (oneShots instanceof PgOneShotStore) {
    const held = new Set((await ledger.activeHolds()).map((h) => h.account));
    for (const id of await oneShots.inUseSince(Date.now() - staleMs))
      if (!held.has(oneShotAccount(id))) await oneShots.move(id, "in_use", "paid");
  }
  await repairClaimedTopups(ledger, oneShots);
  await p.market.sweep();
  return report;
}
