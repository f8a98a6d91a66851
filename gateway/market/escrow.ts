/**
 * The escrow's moves and their repair. Money and records live in two stores, so every step that
 * spans both is ordered to be safe and repairable: a state change is claimed in the market store
 * first (exactly one caller wins), then the ledger moves the money once (idempotent by task id),
 * then the store notes it. The sweeper finishes whatever a crash interrupted and applies the
 * deadlines; every step it takes is a checked transition, so two sweepers (or a sweeper and a
 * party) racing on one task move its money once.
 */
import { Accounts } from "../ledger/index.js";
import type { MarketCollections } from "./collect.js";
import type { MarketDeps, SweepReport } from "./deps.js";
import { MarketError } from "./errors.js";
import { acceptLease, type Leases } from "./leases.js";
import { FINAL_STATES } from "./states.js";
import type { MarketStore, TaskRow } from "./store.js";

export class Escrow {
  constructor(
    private readonly store: MarketStore,
    private readonly deps: MarketDeps,
    private readonly leases: Leases,
    private readonly collections: MarketCollections,
  ) {}

  /**
   * Moves the escrow of a task that ended: to the worker when paid, back to the buyer otherwise.
   * Exactly once (the ledger refuses a second move of the same escrow), so a retry is harmless.
   */
  async settle(t: TaskRow): Promise<TaskRow> {
    if (t.escrow !== "locked" || !FINAL_STATES.includes(t.state)) return t;
    const to = t.state === "paid" ? t.worker_id! : t.buyer_id;
    await this.deps.ledger.settleEscrow(t.id, Accounts.user(to));
    await this.store.markSettled(t.id, Date.now());
    return (await this.store.task(t.id))!;
  }

  /**
   * Expires tasks past their deadline (escrow back to the buyer), releases undisputed deliveries
   * past the review window (escrow to the worker), finishes escrow moves, accepts and collects a
   * crash interrupted. Safe to run at any time and concurrently with requests; `now` is for tests.
   */
  async sweep(now: number): Promise<SweepReport> {
    const report: SweepReport = { expired: 0, released: 0, settled: 0, collections: 0 };
    await this.repairAccepts();
    const due = await this.store.due(now);
    const run = async (ids: string[], action: "expire" | "auto_release", key: "expired" | "released") => {
      for (const id of ids) {
        let t: TaskRow;
        try {
          t = await this.store.transition(id, action, "system", now);
        } catch (err) {
          // A party (or another sweeper) got there first: nothing to do.
          if (!(err instanceof MarketError)) throw err;
          continue;
        }
        report[key]++;
        await this.settle(t);
      }
    };
    await run(due.expire, "expire", "expired");
    await run(due.release, "auto_release", "released");
    for (const t of due.unsettled) {
      await this.settle(t);
      report.settled++;
    }
    report.collections = await this.collections.resolvePaying();
    if (report.expired || report.released || report.settled || report.collections)
      this.deps.log.info("market sweep", { ...report });
    return report;
  }

  /**
   * An accept stopped between the store and the ledger is finished (the escrow is locked) or undone.
   * Only under the task's accept lease: an accept in flight in any process holds it, so only a dead
   * one's is repaired.
   */
  async repairAccepts(): Promise<void> {
    for (const t of await this.store.locking()) {
      await this.leases.run(acceptLease(t.id), async () => {
        if ((await this.store.task(t.id))?.escrow !== "locking") return;
        const locked = await this.repairAccept(t.id);
        this.deps.log.warn("finished an interrupted accept", { task: t.id, locked });
      });
    }
  }

  /**
   * Ends a claim left `locking` the way the ledger says it went: finished when the escrow holds the
   * price, undone when it holds nothing. The caller holds the task's accept lease. True when locked.
   */
  async repairAccept(taskId: string): Promise<boolean> {
    const locked = (await this.deps.ledger.balance(Accounts.escrow(taskId))) > 0;
    if (locked) await this.store.finishAccept(taskId, Date.now());
    else await this.store.undoAccept(taskId, Date.now());
    return locked;
  }
}
