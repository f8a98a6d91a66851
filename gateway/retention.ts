/**
 * Retention: on a schedule, the gateway forgets history no hot path reads again, so its files stop
 * growing with traffic. Spent wallet proofs and fetched change tokens after `walletMs`, the public
 * job log after `jobsMs`, and the empty balance rows of ended holds at every run. No balance moves:
 * unspent and reserved proofs, ledger entries and hold records are all kept.
 *
 * Change nobody fetched here (most clients take it from the response and never call
 * GET /v1/cashu/change/:id) is forgotten after `walletMs` only when the mint reports every proof of
 * it spent — the client redeemed it, so the copy is worth nothing — and the ledger owes nothing
 * under its id (a crash between storing the token and booking it must still find the token, or
 * the change would be paid twice). Change with an unspent proof is money still owed: it stays
 * claimable, whatever its age. Archiving it elsewhere would not shrink anything (the token is the
 * money and must be kept whole), and it is bounded by what clients really left unclaimed.
 */
import type { Logger } from "../src/shared/index.js";
import type { JobLog } from "./api/joblog.js";
import { Accounts, type Ledger } from "./ledger/index.js";
import type { GatewayWallet } from "./payments/wallet.js";

export interface RetentionOptions {
  /** spent proofs and fetched change tokens older than this are forgotten (default 7 days) */
  walletMs?: number;
  /** served jobs older than this leave the public job log (default 30 days) */
  jobsMs?: number;
  /** how often it runs (default 1 h; 0 disables the loop) */
  intervalMs?: number;
}

export interface RetentionReport {
  walletRows: number;
  /** unfetched change rows forgotten because the mint reports them redeemed */
  changeRows: number;
  balanceRows: number;
  jobs: number;
}

const DAY = 86_400_000;

export function retention(
  deps: { wallet: GatewayWallet; ledger: Ledger; jobs: JobLog; log: Logger },
  opts: RetentionOptions = {},
): { run(now?: number): Promise<RetentionReport>; stop(): void } {
  const forgetRedeemedChange = async (now: number): Promise<number> => {
    const redeemed = await deps.wallet.redeemedChange(now - (opts.walletMs ?? 7 * DAY), now);
    const owedNothing: string[] = [];
    for (const id of redeemed) {
      if ((await deps.ledger.balance(Accounts.change(id))) === 0) owedNothing.push(id);
    }
    return deps.wallet.forgetChange(owedNothing);
  };
  const run = async (now = Date.now()): Promise<RetentionReport> => {
    const report = {
      walletRows: await deps.wallet.compact(now - (opts.walletMs ?? 7 * DAY)),
      changeRows: await forgetRedeemedChange(now),
      balanceRows: await deps.ledger.compact(),
      jobs: await deps.jobs.prune(now - (opts.jobsMs ?? 30 * DAY)),
    };
    if (report.walletRows || report.changeRows || report.balanceRows || report.jobs)
      deps.log.info("history compacted", { ...report });
    return report;
  };
  const every = opts.intervalMs ?? 3_600_000;
  const timer =
    every > 0
      ? setInterval(
          () => void run().catch((err) => deps.log.warn("retention run failed", { err: String(err) })),
          every,
        )
      : undefined;
  timer?.unref();
  return { run, stop: () => timer && clearInterval(timer) };
}
